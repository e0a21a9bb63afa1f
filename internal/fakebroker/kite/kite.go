// Package kite is a strict fake of Zerodha Kite Connect for tests and the
// demo: the login page (kite.zerodha.com/connect/login), the session
// endpoint and a few REST routes of api.kite.trade, and the ticker
// handshake of ws.kite.trade. One Fake serves all three host names; route
// on the Host header.
//
// It refuses what Kite refuses, with Kite's error envelope
// {"status":"error","message":..,"error_type":..}:
//   - a login page request without v=3 or with an unknown api_key;
//   - POST /session/token without X-Kite-Version, with a wrong checksum
//     (hex SHA-256 of api_key+request_token+api_secret), an unknown,
//     expired or already used request token (403 TokenException);
//   - API calls without X-Kite-Version (400 InputException), without
//     "Authorization: token <api_key>:<access_token>", or with an unknown,
//     revoked or expired token (403 TokenException);
//   - a ticker handshake whose api_key/access_token query is wrong (403).
//
// Tokens die at 06:00 IST, as Kite's do. Orders (POST/PUT/DELETE
// /orders/{variety}[/{id}]) are accepted and recorded with their arrival
// time. A Fake holds no package-level state and is safe for concurrent use.
package kite

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/authproxy/authproxy/internal/fakebroker/fakehttp"
	"github.com/authproxy/authproxy/internal/fakebroker/record"
)

// Hosts the fake answers for.
const (
	APIHost    = "api.kite.trade"
	TickerHost = "ws.kite.trade"
	LoginHost  = "kite.zerodha.com"
)

// Error types of Kite's envelope.
const (
	TokenException      = "TokenException"
	InputException      = "InputException"
	PermissionException = "PermissionException"
	GeneralException    = "GeneralException"
)

const (
	// DefaultRequestTokenLifetime bounds how long a request token may wait.
	DefaultRequestTokenLifetime = 2 * time.Minute
	maxBody                     = 64 << 10
	tickerLifetime              = time.Minute
)

// Options configure a Fake.
type Options struct {
	APIKey      string
	APISecret   string
	RedirectURL string // the redirect URL registered for the app
	UserID      string // e.g. "AB1234"
	// RequestTokenLifetime defaults to DefaultRequestTokenLifetime.
	RequestTokenLifetime time.Duration
	// MaxOrdersPerSecond, when positive, refuses an order that would be
	// more than this many in the last second with 429, as Kite does above
	// 10 per second.
	MaxOrdersPerSecond int
	Now                func() time.Time
}

// Counts are the fake's counters.
type Counts struct {
	Logins          int // login pages that redirected with a request token
	Sessions        int // access tokens issued
	SessionFailures int
	APICalls        int // successful API calls
	TokenRejections int // 403 TokenException answers to API calls
	Tickers         int // ticker handshakes accepted
}

type requestToken struct {
	expiry time.Time
	used   bool
}

// Fake is a strict fake Kite. It implements http.Handler.
type Fake struct {
	opts Options
	log  record.Log

	mu       sync.Mutex
	redirect string
	rts      map[string]*requestToken
	tokens   fakehttp.Tokens
	counts   Counts
	orderSeq int
}

// New returns a Fake.
func New(opts Options) *Fake {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RequestTokenLifetime <= 0 {
		opts.RequestTokenLifetime = DefaultRequestTokenLifetime
	}
	if opts.UserID == "" {
		opts.UserID = "AB1234"
	}
	return &Fake{opts: opts, redirect: opts.RedirectURL, rts: map[string]*requestToken{}, tokens: fakehttp.Tokens{}}
}

// SetRedirectURL changes the app's registered redirect URL.
func (f *Fake) SetRedirectURL(u string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.redirect = u
}

// Counts returns the counters.
func (f *Fake) Counts() Counts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts
}

// Requests returns every request seen, refused ones included.
func (f *Fake) Requests() []record.Request { return f.log.Requests() }

// Orders returns every accepted order with its arrival time.
func (f *Fake) Orders() []record.Order { return f.log.Orders() }

// RevokeAll revokes every access token issued so far.
func (f *Fake) RevokeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens.RevokeAll()
}

// ValidToken reports whether tok is a live access token.
func (f *Fake) ValidToken(tok string) bool {
	now := f.opts.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokens.Live(tok, now)
}

// IssueRequestToken mints a request token as a login would, for tests that
// skip the login page.
func (f *Fake) IssueRequestToken() string {
	rt := randHex(16)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rts[rt] = &requestToken{expiry: f.opts.Now().Add(f.opts.RequestTokenLifetime)}
	return rt
}

// ServeHTTP implements http.Handler.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	f.log.Add(f.opts.Now(), r, body)
	if err != nil {
		kiteError(w, http.StatusRequestEntityTooLarge, InputException, "request body too large")
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	switch host(r) {
	case LoginHost:
		f.serveLogin(w, r)
	case TickerHost:
		f.serveTicker(w, r)
	default:
		if r.URL.Path == "/session/token" {
			f.serveSession(w, r)
			return
		}
		f.serveAPI(w, r, body)
	}
}

func host(r *http.Request) string {
	h := r.Host
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	return strings.ToLower(h)
}

func (f *Fake) serveLogin(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if r.URL.Path != "/connect/login" || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	if q.Get("v") != "3" {
		http.Error(w, "Invalid API version: v=3 is required", http.StatusBadRequest)
		return
	}
	if q.Get("api_key") == "" || q.Get("api_key") != f.opts.APIKey {
		http.Error(w, "Invalid `api_key`.", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	redirect := f.redirect
	f.mu.Unlock()
	if redirect == "" {
		http.Error(w, "the app has no redirect URL", http.StatusBadRequest)
		return
	}
	v := url.Values{}
	if rp := q.Get("redirect_params"); rp != "" {
		extra, err := url.ParseQuery(rp)
		if err != nil {
			http.Error(w, "Invalid redirect_params", http.StatusBadRequest)
			return
		}
		for k, vals := range extra {
			v[k] = vals
		}
	}
	rt := f.IssueRequestToken()
	v.Set("request_token", rt)
	v.Set("action", "login")
	v.Set("type", "login")
	v.Set("status", "success")
	f.mu.Lock()
	f.counts.Logins++
	f.mu.Unlock()
	sep := "?"
	if strings.Contains(redirect, "?") {
		sep = "&"
	}
	http.Redirect(w, r, redirect+sep+v.Encode(), http.StatusFound)
}

func (f *Fake) serveSession(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, typ, msg string) {
		f.mu.Lock()
		f.counts.SessionFailures++
		f.mu.Unlock()
		kiteError(w, status, typ, msg)
	}
	if r.Method != http.MethodPost {
		fail(http.StatusMethodNotAllowed, InputException, "method not allowed")
		return
	}
	if r.Header.Get("X-Kite-Version") != "3" {
		fail(http.StatusBadRequest, InputException, "X-Kite-Version header is missing or not 3")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		fail(http.StatusBadRequest, InputException, "the body must be a form")
		return
	}
	b, _ := io.ReadAll(r.Body)
	form, err := url.ParseQuery(string(b))
	if err != nil {
		fail(http.StatusBadRequest, InputException, "malformed form")
		return
	}
	for _, k := range []string{"api_key", "request_token", "checksum"} {
		if len(form[k]) != 1 || form.Get(k) == "" {
			fail(http.StatusBadRequest, InputException, "Missing or repeated `"+k+"`")
			return
		}
	}
	if form.Get("api_key") != f.opts.APIKey {
		fail(http.StatusForbidden, TokenException, "Invalid `api_key`.")
		return
	}
	rt := form.Get("request_token")
	if subtle.ConstantTimeCompare([]byte(checksum(f.opts.APIKey, rt, f.opts.APISecret)), []byte(form.Get("checksum"))) != 1 {
		fail(http.StatusForbidden, TokenException, "Invalid `checksum`.")
		return
	}
	now := f.opts.Now()
	f.mu.Lock()
	t, ok := f.rts[rt]
	switch {
	case !ok, t.used, !now.Before(t.expiry):
		f.mu.Unlock()
		fail(http.StatusForbidden, TokenException, "Token is invalid or has expired.")
		return
	}
	t.used = true
	access := randHex(16)
	f.tokens[access] = &fakehttp.Token{Expiry: nextReset(now)}
	f.counts.Sessions++
	f.mu.Unlock()
	fakehttp.WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "data": map[string]any{
		"user_type": "individual", "email": "client@example.com", "user_name": "Fake Client",
		"user_shortname": "Fake", "broker": "ZERODHA", "exchanges": []string{"NSE", "BSE", "NFO"},
		"products": []string{"CNC", "NRML", "MIS"}, "order_types": []string{"MARKET", "LIMIT", "SL", "SL-M"},
		"avatar_url": nil, "user_id": f.opts.UserID, "api_key": f.opts.APIKey, "access_token": access,
		"public_token": randHex(16), "refresh_token": "", "enctoken": "", "login_time": now.Format("2006-01-02 15:04:05"),
	}})
}

// authorized checks the API call's credentials and answers the refusal
// itself.
func (f *Fake) authorized(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("X-Kite-Version") != "3" {
		kiteError(w, http.StatusBadRequest, InputException, "X-Kite-Version header is missing or not 3")
		return false
	}
	vals := r.Header.Values("Authorization")
	tok := ""
	if len(vals) == 1 {
		scheme, cred, ok := strings.Cut(vals[0], " ")
		key, access, ok2 := strings.Cut(cred, ":")
		if ok && ok2 && scheme == "token" && key == f.opts.APIKey {
			tok = access
		}
	}
	if tok == "" || !f.ValidToken(tok) {
		f.mu.Lock()
		f.counts.TokenRejections++
		f.mu.Unlock()
		kiteError(w, http.StatusForbidden, TokenException, "Incorrect `api_key` or `access_token`.")
		return false
	}
	return true
}

func (f *Fake) serveAPI(w http.ResponseWriter, r *http.Request, body []byte) {
	if !f.authorized(w, r) {
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var data any
	switch {
	case r.URL.Path == "/user/profile" && r.Method == http.MethodGet:
		data = map[string]any{"user_id": f.opts.UserID, "user_name": "Fake Client", "broker": "ZERODHA"}
	case r.URL.Path == "/user/margins" && r.Method == http.MethodGet:
		data = map[string]any{"equity": map[string]any{"enabled": true, "net": 100000.0}}
	case r.URL.Path == "/orders" && r.Method == http.MethodGet:
		data = []any{}
	case r.URL.Path == "/quote/ltp" && r.Method == http.MethodGet:
		data = map[string]any{}
		for _, i := range r.URL.Query()["i"] {
			data.(map[string]any)[i] = map[string]any{"instrument_token": 256265, "last_price": 100.5}
		}
	case len(parts) == 2 && parts[0] == "orders" && r.Method == http.MethodPost,
		len(parts) == 3 && parts[0] == "orders" && (r.Method == http.MethodPut || r.Method == http.MethodDelete):
		if parts[1] != "regular" && parts[1] != "amo" && parts[1] != "co" && parts[1] != "iceberg" && parts[1] != "auction" {
			kiteError(w, http.StatusBadRequest, InputException, "Invalid `variety`.")
			return
		}
		if f.log.OverRate(f.opts.Now(), f.opts.MaxOrdersPerSecond) {
			kiteError(w, http.StatusTooManyRequests, "NetworkException", "Too many requests")
			return
		}
		id := ""
		if len(parts) == 3 {
			id = parts[2]
		} else {
			f.mu.Lock()
			f.orderSeq++
			id = fmt.Sprintf("2512070%08d", f.orderSeq)
			f.mu.Unlock()
		}
		f.log.AddOrder(record.Order{Time: f.opts.Now(), Method: r.Method, Path: r.URL.Path, ID: id, Body: body})
		data = map[string]any{"order_id": id}
	default:
		kiteError(w, http.StatusNotFound, GeneralException, "Route not found")
		return
	}
	f.mu.Lock()
	f.counts.APICalls++
	f.mu.Unlock()
	fakehttp.WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "data": data})
}

func (f *Fake) serveTicker(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if len(q["api_key"]) != 1 || len(q["access_token"]) != 1 || q.Get("api_key") != f.opts.APIKey || !f.ValidToken(q.Get("access_token")) {
		http.Error(w, "Invalid api_key or access_token", http.StatusForbidden)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	f.mu.Lock()
	f.counts.Tickers++
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), tickerLifetime)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return
		}
	}
}

func kiteError(w http.ResponseWriter, status int, typ, msg string) {
	fakehttp.WriteJSON(w, status, map[string]any{"status": "error", "message": msg, "data": nil, "error_type": typ})
}

func nextReset(t time.Time) time.Time {
	ist := time.FixedZone("IST", 5*3600+1800)
	n := t.In(ist)
	r := time.Date(n.Year(), n.Month(), n.Day(), 6, 0, 0, 0, ist)
	if !r.After(n) {
		r = r.AddDate(0, 0, 1)
	}
	return r
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func checksum(key, rt, secret string) string {
	sum := sha256.Sum256([]byte(key + rt + secret))
	return hex.EncodeToString(sum[:])
}
