// Package kite logs in to Zerodha Kite Connect (api.kite.trade) through its
// browser login and writes the resulting access token into requests as
// "Authorization: token <api_key>:<access_token>".
//
// What Kite does, and where it is said ([P] primary: Zerodha's docs or its
// official SDK github.com/zerodha/pykiteconnect at f5531bd (Apr 2026);
// [S] secondary: Zerodha staff on the kite.trade forum; [I] inference):
//
//   - Login is a browser login only: the person opens
//     https://kite.zerodha.com/connect/login?v=3&api_key=<key> [P SDK
//     login_url], logs in with password and 2FA on Zerodha's page, and is
//     sent to the redirect URL registered for the app with
//     ?request_token=..&action=login&status=success [P docs]. The redirect
//     URL cannot be given per login; extra query values travel through the
//     "redirect_params" parameter (URL-encoded) and come back [P docs], which
//     is how AuthURL carries the state. Zerodha's terms forbid automating
//     the password/TOTP login, so Login never tries.
//   - The request token is single-use and lives a few minutes [S forum].
//     POST https://api.kite.trade/session/token, form api_key,
//     request_token, checksum = hex(SHA-256(api_key + request_token +
//     api_secret)) [P SDK generate_session] answers
//     {"status":"success","data":{"access_token","public_token",
//     "refresh_token","user_id",...}}.
//   - The access token is valid until 06:00 IST the next day [P docs:
//     "flushed every day at 6 AM"; S forum]; there is no renewal for
//     ordinary apps (refresh_token is empty for them [S forum]).
//   - REST calls send "X-Kite-Version: 3" and "Authorization: token
//     api_key:access_token" [P SDK _request].
//   - Errors: {"status":"error","message":"..","error_type":"TokenException"
//     |"InputException"|...} with an HTTP status; an expired or invalid
//     token is 403 TokenException [P SDK exceptions.py and its session
//     expiry hook].
//   - The ticker, wss://ws.kite.trade, authenticates in its query:
//     ?api_key=..&access_token=.. [P SDK ticker.py].
//   - Rate limits: quote 1 r/s, historical 3 r/s, other endpoints 10 r/s;
//     orders 10 per second, 400 per minute, 5000 per day per account [S
//     forum quoting the docs]. 429 when exceeded.
//   - Orders (see [Orders]): POST /orders/{variety} (place), PUT and DELETE
//     /orders/{variety}/{order_id} (modify, cancel), GTT triggers (POST
//     /gtt/triggers, PUT and DELETE /gtt/triggers/{id}), mutual-fund orders
//     (POST /mf/orders, DELETE /mf/orders/{id}) and SIPs (POST /mf/sips, PUT
//     and DELETE /mf/sips/{id}) [P SDK _routes]. An order answer carries
//     data.order_id [P SDK place_order].
//
// The package talks only to the production hosts; tests redirect the names
// with the transport. It never logs or returns the API secret, a request
// token or an access token.
package kite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/authproxy/authproxy/auth"
)

// Kite's production hosts and endpoints.
const (
	APIHost     = "api.kite.trade"
	TickerHost  = "ws.kite.trade"
	LoginHost   = "kite.zerodha.com"
	APIBaseURL  = "https://" + APIHost
	LoginURL    = "https://" + LoginHost + "/connect/login"
	SessionPath = "/session/token"
	// Version is the X-Kite-Version every call sends.
	Version = "3"
)

// DefaultHosts are the hosts a kite account claims. The login page on
// LoginHost is not among them: the browser reaches it directly.
func DefaultHosts() []string { return []string{APIHost, TickerHost} }

// Token.Meta keys set by Exchange.
const (
	MetaUserID = "user_id"
)

const (
	maxBody = 1 << 20
	// resetHour is when Kite flushes every access token (IST).
	resetHour = 6
)

// Config is one Kite Connect account.
type Config struct {
	Account   string      // the account name (rules.toml [brokers.NAME]); used in logs and errors
	APIKey    string      // the app's api_key; not a secret (it travels in URLs)
	APISecret auth.Secret // the app's api_secret
}

// Broker is one Kite account. It implements auth.Broker, auth.Interactive
// and auth.Bypasser and is safe for concurrent use.
type Broker struct {
	cfg    Config
	client *auth.HTTPClient
	now    func() time.Time
	log    *slog.Logger
}

// Interface guards.
var (
	_ auth.Broker      = (*Broker)(nil)
	_ auth.Interactive = (*Broker)(nil)
	_ auth.Bypasser    = (*Broker)(nil)
)

// New checks cfg and returns a Broker. client carries every call to Kite.
// A nil now means time.Now and a nil logger discards.
func New(cfg Config, client *auth.HTTPClient, now func() time.Time, logger *slog.Logger) (*Broker, error) {
	if err := auth.CheckAccount("kite", cfg.Account,
		auth.Need("api_key", cfg.APIKey != ""), auth.Need("api_secret", cfg.APISecret != "")); err != nil {
		return nil, err
	}
	if !validKey(cfg.APIKey) {
		return nil, fmt.Errorf("kite account %q: api_key must be letters and digits", cfg.Account)
	}
	now, log, err := auth.Defaults("kite", cfg.Account, client, now, logger)
	if err != nil {
		return nil, err
	}
	return &Broker{cfg: cfg, client: client, now: now, log: log}, nil
}

// validKey accepts what can go into the "token key:access" header and a
// query unescaped (Kite's keys are lower-case alphanumerics).
func validKey(s string) bool { return auth.Alnum(s, 128) }

// Login cannot log in without a person (Kite's terms forbid automating its
// login): it returns an error wrapping auth.ErrLoginRequired.
func (b *Broker) Login(context.Context) (*auth.Token, error) {
	return nil, fmt.Errorf("kite account %q: a browser login is needed (once a day, tokens end at 06:00 IST): %w",
		b.cfg.Account, auth.ErrLoginRequired)
}

// NeedsBrowser is always true.
func (b *Broker) NeedsBrowser() bool { return true }

// AuthURL is Kite's login page for the app, with state (and the redirect
// URI the proxy expects, for the person's information only: Kite always
// redirects to the URL registered for the app) carried back through
// redirect_params.
func (b *Broker) AuthURL(state, _ string) string {
	q := url.Values{"v": {Version}, "api_key": {b.cfg.APIKey}}
	if state != "" {
		q.Set("redirect_params", url.Values{"state": {state}}.Encode())
	}
	return LoginURL + "?" + q.Encode()
}

// Checksum is Kite's session checksum: hex(SHA-256(apiKey + token +
// apiSecret)).
func Checksum(apiKey, token, apiSecret string) string {
	sum := sha256.Sum256([]byte(apiKey + token + apiSecret))
	return hex.EncodeToString(sum[:])
}

// Exchange turns the callback's request_token into an access token: one
// POST /session/token (never retried: the request token is spent when the
// request leaves). A callback with status other than success, or without a
// request token, is a *auth.LoginError and sends nothing.
func (b *Broker) Exchange(ctx context.Context, _ string, callback url.Values) (*auth.Token, error) {
	if st := callback.Get("status"); st != "" && st != "success" {
		return nil, &auth.LoginError{Account: b.cfg.Account, Message: "Kite login did not succeed (status " + strconv.Quote(auth.BrokerMessage(st)) + ")"}
	}
	rt := callback.Get("request_token")
	if rt == "" {
		return nil, &auth.LoginError{Account: b.cfg.Account, Message: "the callback carries no request_token"}
	}
	if len(rt) > 256 || strings.ContainsAny(rt, "\r\n") {
		return nil, &auth.LoginError{Account: b.cfg.Account, Message: "the callback's request_token is malformed"}
	}
	form := url.Values{
		"api_key":       {b.cfg.APIKey},
		"request_token": {rt},
		"checksum":      {Checksum(b.cfg.APIKey, rt, b.cfg.APISecret.Reveal())},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, APIBaseURL+SessionPath, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("kite account %q: %w", b.cfg.Account, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Kite-Version", Version)
	req.Header.Set("Accept", "application/json")
	start := b.now()
	resp, err := b.client.Do(ctx, req, false)
	if err != nil {
		b.log.WarnContext(ctx, "kite session request failed", "err", err)
		return nil, fmt.Errorf("kite account %q: session token: %w", b.cfg.Account, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("kite account %q: read session answer: %w", b.cfg.Account, err)
	}
	s, err := ParseSession(resp.StatusCode, raw)
	if err != nil {
		var le *auth.LoginError
		if errors.As(err, &le) {
			le.Account = b.cfg.Account
			le.Message = b.scrub(le.Message, rt)
			b.log.WarnContext(ctx, "kite session refused", "status", resp.StatusCode, "message", le.Message)
			if resp.StatusCode == http.StatusTooManyRequests {
				return nil, &auth.RateLimitError{Account: b.cfg.Account, Until: b.now().Add(time.Minute), Message: le.Message}
			}
		}
		return nil, err
	}
	t := &auth.Token{
		Access:   auth.Secret(s.AccessToken),
		Obtained: start,
		Expiry:   NextReset(start),
		Meta:     map[string]string{},
	}
	if s.UserID != "" {
		t.Meta[MetaUserID] = s.UserID
	}
	if !t.Expiry.After(b.now()) {
		return nil, &auth.LoginError{Account: b.cfg.Account, Message: "the new token has already expired; check the system clock"}
	}
	b.log.InfoContext(ctx, "kite login ok", "user_id", s.UserID, "expiry", t.Expiry)
	return t, nil
}

// Session is what ParseSession reads from a /session/token answer.
type Session struct {
	AccessToken string
	UserID      string
}

type envelope struct {
	Status    string          `json:"status"`
	Message   string          `json:"message"`
	ErrorType string          `json:"error_type"`
	Data      json.RawMessage `json:"data"`
}

// ParseSession reads a /session/token answer with HTTP status status. Any
// answer but a 2xx {"status":"success"} with a header-safe access_token is
// a *auth.LoginError (Account unset) carrying Kite's error_type and
// message; it never quotes the body otherwise.
func ParseSession(status int, body []byte) (Session, error) {
	fail := func(msg string) (Session, error) {
		return Session{}, &auth.LoginError{StatusCode: status, Message: msg}
	}
	var env envelope
	if err := json.Unmarshal(bytes.TrimSpace(body), &env); err != nil {
		if status < 200 || status > 299 {
			return fail("unreadable answer: " + auth.StatusText(status))
		}
		return fail("unreadable session answer")
	}
	if status < 200 || status > 299 || env.Status != "success" {
		msg := auth.BrokerMessage(strings.TrimSpace(env.ErrorType + ": " + env.Message))
		msg = strings.Trim(msg, ": ")
		if msg == "" {
			msg = auth.StatusText(status)
		}
		return fail(msg)
	}
	var d struct {
		AccessToken string `json:"access_token"`
		UserID      string `json:"user_id"`
	}
	if err := json.Unmarshal(env.Data, &d); err != nil {
		return fail("the session answer has no data")
	}
	if !auth.IsB64Token(d.AccessToken) {
		return fail("the session answer has no usable access_token")
	}
	uid := d.UserID
	if !validUserID(uid) {
		uid = ""
	}
	return Session{AccessToken: d.AccessToken, UserID: uid}, nil
}

func validUserID(s string) bool { return auth.Alnum(s, 32) }

// Inject writes the account's credentials into r. On the ticker host it
// sets api_key and access_token in the query (replacing the client's);
// everywhere else it replaces every Authorization header with "token
// <api_key>:<access_token>" and adds "X-Kite-Version: 3" when the client
// sent none.
func (b *Broker) Inject(r *http.Request, t *auth.Token) error {
	if t == nil || t.Access == "" {
		return fmt.Errorf("kite account %q: no token to inject", b.cfg.Account)
	}
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	if auth.RequestHost(r) == TickerHost && r.URL != nil {
		q := r.URL.Query()
		q.Set("api_key", b.cfg.APIKey)
		q.Set("access_token", t.Access.Reveal())
		r.URL.RawQuery = q.Encode()
		return nil
	}
	r.Header.Set("Authorization", "token "+b.cfg.APIKey+":"+t.Access.Reveal())
	if r.Header.Get("X-Kite-Version") == "" {
		r.Header.Set("X-Kite-Version", Version)
	}
	return nil
}

// Rejected reports whether Kite refused the token: a 403 whose JSON body
// has error_type TokenException (other 403s, such as PermissionException,
// are the client's business), or a 403 on the ticker's upgrade.
func (b *Broker) Rejected(resp *http.Response, peek func() []byte) bool {
	if resp.StatusCode != http.StatusForbidden {
		return false
	}
	if resp.Request != nil && auth.RequestHost(resp.Request) == TickerHost {
		return true
	}
	if peek == nil {
		return false
	}
	return IsTokenException(peek())
}

// IsTokenException reports whether body is a Kite error envelope with
// error_type TokenException.
func IsTokenException(body []byte) bool {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return false
	}
	var e envelope
	return json.Unmarshal(body, &e) == nil && e.ErrorType == "TokenException"
}

// Bypass reports whether r is for Kite's own session endpoints
// (/session/token: exchange and logout; /session/refresh_token): they are
// forwarded untouched and never get the account's token.
func (b *Broker) Bypass(r *http.Request) bool {
	if r.URL == nil {
		return false
	}
	p := path.Clean("/" + r.URL.Path)
	const prefix = "/session/"
	return len(p) > len(prefix) && strings.EqualFold(p[:len(prefix)], prefix)
}

// NextReset is the first 06:00 IST after t, when Kite flushes tokens.
func NextReset(t time.Time) time.Time { return auth.NextIST(t, resetHour, 0) }

// scrub is auth.BrokerMessage with the account's secrets and extra.
func (b *Broker) scrub(msg string, extra ...string) string {
	return auth.BrokerMessage(msg, append([]string{b.cfg.APISecret.Reveal()}, extra...)...)
}
