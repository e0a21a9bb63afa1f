package tradovate

import (
	"fmt"
	"path/filepath"

	"github.com/authproxy/authproxy/auth"
)

// Kind describes Tradovate accounts (type = "tradovate") to config and the
// proxy: credential login when the table has "password", OAuth login with
// "client_id" otherwise.
var Kind = auth.Kind{
	Type:    "tradovate",
	Display: "Tradovate",
	Domains: []string{"tradovateapi.com", "tradovate.com"},
	Hosts:   hosts,
	Keys: []auth.Key{
		{Name: "environment", Check: func(v string) string {
			if v != "demo" && v != "live" {
				return fmt.Sprintf(`must be "demo" or "live", not %q`, v)
			}
			return ""
		}},
		{Name: "username"},
		{Name: "password", Secret: true},
		{Name: "app_id"},
		{Name: "app_version"},
		{Name: "cid"},
		{Name: "sec", Secret: true},
		{Name: "device_id"},
		{Name: "client_id"},
		{Name: "client_secret", Secret: true},
		{Name: "redirect_uri"},
	},
	Check:        check,
	New:          newBroker,
	BrowserLogin: func(v map[string]string) bool { return v["client_id"] != "" && v["password"] == "" },
	Bypass:       bypass,
	Orders:       Orders(),
}

// hosts are an account's default hosts: its environment's, or both when
// the environment is not "demo" or "live" (say, it names an unset variable).
func hosts(values map[string]string) []string {
	switch env := values["environment"]; env {
	case "demo", "live":
		return []string{env + ".tradovateapi.com", "md.tradovateapi.com"}
	}
	return []string{"demo.tradovateapi.com", "live.tradovateapi.com", "md.tradovateapi.com"}
}

func check(c auth.Checker) {
	c.Require("type tradovate", "environment")
	switch {
	case c.Given("password"):
		c.Require("tradovate credential login", "username", "password", "app_id", "app_version", "cid", "sec")
		c.Forbid(`is for OAuth login, but "password" selects credential login: remove one of them`,
			"client_id", "client_secret", "redirect_uri")
	case c.Given("client_id"):
		c.Require("tradovate OAuth login", "client_id", "client_secret")
		c.Forbid(`is for credential login (with "password"); OAuth login (with "client_id") does not use it`,
			"username", "app_id", "app_version", "cid", "sec", "device_id")
		c.Check("redirect_uri", auth.CheckRedirectURI)
		c.DefaultRedirect()
	default:
		c.Problem("", `needs either "password" (with username, app_id, app_version, cid, sec) for credential login, or "client_id" and "client_secret" for OAuth login`)
	}
}

func newBroker(s auth.Settings, d auth.Deps) (auth.Broker, error) {
	if !s.Has("password") {
		return auth.Built(NewOAuth(OAuthConfig{
			Account:      s.Account,
			ClientID:     s.Get("client_id"),
			ClientSecret: s.Secret("client_secret"),
		}, d.Client, d.Now, d.Logger))
	}
	device := s.Get("device_id")
	if device == "" {
		// Tradovate ties live orders to a stable device id: make one once
		// and keep it in the state dir.
		id, err := stableDeviceID(d.StateDir)
		if err != nil {
			return nil, fmt.Errorf("tradovate account %q: %w", s.Account, err)
		}
		device = id
		d.Logger.Info("tradovate account has no device_id; using this machine's", "account", s.Account,
			"file", filepath.Join(d.StateDir, deviceIDFile))
	}
	return auth.Built(New(Config{
		Account:     s.Account,
		Environment: s.Get("environment"),
		Username:    s.Get("username"),
		Password:    s.Secret("password"),
		AppID:       s.Get("app_id"),
		AppVersion:  s.Get("app_version"),
		CID:         s.Get("cid"),
		Sec:         s.Secret("sec"),
		DeviceID:    device,
	}, d.Client, d.Now, d.Logger))
}
