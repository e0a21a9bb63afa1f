// Package angelone is a strict fake of Angel One SmartAPI for tests and the
// demo: loginByPassword, generateTokens and a few /rest/secure/ routes of
// apiconnect.angelone.in, and the SmartStream handshake of
// smartapisocket.angelone.in. One Fake serves both host names.
//
// It refuses what SmartAPI refuses, in SmartAPI's envelopes:
//   - any call without X-PrivateKey equal to the app's API key (HTTP 403,
//     gateway shape {"success":false,"message":"Invalid API Key",
//     "errorCode":"AG8004","data":""}; the code is this fake's assumption);
//   - a login without X-UserType USER (AB1005) or X-SourceID, with a wrong
//     PIN (AB1000: assumption), or with a TOTP code that is wrong, stale or
//     of a time step already used (AB1050 "Invalid totp", HTTP 200, as
//     SmartAPI answers);
//   - generateTokens with an unknown refresh token (AB8050 "Invalid Refresh
//     Token") or an expired one (AB8051);
//   - /rest/secure/ calls with a missing (AG8003), unknown or revoked
//     (AG8001) or expired (AG8002) jwtToken, answered in-band in an HTTP
//     200 with the gateway's {"success":false,...,"errorCode":..} shape;
//   - a SmartStream handshake whose four headers do not match (401).
//
// Orders (placeOrder, modifyOrder, cancelOrder) are accepted and recorded
// with their arrival time. A Fake holds no package-level state and is safe
// for concurrent use.
package angelone

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/authproxy/authproxy/internal/fakebroker/fakehttp"
	"github.com/authproxy/authproxy/internal/fakebroker/record"
)

// Hosts and paths.
const (
	APIHost    = "apiconnect.angelone.in"
	StreamHost = "smartapisocket.angelone.in"
	LoginPath  = "/rest/auth/angelbroking/user/v1/loginByPassword"
	RenewPath  = "/rest/auth/angelbroking/jwt/v1/generateTokens"
	StreamPath = "/smart-stream"
	orderBase  = "/rest/secure/angelbroking/order/v1/"
)

const (
	// DefaultTokenLifetime is how long a jwtToken lives (it also dies at
	// midnight IST).
	DefaultTokenLifetime = 24 * time.Hour
	// DefaultRefreshLifetime is how long a refresh token lives.
	DefaultRefreshLifetime = 24 * time.Hour
	maxBody                = 64 << 10
	streamLifetime         = time.Minute
)

// Options configure a Fake.
type Options struct {
	APIKey     string
	ClientCode string
	PIN        string
	TOTPSecret string // base32
	// TokenLifetime and RefreshLifetime default to the constants above.
	TokenLifetime   time.Duration
	RefreshLifetime time.Duration
	// MaxOrdersPerSecond, when positive, refuses an order that would be
	// more than this many in the last second (SmartAPI allows 20) with
	// HTTP 403 "Access denied because of exceeding access rate".
	MaxOrdersPerSecond int
	Now                func() time.Time
}

// Counts are the fake's counters.
type Counts struct {
	Logins          int
	LoginFailures   int
	Renewals        int
	RenewFailures   int
	APICalls        int
	TokenRejections int
	Streams         int
}

type session struct {
	expiry  time.Time
	revoked bool
	feed    string
}

type refresh struct {
	expiry time.Time
}

// Fake is a strict fake SmartAPI. It implements http.Handler.
type Fake struct {
	opts Options
	log  record.Log

	mu        sync.Mutex
	usedStep  int64
	stepUsed  bool
	sessions  map[string]*session
	refreshes map[string]*refresh
	counts    Counts
	orderSeq  int
}

// New returns a Fake.
func New(opts Options) *Fake {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = DefaultTokenLifetime
	}
	if opts.RefreshLifetime <= 0 {
		opts.RefreshLifetime = DefaultRefreshLifetime
	}
	return &Fake{opts: opts, sessions: map[string]*session{}, refreshes: map[string]*refresh{}}
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

// RevokeAll revokes every jwtToken issued so far (refresh tokens stay).
func (f *Fake) RevokeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sessions {
		s.revoked = true
	}
}

// ExpireRefresh makes every refresh token issued so far expire now.
func (f *Fake) ExpireRefresh() {
	now := f.opts.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.refreshes {
		r.expiry = now
	}
}

// ServeHTTP implements http.Handler.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	f.log.Add(f.opts.Now(), r, body)
	if err != nil {
		envelope(w, http.StatusRequestEntityTooLarge, "request body too large", "AB2000")
		return
	}
	h := r.Host
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	if strings.EqualFold(h, StreamHost) {
		f.serveStream(w, r)
		return
	}
	if r.Header.Get("X-PrivateKey") == "" || r.Header.Get("X-PrivateKey") != f.opts.APIKey {
		gateway(w, http.StatusForbidden, "Invalid API Key", "AG8004")
		return
	}
	switch {
	case r.URL.Path == LoginPath:
		f.serveLogin(w, r, body)
	case r.URL.Path == RenewPath:
		f.serveRenew(w, r, body)
	case strings.HasPrefix(r.URL.Path, "/rest/secure/"):
		f.serveAPI(w, r, body)
	default:
		gateway(w, http.StatusNotFound, "Not Found", "AB2000")
	}
}

func (f *Fake) serveLogin(w http.ResponseWriter, r *http.Request, body []byte) {
	fail := func(msg, code string) {
		f.mu.Lock()
		f.counts.LoginFailures++
		f.mu.Unlock()
		envelope(w, http.StatusOK, msg, code)
	}
	if r.Method != http.MethodPost {
		gateway(w, http.StatusMethodNotAllowed, "Method Not Allowed", "AB2000")
		return
	}
	if r.Header.Get("X-UserType") != "USER" {
		fail("User Type Must Be USER", "AB1005")
		return
	}
	if r.Header.Get("X-SourceID") != "WEB" {
		fail("Invalid Source ID", "AB2000")
		return
	}
	var req struct {
		ClientCode string `json:"clientcode"`
		Password   string `json:"password"`
		TOTP       string `json:"totp"`
	}
	if json.Unmarshal(body, &req) != nil {
		fail("Invalid request", "AB2000")
		return
	}
	if req.ClientCode != f.opts.ClientCode || req.Password != f.opts.PIN {
		fail("Invalid clientcode or password", "AB1000")
		return
	}
	now := f.opts.Now()
	step, ok := f.totpStep(req.TOTP, now)
	f.mu.Lock()
	if !ok || (f.stepUsed && step <= f.usedStep) {
		f.mu.Unlock()
		fail("Invalid totp", "AB1050")
		return
	}
	f.stepUsed, f.usedStep = true, step
	f.mu.Unlock()
	f.issue(w, now, "")
	f.mu.Lock()
	f.counts.Logins++
	f.mu.Unlock()
}

// totpStep returns the time step code belongs to (the current or the
// previous one).
func (f *Fake) totpStep(code string, now time.Time) (int64, bool) {
	for _, back := range []int64{0, 1} {
		at := now.Add(-time.Duration(back) * 30 * time.Second)
		want, err := totp.GenerateCodeCustom(f.opts.TOTPSecret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err == nil && code == want {
			return at.Unix() / 30, true
		}
	}
	return 0, false
}

// issue mints a session (and, without keepRefresh, a refresh token) and
// answers it.
func (f *Fake) issue(w http.ResponseWriter, now time.Time, keepRefresh string) {
	exp := now.Add(f.opts.TokenLifetime)
	if m := midnight(now); m.Before(exp) {
		exp = m
	}
	jwt := fakeJWT(f.opts.ClientCode, exp)
	feed := fakehttp.RandToken(24)
	rt := keepRefresh
	f.mu.Lock()
	f.sessions[jwt] = &session{expiry: exp, feed: feed}
	if rt == "" {
		rt = fakeJWT(f.opts.ClientCode, now.Add(f.opts.RefreshLifetime))
		f.refreshes[rt] = &refresh{expiry: now.Add(f.opts.RefreshLifetime)}
	}
	f.mu.Unlock()
	fakehttp.WriteJSON(w, http.StatusOK, map[string]any{"status": true, "message": "SUCCESS", "errorcode": "",
		"data": map[string]any{"jwtToken": jwt, "refreshToken": rt, "feedToken": feed, "state": nil}})
}

func (f *Fake) serveRenew(w http.ResponseWriter, r *http.Request, body []byte) {
	fail := func(msg, code string) {
		f.mu.Lock()
		f.counts.RenewFailures++
		f.mu.Unlock()
		envelope(w, http.StatusOK, msg, code)
	}
	var req struct {
		RefreshToken string `json:"refreshToken"`
	}
	if r.Method != http.MethodPost || json.Unmarshal(body, &req) != nil || req.RefreshToken == "" {
		fail("Invalid Refresh Token", "AB8050")
		return
	}
	now := f.opts.Now()
	f.mu.Lock()
	rt, ok := f.refreshes[req.RefreshToken]
	f.mu.Unlock()
	switch {
	case !ok:
		fail("Invalid Refresh Token", "AB8050")
		return
	case !now.Before(rt.expiry):
		fail("Refresh Token Expired", "AB8051")
		return
	}
	f.issue(w, now, req.RefreshToken)
	f.mu.Lock()
	f.counts.Renewals++
	f.mu.Unlock()
}

// bearer returns the session of the request's "Bearer <jwt>" (or bare jwt)
// and the refusal code when there is none.
func (f *Fake) bearer(auth []string) (*session, string, string) {
	if len(auth) != 1 || auth[0] == "" {
		return nil, "Token missing", "AG8003"
	}
	tok := auth[0]
	if scheme, rest, ok := strings.Cut(tok, " "); ok {
		if !strings.EqualFold(scheme, "Bearer") {
			return nil, "Invalid Token", "AG8001"
		}
		tok = rest
	}
	now := f.opts.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sessions[tok]
	switch {
	case !ok, s.revoked:
		return nil, "Invalid Token", "AG8001"
	case !now.Before(s.expiry):
		return nil, "Token Expired", "AG8002"
	}
	return s, "", ""
}

func (f *Fake) serveAPI(w http.ResponseWriter, r *http.Request, body []byte) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 1 && !strings.HasPrefix(strings.ToLower(vals[0]), "bearer ") {
		vals = nil // the REST API wants the Bearer scheme
	}
	if _, msg, code := f.bearer(vals); code != "" {
		f.mu.Lock()
		f.counts.TokenRejections++
		f.mu.Unlock()
		gateway(w, http.StatusOK, msg, code)
		return
	}
	var data any
	p := r.URL.Path
	switch {
	case p == "/rest/secure/angelbroking/user/v1/getProfile":
		data = map[string]any{"clientcode": f.opts.ClientCode, "name": "FAKE CLIENT", "exchanges": []string{"nse_cm", "bse_cm"}}
	case p == "/rest/secure/angelbroking/user/v1/getRMS":
		data = map[string]any{"net": "100000.00", "availablecash": "100000.00"}
	case p == orderBase+"getOrderBook":
		data = []any{}
	case r.Method == http.MethodPost && (p == orderBase+"placeOrder" || p == orderBase+"modifyOrder" || p == orderBase+"cancelOrder"):
		if f.log.OverRate(f.opts.Now(), f.opts.MaxOrdersPerSecond) {
			envelope(w, http.StatusForbidden, "Access denied because of exceeding access rate", "")
			return
		}
		var o map[string]any
		if json.Unmarshal(body, &o) != nil {
			envelope(w, http.StatusOK, "Invalid request", "AB2000")
			return
		}
		id, _ := o["orderid"].(string)
		if p == orderBase+"placeOrder" {
			f.mu.Lock()
			f.orderSeq++
			id = fmt.Sprintf("251207%09d", f.orderSeq)
			f.mu.Unlock()
		} else if id == "" {
			envelope(w, http.StatusOK, "Order not found", "AB1013")
			return
		}
		f.log.AddOrder(record.Order{Time: f.opts.Now(), Method: r.Method, Path: p, ID: id, Body: body})
		data = map[string]any{"script": o["tradingsymbol"], "orderid": id, "uniqueorderid": fakehttp.RandToken(24)[:16]}
	default:
		gateway(w, http.StatusNotFound, "Not Found", "AB2000")
		return
	}
	f.mu.Lock()
	f.counts.APICalls++
	f.mu.Unlock()
	fakehttp.WriteJSON(w, http.StatusOK, map[string]any{"status": true, "message": "SUCCESS", "errorcode": "", "data": data})
}

func (f *Fake) serveStream(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != StreamPath {
		http.NotFound(w, r)
		return
	}
	s, _, code := f.bearer(r.Header.Values("Authorization"))
	if code != "" || r.Header.Get("x-api-key") != f.opts.APIKey || r.Header.Get("x-client-code") != f.opts.ClientCode ||
		r.Header.Get("x-feed-token") == "" || r.Header.Get("x-feed-token") != s.feed {
		w.Header().Set("x-error-message", "Invalid Headers")
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	f.mu.Lock()
	f.counts.Streams++
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), streamLifetime)
	defer cancel()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		if typ == websocket.MessageText && bytes.Equal(msg, []byte("ping")) {
			_ = c.Write(ctx, websocket.MessageText, []byte("pong"))
		}
	}
}

// envelope answers the service's own shape.
func envelope(w http.ResponseWriter, status int, msg, code string) {
	fakehttp.WriteJSON(w, status, map[string]any{"status": false, "message": msg, "errorcode": code, "data": nil})
}

// gateway answers the API gateway's shape.
func gateway(w http.ResponseWriter, status int, msg, code string) {
	fakehttp.WriteJSON(w, status, map[string]any{"success": false, "message": msg, "errorCode": code, "data": ""})
}

// fakeJWT is an unsigned-looking JWT carrying sub and exp, unique per call.
func fakeJWT(sub string, exp time.Time) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS512"}`))
	claims, _ := json.Marshal(map[string]any{"username": sub, "exp": exp.Unix(), "jti": fakehttp.RandToken(24)})
	return head + "." + enc.EncodeToString(claims) + "." + fakehttp.RandToken(24)
}

func midnight(t time.Time) time.Time {
	ist := time.FixedZone("IST", 5*3600+1800)
	n := t.In(ist)
	return time.Date(n.Year(), n.Month(), n.Day()+1, 0, 0, 0, 0, ist)
}
