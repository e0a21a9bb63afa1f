package angelone

import "github.com/authproxy/authproxy/auth"

// Kind describes Angel One SmartAPI accounts (type = "angelone") to config
// and the proxy: keys api_key (secret: it is the X-PrivateKey), client_code,
// pin (secret) and totp_secret (secret); the proxy logs in by itself.
var Kind = auth.Kind{
	Type:    "angelone",
	Display: "Angel One SmartAPI",
	Domains: []string{"angelone.in"},
	Hosts:   func(map[string]string) []string { return DefaultHosts() },
	Keys: []auth.Key{
		{Name: "api_key", Secret: true, Check: checkHeaderValue},
		{Name: "client_code", Check: checkHeaderValue},
		{Name: "pin", Secret: true},
		{Name: "totp_secret", Secret: true, Check: auth.CheckTOTPSecret},
	},
	Check: func(c auth.Checker) {
		c.Require("type angelone", "api_key", "client_code", "pin", "totp_secret")
	},
	New: func(s auth.Settings, d auth.Deps) (auth.Broker, error) {
		return auth.Built(New(Config{
			Account:    s.Account,
			APIKey:     s.Secret("api_key"),
			ClientCode: s.Get("client_code"),
			PIN:        s.Secret("pin"),
			TOTPSecret: s.Secret("totp_secret"),
		}, d.Client, d.Now, d.Logger))
	},
	Bypass: (&Broker{}).Bypass,
	Orders: Orders(),
}

// checkHeaderValue refuses a value that cannot travel in an HTTP header
// (SmartAPI sends api_key and client_code as headers); it never quotes the
// value.
func checkHeaderValue(v string) string {
	if !headerSafe(v) {
		return "holds spaces or characters a header cannot carry (the value is not shown)"
	}
	return ""
}
