package tradingo

import (
	"fmt"
	"net"

	"github.com/authproxy/authproxy/auth"
)

// Kind describes Tradingo accounts (type = "tradingo") to config and the
// proxy.
var Kind = auth.Kind{
	Type:    "tradingo",
	Display: "Tradingo",
	Domains: []string{"swastika.co.in"},
	Hosts:   func(map[string]string) []string { return []string{"tradingorestapi.swastika.co.in"} },
	Keys: []auth.Key{
		{Name: "client_code"},
		{Name: "mpin", Secret: true},
		{Name: "totp_secret", Secret: true, Check: auth.CheckTOTPSecret},
		{Name: "ip_address", Check: func(v string) string {
			if net.ParseIP(v) == nil {
				return fmt.Sprintf("%q is not an IP address", v)
			}
			return ""
		}},
	},
	Check: func(c auth.Checker) {
		c.Require("type tradingo", "client_code", "mpin", "totp_secret")
	},
	New: func(s auth.Settings, d auth.Deps) (auth.Broker, error) {
		return auth.Built(New(Config{
			Account:    s.Account,
			ClientCode: s.Get("client_code"),
			MPIN:       s.Secret("mpin"),
			TOTPSecret: s.Secret("totp_secret"),
			IPAddress:  s.Get("ip_address"),
		}, d.Client, d.Now, d.Logger))
	},
	Bypass: (&Broker{}).Bypass,
	Orders: Orders(),
}
