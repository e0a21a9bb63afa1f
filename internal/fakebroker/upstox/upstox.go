// Package upstox is a strict fake of Upstox's OAuth2 login and a few REST
// and WebSocket routes (api.upstox.com, api-hft.upstox.com) for tests and
// the demo. One Fake serves both host names.
//
// It refuses what Upstox refuses, in Upstox's envelope {"status":"error",
// "errors":[{"errorCode","error_code","message",...}]} (the UDAPI codes
// other than UDAPI100050 and UDAPI100069 are this fake's assumptions):
//   - an authorization dialog with an unknown client_id or a redirect_uri
//     other than the registered one (UDAPI100069, HTTP 400);
//   - a token request that is not a form, with a wrong client_secret
//     (UDAPI100016), a redirect_uri that differs from the dialog's or the
//     registered one (UDAPI100069), or a code that is unknown, used or
//     expired (UDAPI100057);
//   - API calls and feed handshakes without a live Bearer token (401,
//     UDAPI100050 "Invalid token used to access API").
//
// Tokens end at 03:30 IST, as Upstox's do. Orders (place, modify, cancel,
// v2 and v3) are accepted and recorded with their arrival time. A Fake holds
// no package-level state and is safe for concurrent use.
package upstox

import (
	"bytes"
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/authproxy/authproxy/internal/fakebroker/fakehttp"
	"github.com/authproxy/authproxy/internal/fakebroker/record"
)

// Hosts and paths.
const (
	APIHost       = "api.upstox.com"
	OrderHost     = "api-hft.upstox.com"
	DialogPath    = "/v2/login/authorization/dialog"
	TokenPath     = "/v2/login/authorization/token"
	FeedPath      = "/v3/feed/market-data-feed"
	AuthorizePath = "/v3/feed/market-data-feed/authorize"
)

const (
	// DefaultCodeLifetime bounds how long an authorization code may wait.
	DefaultCodeLifetime = time.Minute
	maxBody             = 64 << 10
	feedLifetime        = time.Minute
)

// Options configure a Fake.
type Options struct {
	ClientID     string
	ClientSecret string
	RedirectURI  string // the registered redirect URI
	UserID       string // e.g. "7XAB12"
	CodeLifetime time.Duration
	// MaxOrdersPerSecond, when positive, refuses an order that would be
	// more than this many in the last second with 429.
	MaxOrdersPerSecond int
	Now                func() time.Time
}

// Counts are the fake's counters.
type Counts struct {
	Authorizations   int
	AuthorizeErrors  int
	Exchanges        int
	ExchangeFailures int
	APICalls         int
	TokenRejections  int
	Feeds            int
}

type code struct {
	redirect string
	expiry   time.Time
	used     bool
}

// Fake is a strict fake Upstox. It implements http.Handler.
type Fake struct {
	opts Options
	log  record.Log

	mu       sync.Mutex
	redirect string
	codes    map[string]*code
	tokens   fakehttp.Tokens
	counts   Counts
	orderSeq int
}

// New returns a Fake.
func New(opts Options) *Fake {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CodeLifetime <= 0 {
		opts.CodeLifetime = DefaultCodeLifetime
	}
	if opts.UserID == "" {
		opts.UserID = "7XAB12"
	}
	return &Fake{opts: opts, redirect: opts.RedirectURI, codes: map[string]*code{}, tokens: fakehttp.Tokens{}}
}

// SetRedirectURI changes the registered redirect URI.
func (f *Fake) SetRedirectURI(u string) {
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

// RevokeAll revokes every token issued so far.
func (f *Fake) RevokeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens.RevokeAll()
}

// ValidToken reports whether tok is a live token.
func (f *Fake) ValidToken(tok string) bool {
	now := f.opts.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokens.Live(tok, now)
}

// ServeHTTP implements http.Handler.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	f.log.Add(f.opts.Now(), r, body)
	if err != nil {
		apiError(w, http.StatusRequestEntityTooLarge, "UDAPI1000", "request body too large")
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	switch r.URL.Path {
	case DialogPath:
		f.serveDialog(w, r)
	case TokenPath:
		f.serveToken(w, r, body)
	default:
		f.serveAPI(w, r, body)
	}
}

func (f *Fake) serveDialog(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	registered := f.redirect
	f.mu.Unlock()
	if r.Method != http.MethodGet || q.Get("client_id") != f.opts.ClientID || q.Get("redirect_uri") == "" ||
		q.Get("redirect_uri") != registered || len(q["redirect_uri"]) != 1 {
		f.mu.Lock()
		f.counts.AuthorizeErrors++
		f.mu.Unlock()
		apiError(w, http.StatusBadRequest, "UDAPI100069", "Check your 'client_id' and 'redirect_uri'; one or both are incorrect.")
		return
	}
	if q.Get("response_type") != "code" {
		f.mu.Lock()
		f.counts.AuthorizeErrors++
		f.mu.Unlock()
		apiError(w, http.StatusBadRequest, "UDAPI100068", "response_type must be code")
		return
	}
	c := fakehttp.RandToken(6)
	f.mu.Lock()
	f.codes[c] = &code{redirect: registered, expiry: f.opts.Now().Add(f.opts.CodeLifetime)}
	f.counts.Authorizations++
	f.mu.Unlock()
	v := url.Values{"code": {c}}
	if s := q.Get("state"); s != "" {
		v.Set("state", s)
	}
	sep := "?"
	if strings.Contains(registered, "?") {
		sep = "&"
	}
	http.Redirect(w, r, registered+sep+v.Encode(), http.StatusFound)
}

func (f *Fake) serveToken(w http.ResponseWriter, r *http.Request, body []byte) {
	fail := func(status int, c, msg string) {
		f.mu.Lock()
		f.counts.ExchangeFailures++
		f.mu.Unlock()
		apiError(w, status, c, msg)
	}
	if r.Method != http.MethodPost {
		fail(http.StatusMethodNotAllowed, "UDAPI1000", "method not allowed")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		fail(http.StatusBadRequest, "UDAPI1000", "the body must be a form")
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		fail(http.StatusBadRequest, "UDAPI1000", "malformed form")
		return
	}
	if form.Get("grant_type") != "authorization_code" {
		fail(http.StatusBadRequest, "UDAPI100058", "grant_type must be authorization_code")
		return
	}
	if form.Get("client_id") != f.opts.ClientID ||
		subtle.ConstantTimeCompare([]byte(form.Get("client_secret")), []byte(f.opts.ClientSecret)) != 1 {
		fail(http.StatusUnauthorized, "UDAPI100016", "Invalid Credentials")
		return
	}
	now := f.opts.Now()
	f.mu.Lock()
	c, ok := f.codes[form.Get("code")]
	var msg, ec string
	switch {
	case !ok, c.used, !now.Before(c.expiry):
		ec, msg = "UDAPI100057", "Invalid Auth code"
	case form.Get("redirect_uri") != c.redirect || form.Get("redirect_uri") != f.redirect:
		ec, msg = "UDAPI100069", "Check your 'client_id' and 'redirect_uri'; one or both are incorrect."
	}
	if msg != "" {
		f.mu.Unlock()
		fail(http.StatusBadRequest, ec, msg)
		return
	}
	c.used = true
	access := fakehttp.RandToken(32)
	f.tokens[access] = &fakehttp.Token{Expiry: nextReset(now)}
	f.counts.Exchanges++
	f.mu.Unlock()
	fakehttp.WriteJSON(w, http.StatusOK, map[string]any{
		"email": "client@example.com", "exchanges": []string{"NSE", "NFO", "BSE"}, "products": []string{"D", "I"},
		"broker": "UPSTOX", "user_id": f.opts.UserID, "user_name": "Fake Client", "order_types": []string{"MARKET", "LIMIT", "SL", "SL-M"},
		"user_type": "individual", "poa": false, "is_active": true, "access_token": access, "extended_token": nil,
	})
}

func (f *Fake) serveAPI(w http.ResponseWriter, r *http.Request, body []byte) {
	tok, ok := fakehttp.Bearer(r.Header)
	if !ok || !f.ValidToken(tok) {
		f.mu.Lock()
		f.counts.TokenRejections++
		f.mu.Unlock()
		apiError(w, http.StatusUnauthorized, "UDAPI100050", "Invalid token used to access API")
		return
	}
	p := r.URL.Path
	if p == FeedPath {
		f.serveFeed(w, r)
		return
	}
	var data any
	switch {
	case p == "/v2/user/profile" && r.Method == http.MethodGet:
		data = map[string]any{"user_id": f.opts.UserID, "user_name": "Fake Client", "broker": "UPSTOX", "is_active": true}
	case p == "/v2/user/get-funds-and-margin" && r.Method == http.MethodGet:
		data = map[string]any{"equity": map[string]any{"available_margin": 100000.0}}
	case p == AuthorizePath && r.Method == http.MethodGet:
		data = map[string]any{"authorized_redirect_uri": "wss://" + APIHost + FeedPath + "?code=" + fakehttp.RandToken(8)}
	case (p == "/v2/order/place" || p == "/v3/order/place") && r.Method == http.MethodPost,
		(p == "/v2/order/modify" || p == "/v3/order/modify") && r.Method == http.MethodPut,
		(p == "/v2/order/cancel" || p == "/v3/order/cancel") && r.Method == http.MethodDelete:
		if f.log.OverRate(f.opts.Now(), f.opts.MaxOrdersPerSecond) {
			apiError(w, http.StatusTooManyRequests, "UDAPI10005", "Too Many Request Sent")
			return
		}
		id := r.URL.Query().Get("order_id")
		if strings.HasSuffix(p, "/place") {
			f.mu.Lock()
			f.orderSeq++
			id = fmt.Sprintf("2512070%08d", f.orderSeq)
			f.mu.Unlock()
		} else if id == "" && !bytes.Contains(body, []byte("order_id")) {
			apiError(w, http.StatusBadRequest, "UDAPI100039", "order_id is required")
			return
		}
		f.log.AddOrder(record.Order{Time: f.opts.Now(), Method: r.Method, Path: p, ID: id, Body: body})
		if strings.HasPrefix(p, "/v3/") {
			data = map[string]any{"order_ids": []string{id}}
		} else {
			data = map[string]any{"order_id": id}
		}
	default:
		apiError(w, http.StatusNotFound, "UDAPI100060", "Resource not Found.")
		return
	}
	f.mu.Lock()
	f.counts.APICalls++
	f.mu.Unlock()
	fakehttp.WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "data": data})
}

func (f *Fake) serveFeed(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	f.mu.Lock()
	f.counts.Feeds++
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), feedLifetime)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return
		}
	}
}

func apiError(w http.ResponseWriter, status int, c, msg string) {
	fakehttp.WriteJSON(w, status, map[string]any{"status": "error", "errors": []map[string]any{{
		"errorCode": c, "message": msg, "propertyPath": nil, "invalidValue": nil,
		"error_code": c, "property_path": nil, "invalid_value": nil,
	}}})
}

func nextReset(t time.Time) time.Time {
	ist := time.FixedZone("IST", 5*3600+1800)
	n := t.In(ist)
	r := time.Date(n.Year(), n.Month(), n.Day(), 3, 30, 0, 0, ist)
	if !r.After(n) {
		r = r.AddDate(0, 0, 1)
	}
	return r
}
