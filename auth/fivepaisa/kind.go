package fivepaisa

import (
	"github.com/authproxy/authproxy/auth"
)

// Kind describes 5paisa accounts (type = "fivepaisa") to config and the
// proxy: TOTP login when pin/totp_secret are set, else the vendor (browser)
// login.
var Kind = auth.Kind{
	Type:    "fivepaisa",
	Display: "5paisa",
	Domains: []string{"5paisa.com"},
	Hosts: func(map[string]string) []string {
		return []string{"openapi.5paisa.com", "openfeed.5paisa.com", "aopenfeed.5paisa.com", "bopenfeed.5paisa.com"}
	},
	Keys: []auth.Key{
		{Name: "app_key", Secret: true},
		{Name: "user_id"},
		{Name: "encryption_key", Secret: true},
		{Name: "client_code"},
		{Name: "pin", Secret: true},
		{Name: "totp_secret", Secret: true},
		{Name: "redirect_uri"},
	},
	Check: func(c auth.Checker) {
		c.Require("type fivepaisa", "app_key", "user_id", "encryption_key")
		if c.Given("pin") || c.Given("totp_secret") {
			c.Require("fivepaisa TOTP login", "client_code", "pin", "totp_secret")
			c.Check("totp_secret", auth.CheckTOTPSecret)
			c.Forbid(`is for browser login, but "pin"/"totp_secret" select TOTP login: remove one of them`, "redirect_uri")
		} else {
			c.Check("redirect_uri", auth.CheckRedirectURI)
			c.DefaultRedirect()
		}
	},
	New: func(s auth.Settings, d auth.Deps) (auth.Broker, error) {
		cfg := Config{
			Account:       s.Account,
			AppKey:        s.Secret("app_key"),
			UserID:        s.Get("user_id"),
			EncryptionKey: s.Secret("encryption_key"),
			ClientCode:    s.Get("client_code"),
			PIN:           s.Secret("pin"),
			TOTPSecret:    s.Secret("totp_secret"),
		}
		if cfg.PIN == "" && cfg.TOTPSecret == "" {
			return auth.Built(NewBrowser(cfg, d.Client, d.Now, d.Logger))
		}
		return auth.Built(New(cfg, d.Client, d.Now, d.Logger))
	},
	BrowserLogin: func(v map[string]string) bool { return v["pin"] == "" && v["totp_secret"] == "" },
	Bypass:       (&Broker{}).Bypass,
	Orders:       Orders(),
}
