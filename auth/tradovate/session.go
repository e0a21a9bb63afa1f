package tradovate

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/authproxy/authproxy/auth"
)

// MePath is the cheap authenticated call that tells a closed session from
// an outage.
const MePath = "/v1/auth/me"

// confirmTimeout bounds the confirmation call.
const confirmTimeout = 5 * time.Second

var _ auth.SessionChecker = (*Broker)(nil)

// SuspectDead reports whether resp may come from a closed session: per
// Tradovate's API docs a token whose session ended (the user logged in
// elsewhere; two sessions per user) answers 408, 429 or 5xx, not only 401.
func (b *Broker) SuspectDead(resp *http.Response) bool {
	c := resp.StatusCode
	return c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || (c >= 500 && c <= 599)
}

// SessionAlive asks GET /v1/auth/me once with t. 401 or 408 there means the
// session is gone (alive false); 2xx means it lives (the first answer was a
// passing fault); anything else (5xx, 429, no answer) is an outage and
// reported as an error, which must not lead to a login.
func (b *Broker) SessionAlive(ctx context.Context, t *auth.Token) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, confirmTimeout)
	defer cancel()
	base := strings.TrimSuffix(b.loginURL, LoginPath)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+MePath, nil)
	if err != nil {
		return false, fmt.Errorf("tradovate session check for %q: %w", b.cfg.Account, err)
	}
	req.Header.Set("Authorization", "Bearer "+t.Access.Reveal())
	req.Header.Set("Accept", "application/json")
	resp, err := b.client.Once(ctx, req)
	if err != nil {
		return false, fmt.Errorf("tradovate session check for %q: %w", b.cfg.Account, err)
	}
	_ = resp.Body.Close()
	switch c := resp.StatusCode; {
	case c == http.StatusUnauthorized || c == http.StatusRequestTimeout:
		b.log.InfoContext(ctx, "tradovate session is closed (logged in elsewhere?)", "status", c)
		return false, nil
	case c >= 200 && c <= 299:
		return true, nil
	default:
		return false, fmt.Errorf("tradovate session check for %q: HTTP %d: the broker has a fault, not the session", b.cfg.Account, c)
	}
}

var _ auth.RedirectFollower = (*Broker)(nil)

// FollowRedirect accepts https redirects to Tradovate's own API hosts
// (*.tradovateapi.com on port 443): the same session's token is valid there.
func (b *Broker) FollowRedirect(to *url.URL) bool { return followable(to) }

func followable(to *url.URL) bool {
	if to == nil || to.Scheme != "https" || (to.Port() != "" && to.Port() != "443") || to.User != nil {
		return false
	}
	h := strings.ToLower(strings.TrimSuffix(to.Hostname(), "."))
	return strings.HasSuffix(h, ".tradovateapi.com")
}
