// Package tradovate logs in to Tradovate (US futures, brokers.md §2) and
// writes its tokens into requests as "Authorization: Bearer".
//
// Two kinds of account exist, each its own type:
//
//   - [Broker]: credential login (name, password, app id and version, cid,
//     sec, device id) at {rest}/v1/auth/accesstokenrequest, where rest is
//     https://<environment>.tradovateapi.com. Every such login opens a
//     server session (two at most; a third closes the oldest), so a login is
//     never retried blindly and tokens are renewed with
//     /v1/auth/renewaccesstoken instead (auth.Refresher). Penalty tickets
//     (p-ticket, p-time) are waited out and the login resent with the
//     ticket; a captcha, HTTP 423 or HTTP 429 stops all logins for an hour
//     (auth.RateLimitError).
//   - [OAuthBroker]: the authorization-code flow (consent page at
//     trader.tradovate.com, token endpoint
//     https://live.tradovateapi.com/auth/oauthtoken) through
//     golang.org/x/oauth2, with rotating refresh tokens (auth.Interactive,
//     auth.Refresher).
//
// Both inject the access token on the REST hosts and the market-data token
// (mdAccessToken, when there is one) on the md hosts, and let a client's own
// calls to the token endpoints through untouched (auth.Bypasser).
//
// The package only describes how to log in, renew and inject; when to do
// each is the caller's business (auth.Cache, the proxy). It never logs or
// returns a password, API secret, client secret or token.
//
// Orders (see [Orders]), from Tradovate's REST reference
// (partner.tradovate.com/api/rest-api-endpoints/orders: Place Order, Modify
// Order, Cancel Order, Place OSO, Place OCO, Liquidate Position; and the
// order-strategy endpoints start/modify/interrupt): POST /v1/order/placeorder,
// modifyorder, cancelorder, placeoso, placeoco, liquidateposition, and POST
// /v1/orderstrategy/startorderstrategy, modifyorderstrategy,
// interruptorderstrategy. Paths match case-insensitively (the docs' own
// examples write /order/placeOSO).
package tradovate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/authproxy/authproxy/auth"
)

// Tradovate's fixed addresses.
const (
	// ConsentURL is the OAuth consent page.
	ConsentURL = "https://trader.tradovate.com/oauth"
	// OAuthTokenURL is the OAuth token endpoint (the tutorial's path, with
	// no /v1).
	OAuthTokenURL = "https://live.tradovateapi.com/auth/oauthtoken"
	// LoginPath and RenewPath are relative to https://<environment>.tradovateapi.com.
	LoginPath = "/v1/auth/accesstokenrequest"
	RenewPath = "/v1/auth/renewaccesstoken"
)

// AuxMD is the auth.Token Aux key holding the market-data token.
const AuxMD = "md"

// MetaUserID is the auth.Token Meta key holding Tradovate's user id.
const MetaUserID = "user_id"

// DefaultLifetime is assumed when an answer carries no usable expiry:
// shorter than the documented 90 minutes, so renewal comes early rather
// than late.
const DefaultLifetime = 80 * time.Minute

// Lockout is how long Tradovate asks clients to stop after a captcha,
// HTTP 423 or HTTP 429.
const Lockout = time.Hour

const (
	maxBody       = 1 << 20 // token answers are a few hundred bytes
	maxMessageLen = auth.MaxMessageLen
	maxTokenLen   = 16 << 10
)

// bypassPath reports whether p is one of Tradovate's token endpoints (login,
// OAuth code exchange, renewal), which a client may call itself: they are
// never injected into, so no client can mint or renew a token with the
// account's own through the proxy.
func bypassPath(p string) bool {
	p = strings.ToLower(path.Clean("/" + p))
	switch p {
	case "/v1/auth/accesstokenrequest", "/auth/accesstokenrequest", "/v1/auth/oauthtoken", "/auth/oauthtoken",
		"/v1/auth/renewaccesstoken", "/auth/renewaccesstoken":
		return true
	}
	return false
}

// IsMDHost reports whether host (a name, optionally with a port) is a
// market-data host (md.tradovateapi.com, md-demo.tradovateapi.com, and
// likewise named hosts): those get the mdAccessToken.
func IsMDHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	label, _, _ := strings.Cut(host, ".")
	return label == "md" || strings.HasPrefix(label, "md-")
}

// inject sets the bearer on r: the md token on md hosts when t has one, the
// access token everywhere else. Every Authorization the client sent, in any
// spelling, is removed first.
func inject(account string, r *http.Request, t *auth.Token) error {
	if t == nil || t.Access == "" {
		return fmt.Errorf("tradovate account %q: no token to inject", account)
	}
	host := r.Host
	if r.URL != nil && r.URL.Host != "" {
		host = r.URL.Host
	}
	tok := t.Access
	if md := t.Aux[AuxMD]; md != "" && IsMDHost(host) {
		tok = md
	}
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	r.Header.Set("Authorization", "Bearer "+tok.Reveal())
	prepareUpgrade(r) // WebSocket upgrades: no compression, so the authorize frame stays readable (stream.go)
	return nil
}

// bypass reports whether r is for one of Tradovate's token endpoints.
func bypass(r *http.Request) bool {
	return r != nil && r.URL != nil && bypassPath(r.URL.Path)
}

// rejected reports whether Tradovate refused the token: HTTP 401. Business
// errors arrive as 200 with errorText and are the client's to read.
func rejected(resp *http.Response) bool {
	return resp != nil && resp.StatusCode == http.StatusUnauthorized
}

// readBody reads a bounded answer.
func readBody(resp *http.Response) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if len(raw) > maxBody {
		return nil, errors.New("response too large")
	}
	return bytes.TrimSpace(raw), nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// validToken reports whether s can go into an Authorization header as is:
// printable ASCII without spaces or commas, bounded in length.
func validToken(s string) bool {
	if s == "" || len(s) > maxTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == ',' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
