package main

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/pocketful"
	"github.com/authproxy/authproxy/config"
)

// newPocketfulBroker builds the pocketful broker for account a.
func newPocketfulBroker(a *config.Account, client *auth.HTTPClient, now func() time.Time, logger *slog.Logger) (auth.Broker, error) {
	fill := true
	if v := a.Get("fill_client_id"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("account %q: fill_client_id %q is not true or false", a.Name, v)
		}
		fill = b
	}
	return pocketful.New(pocketful.Config{
		Account:      a.Name,
		ClientID:     a.Get("client_id"),
		ClientSecret: a.Secret("client_secret"),
		Scope:        a.Get("scope"),
		FillClientID: fill,
	}, client, now, logger)
}
