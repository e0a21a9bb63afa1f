package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/authproxy/authproxy/proxy"
)

// expiryWarner logs, once per token, that a browser-login account's token
// expires within proxy.LoginWarnAhead: a person must log in again.
type expiryWarner struct {
	warned map[string]time.Time // account -> the expiry already warned about
}

// check logs a warning for each account that newly became due.
func (x *expiryWarner) check(rep proxy.StatusReport, now time.Time, logger *slog.Logger) {
	if x.warned == nil {
		x.warned = map[string]time.Time{}
	}
	for _, a := range rep.Accounts {
		if a.Expiry == nil || !proxy.LoginDue(a, now) {
			continue
		}
		if prev, ok := x.warned[a.Name]; ok && prev.Equal(*a.Expiry) {
			continue
		}
		x.warned[a.Name] = *a.Expiry
		left := a.Expiry.Sub(now).Round(time.Minute)
		logger.Warn("browser-login token expires soon: log in again", "account", a.Name,
			"expires", a.Expiry.Local().Format(time.RFC3339), "in", left.String(), "login", a.LoginURL)
	}
}

// warnExpiries checks every minute until ctx is done.
func warnExpiries(ctx context.Context, status func() proxy.StatusReport, logger *slog.Logger) {
	var x expiryWarner
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		x.check(status(), time.Now(), logger)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
