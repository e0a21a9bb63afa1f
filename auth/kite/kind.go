package kite

import "github.com/authproxy/authproxy/auth"

// Kind describes Kite Connect accounts (type = "kite") to config and the
// proxy: keys api_key, api_secret (secret) and redirect_uri (default: the
// proxy's /callback/NAME, which must be the redirect URL registered for
// the app); browser login only.
var Kind = auth.Kind{
	Type:    "kite",
	Display: "Zerodha Kite",
	Domains: []string{"kite.trade"},
	Hosts:   func(map[string]string) []string { return DefaultHosts() },
	Keys: []auth.Key{
		{Name: "api_key", Check: func(v string) string {
			if !validKey(v) {
				return "must be letters and digits (the Kite Connect app's api_key)"
			}
			return ""
		}},
		{Name: "api_secret", Secret: true},
		{Name: "redirect_uri", Check: auth.CheckRedirectURI},
	},
	Check: func(c auth.Checker) {
		c.Require("type kite", "api_key", "api_secret")
		c.DefaultRedirect()
	},
	New: func(s auth.Settings, d auth.Deps) (auth.Broker, error) {
		return auth.Built(New(Config{
			Account:   s.Account,
			APIKey:    s.Get("api_key"),
			APISecret: s.Secret("api_secret"),
		}, d.Client, d.Now, d.Logger))
	},
	BrowserLogin: func(map[string]string) bool { return true },
	Bypass:       (&Broker{}).Bypass,
	Orders:       Orders(),
}
