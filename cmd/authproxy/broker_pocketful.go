package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/config"
)

// newPocketfulBroker builds the pocketful broker for account a.
func newPocketfulBroker(a *config.Account, client *auth.HTTPClient, now func() time.Time, logger *slog.Logger) (auth.Broker, error) {
	_, _, _ = client, now, logger
	return nil, fmt.Errorf("account %q: broker type %q is not supported by this build yet", a.Name, a.Type)
}
