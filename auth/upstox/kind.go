package upstox

import "github.com/authproxy/authproxy/auth"

// Kind describes Upstox accounts (type = "upstox") to config and the proxy:
// keys client_id, client_secret (secret) and redirect_uri (default: the
// proxy's /callback/NAME); browser OAuth2 login.
var Kind = auth.Kind{
	Type:    "upstox",
	Display: "Upstox",
	Domains: []string{"upstox.com"},
	Hosts:   func(map[string]string) []string { return DefaultHosts() },
	Keys: []auth.Key{
		{Name: "client_id"},
		{Name: "client_secret", Secret: true},
		{Name: "redirect_uri", Check: auth.CheckRedirectURI},
	},
	Check: func(c auth.Checker) {
		c.Require("type upstox", "client_id", "client_secret")
		c.DefaultRedirect()
	},
	New: func(s auth.Settings, d auth.Deps) (auth.Broker, error) {
		return auth.Built(New(Config{
			Account:      s.Account,
			ClientID:     s.Get("client_id"),
			ClientSecret: s.Secret("client_secret"),
		}, d.Client, d.Now, d.Logger))
	},
	BrowserLogin: func(map[string]string) bool { return true },
	Bypass:       (&Broker{}).Bypass,
	Orders:       Orders(),
}
