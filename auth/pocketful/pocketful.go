// Package pocketful logs in to Pocketful (trade.pocketful.in) through its
// OAuth2 authorization-code flow and writes the resulting token into
// requests as "Authorization: Bearer".
//
// Pocketful issues no refresh token: the access token dies at midnight IST
// whatever expires_in says, and a new one needs the person's browser login
// (credentials and 2FA) once a day. So Login never logs in by itself; it
// returns an error wrapping auth.ErrLoginRequired, and the proxy sends the
// person to /login/NAME, which leads through AuthURL and back to Exchange.
// Exchange also reads the account's client id (trading_info) so that Inject
// can add client_id to the GET routes that need it when a client leaves it
// out.
//
// The package talks only to the production host; tests redirect the name
// with the transport. It never logs or returns the client secret, an
// authorization code or a token.
//
// Orders (see [Orders]), from Pocketfulapi-python's routes and the API docs
// (brokers.md "Pocketful"): POST /api/v1/orders (place), PUT /api/v1/orders
// (modify), DELETE /api/v1/orders/{oms_order_id} (cancel), and the
// conditional/basket route /api/v1/orders/kart (POST, PUT, DELETE).
package pocketful

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/authproxy/authproxy/auth"
)

// Pocketful's production host and endpoints.
const (
	Host            = "trade.pocketful.in"
	BaseURL         = "https://" + Host
	AuthPath        = "/oauth2/auth"
	TokenPath       = "/oauth2/token"
	TradingInfoPath = "/api/v1/user/trading_info"
	// FeedPath is the market-data WebSocket; it authenticates in its query.
	FeedPath = "/ws/v1/feeds"
)

// DefaultScope is asked for when Config.Scope is empty.
const DefaultScope = "orders holdings"

// Token.Meta keys set by Exchange.
const (
	MetaClientID = "client_id" // the trading account's client id, from trading_info
	MetaScope    = "scope"     // the scope Pocketful granted
)

const (
	maxBody       = 1 << 20 // token and trading_info answers are small
	maxMessageLen = auth.MaxMessageLen
	istOffset     = 5*3600 + 1800
)

// Config is one Pocketful account.
type Config struct {
	Account      string      // the account name (rules.toml [brokers.NAME]); used in logs and errors
	ClientID     string      // the app id (OAuth client_id); not a secret
	ClientSecret auth.Secret // the app secret
	Scope        string      // space-separated; default DefaultScope
	// FillClientID makes Inject add client_id=<the account's client id> to
	// GET routes that need it when the client left it out.
	FillClientID bool
}

// Broker is one Pocketful account. It implements auth.Broker,
// auth.Interactive and auth.Bypasser and is safe for concurrent use.
type Broker struct {
	cfg    Config
	oauth  oauth2.Config // without RedirectURL: each call supplies its own
	client *auth.HTTPClient
	hc     *http.Client // over client, for x/oauth2
	now    func() time.Time
	log    *slog.Logger
}

// Interface guards.
var (
	_ auth.Broker      = (*Broker)(nil)
	_ auth.Interactive = (*Broker)(nil)
	_ auth.Bypasser    = (*Broker)(nil)
)

// New checks cfg and returns a Broker. client carries every call to
// Pocketful (the verifying upstream transport). A nil now means time.Now and
// a nil logger discards.
func New(cfg Config, client *auth.HTTPClient, now func() time.Time, logger *slog.Logger) (*Broker, error) {
	if err := auth.CheckAccount("pocketful", cfg.Account,
		auth.Need("client_id", cfg.ClientID != ""), auth.Need("client_secret", cfg.ClientSecret != "")); err != nil {
		return nil, err
	}
	now, log, err := auth.Defaults("pocketful", cfg.Account, client, now, logger)
	if err != nil {
		return nil, err
	}
	scopes := strings.Fields(cfg.Scope)
	if len(scopes) == 0 {
		scopes = strings.Fields(DefaultScope)
	}
	cfg.Scope = strings.Join(scopes, " ")
	return &Broker{
		cfg: cfg,
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret.Reveal(),
			Endpoint: oauth2.Endpoint{
				AuthURL:   BaseURL + AuthPath,
				TokenURL:  BaseURL + TokenPath,
				AuthStyle: oauth2.AuthStyleInHeader,
			},
			Scopes: scopes,
		},
		client: client,
		hc: &http.Client{Transport: auth.OnceTransport{Client: client,
			Header: map[string]string{"Cache-Control": "no-cache", "Accept": "application/json"}}},
		now: now,
		log: log,
	}, nil
}

// Login cannot log in without a person: it returns an error wrapping
// auth.ErrLoginRequired.
func (b *Broker) Login(context.Context) (*auth.Token, error) {
	return nil, fmt.Errorf("pocketful account %q: a browser login is needed (once a day, Pocketful has no refresh): %w",
		b.cfg.Account, auth.ErrLoginRequired)
}

// NeedsBrowser is always true: Pocketful logs in only through a browser.
func (b *Broker) NeedsBrowser() bool { return true }

// AuthURL is Pocketful's consent page for state, coming back to
// redirectURI: /oauth2/auth?client_id=..&redirect_uri=..&response_type=code
// &scope=..&state=.. (redirect_uri, not the docs' misspelt redirect-uri).
func (b *Broker) AuthURL(state, redirectURI string) string {
	c := b.oauth
	c.RedirectURL = redirectURI
	return c.AuthCodeURL(state)
}

// Exchange turns the callback's code into a token: POST /oauth2/token with
// HTTP Basic client authentication, then one GET trading_info for the
// account's client id (a failure there is logged and leaves client_id
// unset). The token expires at the earlier of expires_in and the next
// midnight IST. Pocketful's refusal is a *auth.LoginError with its
// error/error_description; transport failures keep their cause for
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
		return nil, b.exchangeError(err, code)
	}
	if err := auth.CheckBearer(b.cfg.Account, ot.TokenType); err != nil {
		return nil, err
	}
	if !auth.IsB64Token(ot.AccessToken) {
		return nil, &auth.LoginError{Account: b.cfg.Account, Message: "the token response has a malformed access_token"}
	}
	var lifetime time.Duration
	if ot.ExpiresIn > 0 {
		lifetime = time.Duration(ot.ExpiresIn) * time.Second
	}
	t := &auth.Token{
		Access:   auth.Secret(ot.AccessToken),
		Obtained: start,
		Expiry:   Expiry(start, lifetime),
		Meta:     map[string]string{},
	}
	if !t.Expiry.After(b.now()) {
		return nil, &auth.LoginError{Account: b.cfg.Account, Message: "the new token has already expired; check the system clock"}
	}
	if s, ok := ot.Extra("scope").(string); ok && s != "" {
		t.Meta[MetaScope] = auth.BrokerMessage(s)
	}
	cid, err := b.tradingInfo(ctx, t.Access)
	if err != nil {
		b.log.WarnContext(ctx, "pocketful trading_info failed; client_id will not be filled in", "err", err)
	} else {
		t.Meta[MetaClientID] = cid
	}
	b.log.InfoContext(ctx, "pocketful login ok", "client_id", cid, "expiry", t.Expiry, "scope", t.Meta[MetaScope])
	return t, nil
}

// exchangeError maps an x/oauth2 failure. It never quotes the response
// body, the code or the secret.
func (b *Broker) exchangeError(err error, code string) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		msg := re.ErrorCode
		if re.ErrorDescription != "" {
			msg += ": " + re.ErrorDescription
		}
		msg = b.scrub(auth.BrokerMessage(msg), code)
		if msg == "" {
			msg = "the token endpoint answered " + auth.StatusText(status)
		}
		b.log.Warn("pocketful code exchange refused", "status", status, "message", msg)
		return &auth.LoginError{Account: b.cfg.Account, StatusCode: status, Message: msg}
	}
	var ue *url.Error
	if errors.As(err, &ue) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		b.log.Warn("pocketful code exchange failed", "err", err)
		return fmt.Errorf("pocketful account %q: code exchange: %w", b.cfg.Account, err)
	}
	// x/oauth2's own complaints ("server response missing access_token",
	// unparsable JSON): the broker answered, but not with a token.
	msg := b.scrub(auth.BrokerMessage(strings.TrimPrefix(err.Error(), "oauth2: ")), code)
	return &auth.LoginError{Account: b.cfg.Account, Message: msg}
}

// tradingInfoAnswer is the part of trading_info Exchange reads.
type tradingInfoAnswer struct {
	Status    string `json:"status"`
	Message   string `json:"message"`
	ErrorType string `json:"error_type"`
	Data      *struct {
		ClientID string `json:"client_id"`
	} `json:"data"`
}

// tradingInfo returns the account's client id.
func (b *Broker) tradingInfo(ctx context.Context, access auth.Secret) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, BaseURL+TradingInfoPath, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+access.Reveal())
	req.Header.Set("Accept", "application/json")
	resp, err := b.client.Do(ctx, req, true)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return "", fmt.Errorf("trading_info: read: %w", err)
	}
	var ans tradingInfoAnswer
	jerr := json.Unmarshal(raw, &ans)
	if resp.StatusCode != http.StatusOK || jerr != nil || ans.Status != "success" {
		msg := auth.StatusText(resp.StatusCode)
		if jerr == nil && (ans.ErrorType != "" || ans.Message != "") {
			msg += ": " + auth.BrokerMessage(strings.TrimSpace(ans.ErrorType+" "+ans.Message))
		}
		return "", fmt.Errorf("trading_info answered %s", b.scrub(msg, access.Reveal()))
	}
	if ans.Data == nil || !validClientID(ans.Data.ClientID) {
		return "", errors.New("trading_info has no usable data.client_id")
	}
	return ans.Data.ClientID, nil
}

// validClientID accepts what can travel in a query unescaped and is not
// absurdly long (Pocketful's look like "YA0002").
func validClientID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Inject sets "Authorization: Bearer <token>" on r (the proxy has already
// removed the client's own). With FillClientID it adds
// client_id to a GET route that needs it (NeedsClientID) when the query
// has none. On the market-data WebSocket (FeedPath, any case) it sets
// access_token and login_id (the token's client id, when known) in the
// query, replacing the client's, where Pocketful reads them.
func (b *Broker) Inject(r *http.Request, t *auth.Token) error {
	if t == nil || t.Access == "" {
		return fmt.Errorf("pocketful account %q: no token to inject", b.cfg.Account)
	}
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	r.Header.Set("Authorization", "Bearer "+t.Access.Reveal())
	if r.URL == nil {
		return nil
	}
	cid := t.Meta[MetaClientID]
	p := path.Clean("/" + r.URL.Path)
	switch {
	case strings.EqualFold(p, FeedPath):
		setQuery(r.URL, "access_token", t.Access.Reveal(), true)
		if cid != "" {
			// The token belongs to this client id: a placeholder the
			// client sent would only get the socket refused.
			setQuery(r.URL, "login_id", cid, true)
		}
	case b.cfg.FillClientID && cid != "" && r.Method == http.MethodGet && NeedsClientID(p):
		setQuery(r.URL, "client_id", cid, false)
	}
	return nil
}

// NeedsClientID reports whether the GET route at path p wants client_id in
// its query (the routes Pocketful's SDK sends it to).
func NeedsClientID(p string) bool {
	switch p {
	case "/api/v1/user/profile", "/api/v1/orders", "/api/v1/trades", "/api/v1/positions",
		"/api/v1/holdings", "/api/v1/funds/view", "/api/v2/funds/view", "/api/v1/event/gtt":
		return true
	}
	rest, ok := strings.CutPrefix(p, "/api/v1/order/")
	if !ok {
		return false
	}
	id, ok := strings.CutSuffix(rest, "/history")
	return ok && id != "" && !strings.Contains(id, "/")
}

// setQuery sets key=val in u's query, keeping the rest of the raw query as
// the client wrote it. Without replace, a non-empty value already there
// wins; empty ones ("client_id=") are dropped either way.
func setQuery(u *url.URL, key, val string, replace bool) {
	var kept []string
	if u.RawQuery != "" {
		for _, part := range strings.Split(u.RawQuery, "&") {
			k, v, _ := strings.Cut(part, "=")
			if uk, err := url.QueryUnescape(k); err == nil && uk == key {
				uv, err := url.QueryUnescape(v)
				if !replace && err == nil && uv != "" {
					return
				}
				continue
			}
			kept = append(kept, part)
		}
	}
	kept = append(kept, url.QueryEscape(key)+"="+url.QueryEscape(val))
	u.RawQuery = strings.Join(kept, "&")
}

// errorAnswer is Pocketful's error body.
type errorAnswer struct {
	Status    string `json:"status"`
	ErrorType string `json:"error_type"`
}

// Rejected reports whether Pocketful refused the token: any 401, or a 403
// whose JSON body has error_type TokenException. Other 403s
// (PermissionException, a static-IP refusal) are the client's business.
func (b *Broker) Rejected(resp *http.Response, peek func() []byte) bool {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return true
	case http.StatusForbidden:
		if peek == nil {
			return false
		}
		body := bytes.TrimSpace(peek())
		if len(body) == 0 || body[0] != '{' {
			return false
		}
		var e errorAnswer
		return json.Unmarshal(body, &e) == nil && strings.EqualFold(e.ErrorType, "TokenException")
	}
	return false
}

// Bypass reports whether r is for Pocketful's own OAuth pages (any path
// under /oauth2/, in any case): a browser going through the proxy reaches
// them untouched and without a token.
func (b *Broker) Bypass(r *http.Request) bool {
	if r.URL == nil {
		return false
	}
	p := path.Clean("/" + r.URL.Path)
	const prefix = "/oauth2/"
	return len(p) > len(prefix) && strings.EqualFold(p[:len(prefix)], prefix)
}

// NextMidnightIST is the first midnight in India (UTC+5:30) after t.
func NextMidnightIST(t time.Time) time.Time {
	ist := time.FixedZone("IST", istOffset)
	n := t.In(ist)
	return time.Date(n.Year(), n.Month(), n.Day()+1, 0, 0, 0, 0, ist)
}

// Expiry is when a token obtained at obtained stops working: the earlier of
// obtained+lifetime (ignored when not positive) and the next midnight IST.
func Expiry(obtained time.Time, lifetime time.Duration) time.Time {
	m := NextMidnightIST(obtained)
	if lifetime > 0 {
		if e := obtained.Add(lifetime); e.Before(m) {
			return e
		}
	}
	return m
}

// scrub removes the client secret and extra values from a broker message.
func (b *Broker) scrub(msg string, extra ...string) string {
	for _, s := range append([]string{b.cfg.ClientSecret.Reveal()}, extra...) {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, auth.Redacted)
		}
	}
	return msg
}
