package main

import (
	"log/slog"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/tradovate"
	"github.com/authproxy/authproxy/config"
)

// newTradovateBroker builds the tradovate broker for account a: credential
// login when the table has "password" (config has checked the keys that go
// with it), OAuth login with "client_id" otherwise.
func newTradovateBroker(a *config.Account, client *auth.HTTPClient, now func() time.Time, logger *slog.Logger) (auth.Broker, error) {
	if _, credentials := a.Values["password"]; credentials {
		b, err := tradovate.New(tradovate.Config{
			Account:     a.Name,
			Environment: a.Get("environment"),
			Username:    a.Get("username"),
			Password:    a.Secret("password"),
			AppID:       a.Get("app_id"),
			AppVersion:  a.Get("app_version"),
			CID:         a.Get("cid"),
			Sec:         a.Secret("sec"),
			DeviceID:    a.Get("device_id"),
		}, client, now, logger)
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	b, err := tradovate.NewOAuth(tradovate.OAuthConfig{
		Account:      a.Name,
		ClientID:     a.Get("client_id"),
		ClientSecret: a.Secret("client_secret"),
	}, client, now, logger)
	if err != nil {
		return nil, err
	}
	return b, nil
}
