// Package pocketful is a strict in-memory fake of Pocketful's OAuth2 login
// and REST API (trade.pocketful.in) for tests and the demo.
//
// GET /oauth2/auth checks the request as an Ory Hydra-style server would
// (client_id, response_type=code, redirect_uri exactly as registered, a
// state of at least 8 characters, known scopes), approves at once and
// redirects to redirect_uri with code, scope and state. POST /oauth2/token
// wants HTTP Basic client authentication, a form body and a single-use,
// short-lived code bound to the same redirect_uri, and answers
// {"access_token","expires_in","scope","token_type":"bearer"}. Tokens die at
// the earlier of their lifetime and the next midnight IST, as Pocketful's do.
//
// The /api/v1/ routes want exactly one "Authorization: Bearer" header with a
// live token, and client_id in the query where Pocketful's SDK sends it. An
// expired or revoked token gets 403 {"status":"error","error_type":
// "TokenException",...}; a missing one gets 401.
//
// The market-data WebSocket at /ws/v1/feeds (see ws.go) wants login_id and
// access_token in its query.
//
// A Fake holds no package-level state; every method is safe for concurrent
// use.
package pocketful

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/authproxy/authproxy/internal/fakebroker/fakehttp"
	"github.com/authproxy/authproxy/internal/fakebroker/record"
)

// Endpoint paths.
const (
	AuthPath        = "/oauth2/auth"
	TokenPath       = "/oauth2/token"
	TradingInfoPath = "/api/v1/user/trading_info"
)

// Error types in Pocketful's error body.
const (
	TokenException      = "TokenException"
	PermissionException = "PermissionException"
	InputException      = "InputException"
	GeneralException    = "GeneralException"
)

const (
	// DefaultTokenLifetime is the expires_in Pocketful reports (86399 s).
	DefaultTokenLifetime = 86399 * time.Second
	// DefaultCodeLifetime bounds how long an authorization code may wait.
	DefaultCodeLifetime = time.Minute
	minStateLen         = 8
	maxBodyBytes        = 64 << 10
)

// Options configure a Fake.
type Options struct {
	AppID       string   // the OAuth client_id ("app id")
	AppSecret   string   // the OAuth client secret
	RedirectURI string   // the registered redirect URI (see SetRedirectURI)
	Scopes      []string // scopes the app may ask for; default orders, holdings
	ClientID    string   // the trading account's client id, e.g. "YA0002"
	// TokenLifetime is expires_in; default DefaultTokenLifetime. Tokens
	// still die at the next midnight IST if that comes first.
	TokenLifetime time.Duration
	CodeLifetime  time.Duration // default DefaultCodeLifetime
	Now           func() time.Time
}

// Counts are the fake's counters.
type Counts struct {
	Authorizations   int // consent redirects carrying a code
	AuthorizeErrors  int // /oauth2/auth requests refused
	Exchanges        int // tokens issued by /oauth2/token
	ExchangeFailures int // /oauth2/token requests refused
	TradingInfo      int // successful trading_info calls
	APICalls         int // successful API calls, trading_info included
	TokenRejections  int // answers with TokenException (401 or 403)
}

// Recorded is one request the fake saw.
type Recorded = record.Request

type code struct {
	redirectURI string
	scope       string
	expiry      time.Time
	used        bool
	token       string // the token it was exchanged for
}

type token struct {
	expiry  time.Time
	revoked bool
	scope   string
}

// Fake is a strict fake Pocketful server. It implements http.Handler.
type Fake struct {
	opts Options
	log  record.Log // requests, bounded at record.MaxRequests as before

	mu          sync.Mutex
	redirectURI string
	codes       map[string]*code
	tokens      map[string]*token
	counts      Counts
	orderSeq    int
	feeds       []FeedConn
}

// New returns a Fake. Zero lifetimes take the defaults and a nil Now means
// time.Now.
func New(opts Options) *Fake {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = DefaultTokenLifetime
	}
	if opts.CodeLifetime <= 0 {
		opts.CodeLifetime = DefaultCodeLifetime
	}
	if len(opts.Scopes) == 0 {
		opts.Scopes = []string{"orders", "holdings"}
	}
	opts.Scopes = append([]string(nil), opts.Scopes...)
	return &Fake{
		opts:        opts,
		redirectURI: opts.RedirectURI,
		codes:       make(map[string]*code),
		tokens:      make(map[string]*token),
	}
}

// SetRedirectURI changes the registered redirect URI (for a proxy whose
// port is known only once it runs).
func (f *Fake) SetRedirectURI(uri string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.redirectURI = uri
}

// ClientID is the trading account's client id.
func (f *Fake) ClientID() string { return f.opts.ClientID }

// Expire makes every token issued so far expire now.
func (f *Fake) Expire() {
	now := f.opts.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.tokens {
		if t.expiry.After(now) {
			t.expiry = now
		}
	}
}

// RevokeAll revokes every token issued so far.
func (f *Fake) RevokeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.tokens {
		t.revoked = true
	}
}

// Counts returns the counters.
func (f *Fake) Counts() Counts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts
}

// Requests returns a copy of every request seen (the first
// record.MaxRequests), in order, refused ones included.
func (f *Fake) Requests() []Recorded { return f.log.Requests() }

// ValidToken reports whether tok is a live token issued by the fake.
func (f *Fake) ValidToken(tok string) bool {
	now := f.opts.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tokens[tok]
	return ok && !t.revoked && now.Before(t.expiry)
}

// ServeHTTP implements http.Handler.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	f.log.Add(f.opts.Now(), r, body)
	if err != nil {
		apiError(w, http.StatusRequestEntityTooLarge, InputException, "request body too large")
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	switch p := r.URL.Path; {
	case p == AuthPath:
		f.serveAuth(w, r)
	case p == TokenPath:
		f.serveToken(w, r)
	case strings.HasPrefix(p, "/api/"):
		f.serveAPI(w, r, body)
	case p == FeedPath:
		f.serveFeed(w, r)
	default:
		apiError(w, http.StatusNotFound, GeneralException, "not found")
	}
}

// serveAuth is the consent page: it checks the request and approves at once.
func (f *Fake) serveAuth(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, msg string) {
		f.mu.Lock()
		f.counts.AuthorizeErrors++
		f.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<!doctype html><title>Pocketful login error</title><h1>Login error</h1><p>%s</p>\n", html.EscapeString(msg))
	}
	if r.Method != http.MethodGet {
		fail(http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	q := r.URL.Query()
	f.mu.Lock()
	registered := f.redirectURI
	f.mu.Unlock()
	ru := q.Get("redirect_uri")
	switch {
	case q.Get("client_id") != f.opts.AppID || f.opts.AppID == "":
		fail(http.StatusBadRequest, "invalid_client: unknown client_id")
		return
	case ru == "" && q.Get("redirect-uri") != "":
		fail(http.StatusBadRequest, "invalid_request: redirect_uri is missing (the parameter is redirect_uri, not redirect-uri)")
		return
	case ru == "":
		fail(http.StatusBadRequest, "invalid_request: redirect_uri is missing")
		return
	case ru != registered:
		fail(http.StatusBadRequest, "invalid_request: redirect_uri does not match the registered redirect URL")
		return
	case len(q["redirect_uri"]) != 1 || len(q["state"]) > 1 || len(q["client_id"]) != 1:
		fail(http.StatusBadRequest, "invalid_request: repeated parameter")
		return
	}
	state := q.Get("state")
	redirectErr := func(code, desc string) {
		f.mu.Lock()
		f.counts.AuthorizeErrors++
		f.mu.Unlock()
		v := url.Values{"error": {code}, "error_description": {desc}}
		if state != "" {
			v.Set("state", state)
		}
		http.Redirect(w, r, withQuery(ru, v), http.StatusFound)
	}
	if q.Get("response_type") != "code" {
		redirectErr("unsupported_response_type", "response_type must be code")
		return
	}
	if len(state) < minStateLen {
		redirectErr("invalid_state", "The state is missing or has fewer than 8 characters and is therefore considered too weak.")
		return
	}
	scopes := strings.Fields(q.Get("scope"))
	if len(scopes) == 0 {
		redirectErr("invalid_scope", "no scope requested")
		return
	}
	for _, s := range scopes {
		if !contains(f.opts.Scopes, s) {
			redirectErr("invalid_scope", "the client may not request scope "+strconv.Quote(s))
			return
		}
	}
	c := randToken()
	scope := strings.Join(scopes, " ")
	f.mu.Lock()
	f.codes[c] = &code{redirectURI: ru, scope: scope, expiry: f.opts.Now().Add(f.opts.CodeLifetime)}
	f.counts.Authorizations++
	f.mu.Unlock()
	http.Redirect(w, r, withQuery(ru, url.Values{"code": {c}, "scope": {scope}, "state": {state}}), http.StatusFound)
}

func withQuery(base string, v url.Values) string {
	if strings.Contains(base, "?") {
		return base + "&" + v.Encode()
	}
	return base + "?" + v.Encode()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// serveToken exchanges an authorization code for a token.
func (f *Fake) serveToken(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code, desc string) {
		f.mu.Lock()
		f.counts.ExchangeFailures++
		f.mu.Unlock()
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="oauth2"`)
		}
		w.Header().Set("Cache-Control", "no-store")
		fakehttp.WriteJSON(w, status, map[string]string{"error": code, "error_description": desc})
	}
	if r.Method != http.MethodPost {
		fail(http.StatusMethodNotAllowed, "invalid_request", "the token endpoint wants POST")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		fail(http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
		return
	}
	user, pass, ok := r.BasicAuth()
	if ok {
		// RFC 6749 2.3.1: both parts are form-urlencoded before Basic encoding.
		u, err1 := url.QueryUnescape(user)
		p, err2 := url.QueryUnescape(pass)
		ok = err1 == nil && err2 == nil &&
			subtle.ConstantTimeCompare([]byte(u), []byte(f.opts.AppID)) == 1 &&
			subtle.ConstantTimeCompare([]byte(p), []byte(f.opts.AppSecret)) == 1
	}
	if !ok {
		fail(http.StatusUnauthorized, "invalid_client", "client authentication failed (HTTP Basic client_id:client_secret required)")
		return
	}
	form, err := url.ParseQuery(bodyString(r))
	if err != nil {
		fail(http.StatusBadRequest, "invalid_request", "malformed form body")
		return
	}
	if form.Has("client_secret") {
		fail(http.StatusBadRequest, "invalid_request", "the client used more than one authentication method")
		return
	}
	if form.Get("grant_type") != "authorization_code" {
		fail(http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code")
		return
	}
	now := f.opts.Now()
	f.mu.Lock()
	c, found := f.codes[form.Get("code")]
	var reason string
	switch {
	case !found:
		reason = "the authorization code is unknown"
	case c.used:
		reason = "the authorization code has already been used"
		if t := f.tokens[c.token]; t != nil {
			t.revoked = true // RFC 6749 4.1.2: a replayed code revokes its token
		}
	case !now.Before(c.expiry):
		reason = "the authorization code has expired"
	case form.Get("redirect_uri") != c.redirectURI:
		reason = "redirect_uri does not match the one of the authorization request"
	}
	if reason != "" {
		f.mu.Unlock()
		fail(http.StatusBadRequest, "invalid_grant", reason)
		return
	}
	c.used = true
	tok := randToken()
	c.token = tok
	f.tokens[tok] = &token{expiry: expiry(now, f.opts.TokenLifetime), scope: c.scope}
	f.counts.Exchanges++
	f.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	fakehttp.WriteJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"expires_in":   int64(f.opts.TokenLifetime / time.Second),
		"scope":        c.scope,
		"token_type":   "bearer",
	})
}

func bodyString(r *http.Request) string {
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

// expiry is when a token issued at now dies: after lifetime or at the next
// midnight IST, whichever comes first.
func expiry(now time.Time, lifetime time.Duration) time.Time {
	ist := time.FixedZone("IST", 5*3600+1800)
	n := now.In(ist)
	midnight := time.Date(n.Year(), n.Month(), n.Day()+1, 0, 0, 0, 0, ist)
	if e := now.Add(lifetime); e.Before(midnight) {
		return e
	}
	return midnight
}

func randToken() string {
	var a, b [32]byte
	_, _ = rand.Read(a[:]) // crypto/rand.Read never fails
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(a[:]) + "." + base64.RawURLEncoding.EncodeToString(b[:])
}

// needsClientID reports whether a request is one of the GET routes
// Pocketful's SDK sends client_id to.
func needsClientID(method, p string) bool {
	if method != http.MethodGet {
		return false
	}
	switch p {
	case "/api/v1/user/profile", "/api/v1/orders", "/api/v1/trades", "/api/v1/positions",
		"/api/v1/holdings", "/api/v1/funds/view", "/api/v2/funds/view", "/api/v1/event/gtt":
		return true
	}
	rest, ok := strings.CutPrefix(p, "/api/v1/order/")
	id, ok2 := strings.CutSuffix(rest, "/history")
	return ok && ok2 && id != "" && !strings.Contains(id, "/")
}

func (f *Fake) serveAPI(w http.ResponseWriter, r *http.Request, body []byte) {
	vals := r.Header.Values("Authorization")
	if len(vals) > 1 {
		apiError(w, http.StatusBadRequest, InputException, "more than one Authorization header")
		return
	}
	tok := ""
	if len(vals) == 1 {
		scheme, t, ok := strings.Cut(vals[0], " ")
		if ok && strings.EqualFold(scheme, "Bearer") && t != "" && !strings.ContainsAny(t, " \t") {
			tok = t
		}
	}
	if tok == "" {
		f.rejected(w, http.StatusUnauthorized, "missing or malformed access token")
		return
	}
	now := f.opts.Now()
	f.mu.Lock()
	t, known := f.tokens[tok]
	var msg string
	switch {
	case !known:
		msg = "invalid access token"
	case t.revoked:
		msg = "access token has been revoked"
	case !now.Before(t.expiry):
		msg = "access token expired, please login again"
	}
	f.mu.Unlock()
	if msg != "" {
		f.rejected(w, http.StatusForbidden, msg)
		return
	}

	q := r.URL.Query()
	p := r.URL.Path
	if needsClientID(r.Method, p) {
		switch cid := q.Get("client_id"); {
		case cid == "":
			apiError(w, http.StatusBadRequest, InputException, "client_id is required")
			return
		case cid != f.opts.ClientID:
			apiError(w, http.StatusForbidden, PermissionException, "client_id does not belong to this session")
			return
		}
	}
	var data any
	switch {
	case p == TradingInfoPath && r.Method == http.MethodGet:
		data = map[string]any{
			"bo_id": []string{"1209981234567270"}, "client_id": f.opts.ClientID, "email_id": "CLIENT@EXAMPLE.COM",
			"exchanges_subscribed": []string{"BFO", "BSE", "MCX", "NFO", "NSE"}, "name": "FAKE CLIENT",
			"poa_enabled": false, "products_enabled": []string{"NRML", "MIS", "CNC"}, "status": "active",
		}
		f.mu.Lock()
		f.counts.TradingInfo++
		f.mu.Unlock()
	case p == "/api/v1/user/profile":
		data = map[string]any{"client_id": f.opts.ClientID, "name": "FAKE CLIENT", "email_id": "CLIENT@EXAMPLE.COM"}
	case p == "/api/v1/orders" && r.Method == http.MethodGet:
		typ := q.Get("type")
		if typ != "" && typ != "pending" && typ != "completed" {
			apiError(w, http.StatusBadRequest, InputException, "type must be pending or completed")
			return
		}
		data = map[string]any{"orders": []any{}, "type": typ}
	case p == "/api/v1/orders" && r.Method == http.MethodPost:
		id, ok := f.placeOrder(w, r, body)
		if !ok {
			return
		}
		data = map[string]any{"oms_order_id": id}
	case p == "/api/v1/holdings":
		data = []map[string]any{{"trading_symbol": "INFY", "isin": "INE009A01021", "quantity": 10, "client_id": f.opts.ClientID}}
	case p == "/api/v1/positions":
		data = []map[string]any{}
	case p == "/api/v1/trades", p == "/api/v1/event/gtt":
		data = []map[string]any{}
	case p == "/api/v1/funds/view", p == "/api/v2/funds/view":
		data = map[string]any{"client_id": f.opts.ClientID, "available_margin": 100000.0}
	case needsClientID(r.Method, p): // /api/v1/order/{id}/history
		data = []map[string]any{}
	case p == "/api/v1/search" && r.Method == http.MethodGet:
		data = []map[string]any{{"trading_symbol": strings.ToUpper(q.Get("key")), "exchange": "NSE", "token": 1594}}
	default:
		apiError(w, http.StatusNotFound, GeneralException, "route not found")
		return
	}
	f.mu.Lock()
	f.counts.APICalls++
	f.mu.Unlock()
	fakehttp.WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "message": "", "data": data})
}

func (f *Fake) placeOrder(w http.ResponseWriter, r *http.Request, body []byte) (string, bool) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		apiError(w, http.StatusBadRequest, InputException, "Content-Type must be application/json")
		return "", false
	}
	var order map[string]any
	if err := json.Unmarshal(body, &order); err != nil {
		apiError(w, http.StatusBadRequest, InputException, "body is not JSON")
		return "", false
	}
	if cid, _ := order["client_id"].(string); cid != f.opts.ClientID {
		apiError(w, http.StatusForbidden, PermissionException, "client_id does not belong to this session")
		return "", false
	}
	f.mu.Lock()
	f.orderSeq++
	id := fmt.Sprintf("OMS%06d", f.orderSeq)
	f.mu.Unlock()
	return id, true
}

func (f *Fake) rejected(w http.ResponseWriter, status int, msg string) {
	f.mu.Lock()
	f.counts.TokenRejections++
	f.mu.Unlock()
	apiError(w, status, TokenException, msg)
}

func apiError(w http.ResponseWriter, status int, typ, msg string) {
	fakehttp.WriteJSON(w, status, map[string]string{"status": "error", "error_type": typ, "message": msg})
}
