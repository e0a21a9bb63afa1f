package main

import (
	"log/slog"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/fivepaisa"
	"github.com/authproxy/authproxy/config"
)

// newFivepaisaBroker builds the fivepaisa broker for account a: TOTP login
// when pin/totp_secret are set, else the vendor (browser) login.
func newFivepaisaBroker(a *config.Account, client *auth.HTTPClient, now func() time.Time, logger *slog.Logger) (auth.Broker, error) {
	cfg := fivepaisa.Config{
		Account:       a.Name,
		AppKey:        a.Secret("app_key"),
		UserID:        a.Get("user_id"),
		EncryptionKey: a.Secret("encryption_key"),
		ClientCode:    a.Get("client_code"),
		PIN:           a.Secret("pin"),
		TOTPSecret:    a.Secret("totp_secret"),
	}
	if cfg.PIN == "" && cfg.TOTPSecret == "" {
		b, err := fivepaisa.NewBrowser(cfg, client, now, logger)
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	b, err := fivepaisa.New(cfg, client, now, logger)
	if err != nil {
		return nil, err
	}
	return b, nil
}
