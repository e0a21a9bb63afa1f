// Package upstox logs in to Upstox (api.upstox.com) through its daily
// OAuth2 authorization-code flow and writes the resulting token into
// requests as "Authorization: Bearer".
//
// What Upstox does, and where it is said ([P] primary: Upstox's API docs
// at upstox.com/developer/api-documentation or its official SDK
// github.com/upstox/upstox-python at bd21c54 (Jun 2026); [S] secondary;
// [I] inference):
//
//   - Authorization: the browser goes to GET
//     https://api.upstox.com/v2/login/authorization/dialog?response_type=code
//     &client_id=..&redirect_uri=..&state=.. and comes back to the app's
//     registered redirect_uri with ?code=..&state=.. [P SDK login_api
//     authorize; docs]. Upstox offers no way for an app to collect the
//     person's credentials [P docs, via a catalogue of them].
//   - Exchange: POST /v2/login/authorization/token, form code, client_id,
//     client_secret, redirect_uri, grant_type=authorization_code, with
//     headers Accept: application/json and Api-Version: 2.0 [P SDK
//     login_api token]. The answer is the user's profile plus access_token
//     (and extended_token for apps granted one); there is no expires_in and
//     no refresh token [P docs].
//   - Lifetime: a token is valid until 03:30 IST the next day, whenever it
//     was issued [P docs; S several clients]. Tokens are opaque (JWT-shaped
//     in practice, but nothing here relies on it).
//   - REST calls send "Authorization: Bearer <access_token>" [P SDK
//     configuration.auth_settings]. Orders go to api-hft.upstox.com (the
//     SDK's order_host for /order/place, /order/modify, /order/cancel) [P
//     SDK api_client], the rest to api.upstox.com.
//   - Errors: {"status":"error","errors":[{"errorCode"/"error_code",
//     "message","propertyPath","invalidValue"}]}; an invalid or expired
//     token is HTTP 401 (UDAPI100050 "Invalid token used to access API")
//     [P docs error-codes page, via a catalogue of it; S].
//   - WebSockets: the SDK's MarketDataStreamerV3 opens
//     wss://api.upstox.com/v3/feed/market-data-feed with the same
//     Authorization header, and the portfolio stream
//     /v2/feed/portfolio-stream-feed likewise [P SDK feeder]; the REST call
//     GET /v3/feed/market-data-feed/authorize (which returns a one-time
//     wss URL) is an ordinary Bearer call [P docs].
//   - Orders (see [Orders]), on either host: place (POST /v2 and /v3
//     /order/place, /v2/order/multi/place), modify (PUT /v2 and /v3
//     /order/modify), cancel (DELETE /v2 and /v3 /order/cancel,
//     /v2/order/multi/cancel), POST /v2/order/positions/exit and the v3 GTT
//     orders (POST place, PUT modify, DELETE cancel under /v3/order/gtt/) [P
//     SDK order_api and order_controller_v3_api]. A v2 answer carries
//     data.order_id, a v3 one data.order_ids [P SDK models].
//   - Rate limits: standard APIs 50/s, 500/min, 2000/30min; order APIs
//     counted per user [S docs summary; not checked here].
//
// The package never logs or returns the client secret, an authorization
// code or a token.
package upstox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/authproxy/authproxy/auth"
)

// Upstox's production hosts and endpoints.
const (
	APIHost   = "api.upstox.com"
	OrderHost = "api-hft.upstox.com"
	BaseURL   = "https://" + APIHost
	AuthPath  = "/v2/login/authorization/dialog"
	TokenPath = "/v2/login/authorization/token"
	// APIVersion is the Api-Version header the SDK sends.
	APIVersion = "2.0"
)

// DefaultHosts are the hosts an upstox account claims (the authorization
// dialog lives on APIHost too; Bypass lets it through untouched).
func DefaultHosts() []string { return []string{APIHost, OrderHost} }

// Token.Meta keys set by Exchange.
const (
	MetaUserID = "user_id"
)

// Config is one Upstox account.
type Config struct {
	Account      string      // the account name (rules.toml [brokers.NAME])
	ClientID     string      // the app's API key (OAuth client_id); not a secret
	ClientSecret auth.Secret // the app's API secret
}

// Broker is one Upstox account. It implements auth.Broker,
// auth.Interactive and auth.Bypasser and is safe for concurrent use.
type Broker struct {
	cfg   Config
	oauth oauth2.Config
	hc    *http.Client
	now   func() time.Time
	log   *slog.Logger
}

// Interface guards.
var (
	_ auth.Broker      = (*Broker)(nil)
	_ auth.Interactive = (*Broker)(nil)
	_ auth.Bypasser    = (*Broker)(nil)
)

// New checks cfg and returns a Broker. A nil now means time.Now and a nil
// logger discards.
func New(cfg Config, client *auth.HTTPClient, now func() time.Time, logger *slog.Logger) (*Broker, error) {
	if err := auth.CheckAccount("upstox", cfg.Account,
		auth.Need("client_id", cfg.ClientID != ""), auth.Need("client_secret", cfg.ClientSecret != "")); err != nil {
		return nil, err
	}
	now, log, err := auth.Defaults("upstox", cfg.Account, client, now, logger)
	if err != nil {
		return nil, err
	}
	return &Broker{
		cfg: cfg,
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret.Reveal(),
			Endpoint: oauth2.Endpoint{
				AuthURL:   BaseURL + AuthPath,
				TokenURL:  BaseURL + TokenPath,
				AuthStyle: oauth2.AuthStyleInParams,
			},
		},
		// x/oauth2's token request, once, with the headers the SDK sends.
		hc: &http.Client{Transport: auth.OnceTransport{Client: client,
			Header: map[string]string{"Accept": "application/json", "Api-Version": APIVersion}}},
		now: now,
		log: log,
	}, nil
}

// Login cannot log in without a person: it returns an error wrapping
// auth.ErrLoginRequired.
func (b *Broker) Login(context.Context) (*auth.Token, error) {
	return nil, fmt.Errorf("upstox account %q: a browser login is needed (once a day, tokens end at 03:30 IST): %w",
		b.cfg.Account, auth.ErrLoginRequired)
}

// NeedsBrowser is always true.
func (b *Broker) NeedsBrowser() bool { return true }

// AuthURL is Upstox's authorization dialog for state, coming back to
// redirectURI (which must be the one registered for the app).
func (b *Broker) AuthURL(state, redirectURI string) string {
	c := b.oauth
	c.RedirectURL = redirectURI
	return c.AuthCodeURL(state)
}

// Exchange turns the callback's code into a token that expires at the
// next 03:30 IST. Upstox's refusal is a *auth.LoginError carrying its
// message and error code; transport failures keep their cause for
// errors.Is/As.
func (b *Broker) Exchange(ctx context.Context, redirectURI string, callback url.Values) (*auth.Token, error) {
	code, err := auth.CallbackCode(b.cfg.Account, callback)
	if err != nil {
		return nil, err
	}
	c := b.oauth
	c.RedirectURL = redirectURI
	start := b.now()
	ot, err := c.Exchange(context.WithValue(ctx, oauth2.HTTPClient, b.hc), code)
	if err != nil {
		return nil, b.exchangeError(ctx, err, code)
	}
	if err := auth.CheckBearer(b.cfg.Account, ot.TokenType); err != nil {
		return nil, err
	}
	if !auth.IsB64Token(ot.AccessToken) {
		return nil, &auth.LoginError{Account: b.cfg.Account, Message: "the token answer has a malformed access_token"}
	}
	t := &auth.Token{
		Access:   auth.Secret(ot.AccessToken),
		Obtained: start,
		Expiry:   NextReset(start),
		Meta:     map[string]string{},
	}
	if uid, ok := ot.Extra("user_id").(string); ok && validUserID(uid) {
		t.Meta[MetaUserID] = uid
	}
	if !t.Expiry.After(b.now()) {
		return nil, &auth.LoginError{Account: b.cfg.Account, Message: "the new token has already expired; check the system clock"}
	}
	b.log.InfoContext(ctx, "upstox login ok", "user_id", t.Meta[MetaUserID], "expiry", t.Expiry)
	return t, nil
}

// exchangeError maps an x/oauth2 failure; it never quotes the code or the
// secret.
func (b *Broker) exchangeError(ctx context.Context, err error, code string) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		msg := ParseError(re.Body)
		if msg == "" {
			msg = auth.BrokerMessage(strings.TrimSuffix(re.ErrorCode+": "+re.ErrorDescription, ": "))
		}
		if msg == "" {
			msg = auth.StatusText(status)
		}
		msg = b.scrub(msg, code)
		b.log.WarnContext(ctx, "upstox code exchange refused", "status", status, "message", msg)
		if status == http.StatusTooManyRequests {
			return &auth.RateLimitError{Account: b.cfg.Account, Until: b.now().Add(time.Minute), Message: msg}
		}
		return &auth.LoginError{Account: b.cfg.Account, StatusCode: status, Message: msg}
	}
	var ue *url.Error
	if errors.As(err, &ue) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		b.log.WarnContext(ctx, "upstox code exchange failed", "err", err)
		return fmt.Errorf("upstox account %q: code exchange: %w", b.cfg.Account, err)
	}
	msg := b.scrub(strings.TrimPrefix(err.Error(), "oauth2: "), code)
	return &auth.LoginError{Account: b.cfg.Account, Message: msg}
}

// errorAnswer is Upstox's error envelope; both spellings of the code are
// emitted (the camelCase one is deprecated).
type errorAnswer struct {
	Status string `json:"status"`
	Errors []struct {
		ErrorCode  string `json:"error_code"`
		ErrorCodeC string `json:"errorCode"`
		Message    string `json:"message"`
	} `json:"errors"`
}

// ParseError returns "message (code)" of the first error in an Upstox
// error envelope, made safe to show, or "" when body is not one.
func ParseError(body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return ""
	}
	var a errorAnswer
	if json.Unmarshal(body, &a) != nil || len(a.Errors) == 0 {
		return ""
	}
	e := a.Errors[0]
	c := e.ErrorCode
	if c == "" {
		c = e.ErrorCodeC
	}
	msg := auth.BrokerMessage(e.Message)
	if c = auth.BrokerMessage(c); c != "" {
		msg = strings.TrimSpace(msg + " (" + c + ")")
	}
	return msg
}

func validUserID(s string) bool { return auth.Alnum(s, 32) }

// Inject replaces every Authorization header with "Bearer <token>" (REST
// calls on both hosts and the feed WebSocket handshakes alike).
func (b *Broker) Inject(r *http.Request, t *auth.Token) error {
	if t == nil || t.Access == "" {
		return fmt.Errorf("upstox account %q: no token to inject", b.cfg.Account)
	}
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	r.Header.Set("Authorization", "Bearer "+t.Access.Reveal())
	return nil
}

// Rejected reports whether Upstox refused the token: HTTP 401.
func (b *Broker) Rejected(resp *http.Response, _ func() []byte) bool {
	return resp.StatusCode == http.StatusUnauthorized
}

// Bypass reports whether r is for Upstox's own login endpoints (every
// path under /v2/login/ and /v3/login/: the authorization dialog, the code
// exchange, the access-token request): they are forwarded untouched and
// never get the account's token.
func (b *Broker) Bypass(r *http.Request) bool {
	if r.URL == nil {
		return false
	}
	p := strings.ToLower(path.Clean("/" + r.URL.Path))
	for _, prefix := range []string{"/v2/login/", "/v3/login/"} {
		if len(p) > len(prefix) && p[:len(prefix)] == prefix {
			return true
		}
	}
	return false
}

// NextReset is the first 03:30 IST after t, when Upstox tokens end.
func NextReset(t time.Time) time.Time { return auth.NextIST(t, 3, 30) }

// scrub is auth.BrokerMessage with the account's secrets and extra.
func (b *Broker) scrub(msg string, extra ...string) string {
	return auth.BrokerMessage(msg, append([]string{b.cfg.ClientSecret.Reveal()}, extra...)...)
}
