package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Required is one value a broker constructor cannot do without: its key in
// rules.toml and whether the account gives it.
type Required struct {
	Key string
	Set bool
}

// Need is a Required for key.
func Need(key string, set bool) Required { return Required{Key: key, Set: set} }

// CheckAccount is the first check of every broker constructor: with an
// empty account it returns "<kind>: account name is empty"; else, when any
// of required is not set, "<kind> account "<account>": missing k1, k2"
// naming them in the order given; else nil.
func CheckAccount(kind, account string, required ...Required) error {
	if account == "" {
		return errors.New(kind + ": account name is empty")
	}
	var missing []string
	for _, r := range required {
		if !r.Set {
			missing = append(missing, r.Key)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s account %q: missing %s", kind, account, strings.Join(missing, ", "))
	}
	return nil
}

// Defaults is what every broker constructor does with its dependencies: it
// fails with "<kind> account "<account>": no HTTP client" when client is
// nil, and returns now (time.Now when nil) and a logger (discarding when
// nil) that carries broker=kind and account=account.
func Defaults(kind, account string, client *HTTPClient, now func() time.Time, logger *slog.Logger) (func() time.Time, *slog.Logger, error) {
	if client == nil {
		return nil, nil, fmt.Errorf("%s account %q: no HTTP client", kind, account)
	}
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return now, logger.With("broker", kind, "account", account), nil
}
