package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/tradovate"
	"github.com/authproxy/authproxy/config"
)

// newTradovateBroker builds the tradovate broker for account a: credential
// login when the table has "password" (config has checked the keys that go
// with it), OAuth login with "client_id" otherwise.
func newTradovateBroker(a *config.Account, client *auth.HTTPClient, now func() time.Time, logger *slog.Logger, stateDir string) (auth.Broker, error) {
	if _, credentials := a.Values["password"]; credentials {
		device := a.Get("device_id")
		if device == "" {
			// Tradovate ties live orders to a stable device id: make one
			// once and keep it in the state dir.
			id, err := stableDeviceID(stateDir)
			if err != nil {
				return nil, fmt.Errorf("tradovate account %q: %w", a.Name, err)
			}
			device = id
			logger.Info("tradovate account has no device_id; using this machine's", "account", a.Name,
				"file", filepath.Join(stateDir, deviceIDFile))
		}
		b, err := tradovate.New(tradovate.Config{
			Account:     a.Name,
			Environment: a.Get("environment"),
			Username:    a.Get("username"),
			Password:    a.Secret("password"),
			AppID:       a.Get("app_id"),
			AppVersion:  a.Get("app_version"),
			CID:         a.Get("cid"),
			Sec:         a.Secret("sec"),
			DeviceID:    device,
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
