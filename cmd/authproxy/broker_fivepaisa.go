package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/config"
)

// newFivepaisaBroker builds the fivepaisa broker for account a.
func newFivepaisaBroker(a *config.Account, client *auth.HTTPClient, now func() time.Time, logger *slog.Logger) (auth.Broker, error) {
	_, _, _ = client, now, logger
	return nil, fmt.Errorf("account %q: broker type %q is not supported by this build yet", a.Name, a.Type)
}
