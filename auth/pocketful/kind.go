package pocketful

import (
	"strconv"
	"strings"

	"github.com/authproxy/authproxy/auth"
)

// Kind describes Pocketful accounts (type = "pocketful") to config and the
// proxy.
var Kind = auth.Kind{
	Type:    "pocketful",
	Display: "Pocketful",
	Domains: []string{"pocketful.in"},
	Hosts:   func(map[string]string) []string { return []string{"trade.pocketful.in"} },
	Keys: []auth.Key{
		{Name: "client_id"},
		{Name: "client_secret", Secret: true},
		{Name: "redirect_uri", Check: auth.CheckRedirectURI},
		{Name: "scope"},
		{Name: "fill_client_id", Kind: auth.KeyBool},
	},
	Check: func(c auth.Checker) {
		c.Require("type pocketful", "client_id", "client_secret")
		c.DefaultRedirect()
		if !c.Given("scope") {
			c.Default("scope", DefaultScope)
		} else if c.Known("scope") && strings.TrimSpace(c.Value("scope")) == "" {
			c.Problem("scope", "must not be empty (leave it out for "+strconv.Quote(DefaultScope)+")")
		}
		c.Default("fill_client_id", "true")
	},
	New: func(s auth.Settings, d auth.Deps) (auth.Broker, error) {
		fill, err := s.Bool("fill_client_id", true)
		if err != nil {
			return nil, err
		}
		return auth.Built(New(Config{
			Account:      s.Account,
			ClientID:     s.Get("client_id"),
			ClientSecret: s.Secret("client_secret"),
			Scope:        s.Get("scope"),
			FillClientID: fill,
		}, d.Client, d.Now, d.Logger))
	},
	BrowserLogin: func(map[string]string) bool { return true },
	Bypass:       (&Broker{}).Bypass,
	Orders:       Orders(),
}
