// Package tradovate is a strict in-memory fake of Tradovate's API for tests
// and the demo. One http.Handler serves every Tradovate host name (see
// [Hosts]); what it answers depends on the request's Host:
//
//   - demo./live.tradovateapi.com: credential login
//     (/v1/auth/accesstokenrequest), renewal (/v1/auth/renewaccesstoken),
//     the OAuth token endpoint (/auth/oauthtoken, also under /v1) and REST
//     calls under /v1/ that need "Authorization: Bearer <accessToken>";
//   - md.tradovateapi.com, md-demo.tradovateapi.com: calls under /v1/ that
//     need the market-data token (mdAccessToken; OAuth access tokens, which
//     come without one, are accepted too);
//   - trader.tradovate.com: the OAuth consent page GET /oauth, which approves
//     at once and redirects to redirect_uri?code=..&state=..
//
// It follows brokers.md §2 and is stricter than the real service is known to
// be, so that a sloppy client fails here first: a login body must hold only
// documented fields with the right credentials and no Authorization header;
// only two sessions live at a time (a third closes the oldest, whose tokens
// then get 401); renewal needs a live access token; refresh tokens rotate and
// a used one is refused with HTTP 200 {"error":"invalid_token"}; an API call
// must carry exactly one bearer.
//
// Tests steer it with [Fake.QueueLogins] (penalty tickets, captcha, 423,
// 429), [Fake.SetTokenTTL] (short tokens) and [Fake.RedirectHost] (307 to an
// organisation host), and read [Fake.Counters] and [Fake.Requests]. A Fake
// holds no package-level state; every method is safe for concurrent use.
package tradovate

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authproxy/authproxy/internal/fakebroker/fakehttp"
)

// Host names the fake answers for.
const (
	HostDemo    = "demo.tradovateapi.com"
	HostLive    = "live.tradovateapi.com"
	HostMD      = "md.tradovateapi.com"
	HostMDDemo  = "md-demo.tradovateapi.com"
	HostConsent = "trader.tradovate.com"
)

// Hosts returns every host name the fake serves by default.
func Hosts() []string {
	return []string{HostDemo, HostLive, HostMD, HostMDDemo, HostConsent}
}

// Texts the fake answers with (errorText, or the body of a 401).
const (
	MsgBadCredentials = "Incorrect username or password. Please try again, noting that passwords are case-sensitive."
	MsgBadApp         = "The application is not registered or its secret is wrong."
	MsgBadDevice      = "Device ID does not match."
	MsgAccessDenied   = "Access is denied"
	MsgExpired        = "Expired Access Token"
	MsgSessionClosed  = "Session closed: the user logged in elsewhere"
	MsgAuthHeader     = "Authorization header is not allowed on this request"
	MsgContentType    = "Content-Type must be application/json"
	MsgBadTicket      = "Invalid or expired p-ticket"
	MsgNotFound       = "Not found"
)

const (
	defaultTokenTTL   = 90 * time.Minute
	defaultRefreshTTL = 26 * time.Hour
	defaultSessions   = 2
	codeTTL           = 2 * time.Minute
	ticketTTL         = time.Hour
	maxBodyBytes      = 1 << 20
	maxRecorded       = 2000
	fakeUserID        = 424242
)

// Options configure a Fake. Credential fields left empty are not checked
// (Username and Password always are).
type Options struct {
	Username   string
	Password   string
	AppID      string
	AppVersion string
	CID        string // digits; the login may send it as a JSON number or string
	Sec        string
	DeviceID   string // when set, deviceId must match

	ClientID     string // OAuth app; empty: OAuth is refused
	ClientSecret string

	TokenTTL    time.Duration // access and md token lifetime; default 90m
	RefreshTTL  time.Duration // OAuth refresh token lifetime; default 26h
	MaxSessions int           // concurrent credential sessions; default 2

	// BadCredentials401 answers a wrong name or password with HTTP 401
	// (partner docs) instead of HTTP 200 with errorText (official tutorial).
	BadCredentials401 bool
	// RenewOmitsMD leaves mdAccessToken out of renewal answers (the
	// session's market-data token is then extended instead).
	RenewOmitsMD bool
	// ClosedSessionStatus is what a token of a closed session gets (the
	// user logged in elsewhere). The API docs say 408, 429 or 5xx; 0 keeps
	// 401, which older tests count on.
	ClosedSessionStatus int

	Now func() time.Time // default time.Now
}

// AnswerKind is a canned answer to a login attempt; see [Fake.QueueLogins].
type AnswerKind int

// Canned login answers.
const (
	// AnswerPenalty: HTTP 200 {"p-ticket":..,"p-time":PTime}; the request is
	// not processed. Resending the body with the ticket after PTime seconds
	// is the way on.
	AnswerPenalty AnswerKind = iota + 1
	// AnswerCaptcha: like AnswerPenalty plus "p-captcha":true; the ticket
	// never becomes usable.
	AnswerCaptcha
	// AnswerLocked: HTTP 423.
	AnswerLocked
	// AnswerTooMany: HTTP 429 with an empty body (Retry-After when set).
	AnswerTooMany
)

// Answer is one queued login answer.
type Answer struct {
	Kind       AnswerKind
	PTime      int // seconds, for AnswerPenalty and AnswerCaptcha
	RetryAfter int // seconds, for AnswerTooMany; 0: no header
}

// Counters are what the fake has seen so far.
type Counters struct {
	LoginAttempts   int // accesstokenrequest calls of any outcome
	Sessions        int // successful accesstokenrequests (each opens a session)
	OpenSessions    int // sessions not closed by the session limit
	Penalties       int // answers carrying a p-ticket (captcha included)
	Renewals        int // successful renewaccesstoken calls
	RenewalsRefused int
	Consents        int // OAuth consent pages approved
	OAuthExchanges  int // successful authorization_code grants
	OAuthRefreshes  int // successful refresh_token grants
	OAuthRefused    int // refused oauthtoken calls
	APICalls        int // calls under /v1/ other than the auth endpoints
	APIRejected     int // of those, answered 401
	Redirects       int // 307 answers
}

// Recorded is one API call the fake saw (auth endpoints are not recorded).
type Recorded struct {
	Method        string
	Host          string
	Path          string
	Authorization string // every Authorization value, joined with ", "
	TokenKind     string // "access", "md", "oauth", or "" when not a live token
	Status        int
}

type tokenInfo struct {
	kind    string // "access", "md", "oauth"
	session *session
	expiry  time.Time
}

type session struct {
	id     int
	closed bool
	md     []string // md tokens issued to the session
}

type refreshInfo struct {
	used   bool
	expiry time.Time
}

type codeInfo struct {
	redirectURI string
	expiry      time.Time
	used        bool
}

type ticketInfo struct {
	ready   time.Time
	expiry  time.Time
	captcha bool
}

// Fake is a strict fake Tradovate. It implements http.Handler.
type Fake struct {
	opts Options

	orderSeq atomic.Int64 // order ids handed out (orders.go)

	mu          sync.Mutex
	ttl         time.Duration
	queue       []Answer
	tokens      map[string]*tokenInfo
	sessions    []*session
	outage      int
	refresh     map[string]*refreshInfo
	codes       map[string]*codeInfo
	tickets     map[string]*ticketInfo
	redirects   map[string]string
	counters    Counters
	requests    []Recorded
	loginBodies [][]byte
}

// New returns a Fake. Zero durations take their defaults; a nil Now means
// time.Now.
func New(opts Options) *Fake {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = defaultTokenTTL
	}
	if opts.RefreshTTL <= 0 {
		opts.RefreshTTL = defaultRefreshTTL
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = defaultSessions
	}
	return &Fake{
		opts:      opts,
		ttl:       opts.TokenTTL,
		tokens:    make(map[string]*tokenInfo),
		refresh:   make(map[string]*refreshInfo),
		codes:     make(map[string]*codeInfo),
		tickets:   make(map[string]*ticketInfo),
		redirects: make(map[string]string),
	}
}

// SetTokenTTL sets the lifetime of access and md tokens issued from now on
// (d <= 0: 90 minutes).
func (f *Fake) SetTokenTTL(d time.Duration) {
	if d <= 0 {
		d = defaultTokenTTL
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ttl = d
}

// QueueLogins queues canned answers: each well-formed accesstokenrequest
// takes the next one, if any, before its credentials are looked at.
func (f *Fake) QueueLogins(a ...Answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue = append(f.queue, a...)
}

// RedirectHost makes every API call (under /v1/, auth endpoints excluded)
// to host from answer 307 with the same path and query on host to; an
// empty to removes the redirect.
func (f *Fake) RedirectHost(from, to string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	from = strings.ToLower(from)
	if to == "" {
		delete(f.redirects, from)
		return
	}
	f.redirects[from] = strings.ToLower(to)
}

// Outage makes every API call answer status whatever its token (0 ends
// it): a broker fault, not a closed session.
func (f *Fake) Outage(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outage = status
}

// CloseAllSessions closes every session (as logging in elsewhere would):
// their tokens get 401 from now on.
func (f *Fake) CloseAllSessions() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sessions {
		s.closed = true
	}
}

// Counters returns a snapshot of the counters.
func (f *Fake) Counters() Counters {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.counters
	c.OpenSessions = 0
	for _, s := range f.sessions {
		if !s.closed {
			c.OpenSessions++
		}
	}
	return c
}

// Requests returns a copy of the API calls seen, oldest first (at most the
// last 2000).
func (f *Fake) Requests() []Recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Recorded(nil), f.requests...)
}

// LoginBodies returns copies of the raw accesstokenrequest bodies received,
// oldest first.
func (f *Fake) LoginBodies() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([][]byte, len(f.loginBodies))
	for i, b := range f.loginBodies {
		out[i] = bytes.Clone(b)
	}
	return out
}

// TokenKind reports what tok is to the fake ("access", "md", "oauth") and
// whether it is currently accepted.
func (f *Fake) TokenKind(tok string) (kind string, live bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ti := f.tokens[tok]
	if ti == nil {
		return "", false
	}
	return ti.kind, f.liveLocked(ti, f.opts.Now())
}

// ServeHTTP implements http.Handler.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := hostOf(r)
	p := strings.ToLower(r.URL.Path)
	if host == HostConsent {
		if p == "/oauth" {
			f.serveConsent(w, r)
			return
		}
		writeText(w, http.StatusNotFound, MsgNotFound)
		return
	}
	auth := strings.TrimPrefix(p, "/v1")
	md := isMDHost(host)
	switch {
	case !md && auth == "/auth/accesstokenrequest":
		f.serveLogin(w, r)
	case !md && auth == "/auth/renewaccesstoken":
		f.serveRenew(w, r)
	case !md && auth == "/auth/oauthtoken":
		f.serveOAuthToken(w, r)
	case p == WSPath:
		f.serveWS(w, r, host, md)
	case strings.HasPrefix(p, "/v1/"):
		f.serveAPI(w, r, host, md)
	default:
		writeText(w, http.StatusNotFound, MsgNotFound)
	}
}

func hostOf(r *http.Request) string {
	h := r.Host
	if h == "" {
		h = r.URL.Host
	}
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

func isMDHost(host string) bool {
	return host == HostMD || host == HostMDDemo
}

// loginResponse is Tradovate's AccessTokenResponse plus penalty fields.
type loginResponse struct {
	ErrorText              string `json:"errorText,omitempty"`
	AccessToken            string `json:"accessToken,omitempty"`
	MDAccessToken          string `json:"mdAccessToken,omitempty"`
	ExpirationTime         string `json:"expirationTime,omitempty"`
	PasswordExpirationTime string `json:"passwordExpirationTime,omitempty"`
	UserStatus             string `json:"userStatus,omitempty"`
	UserID                 int    `json:"userId,omitempty"`
	Name                   string `json:"name,omitempty"`
	HasLive                *bool  `json:"hasLive,omitempty"`
	PTicket                string `json:"p-ticket,omitempty"`
	PTime                  *int   `json:"p-time,omitempty"`
	PCaptcha               bool   `json:"p-captcha,omitempty"`
}

// loginFieldKind says what type an accesstokenrequest field has ("string",
// "cid": an integer or a string, "bool"), or "" for a field not documented.
func loginFieldKind(name string) string {
	switch name {
	case "name", "password", "appId", "appVersion", "sec", "deviceId", "p-ticket":
		return "string"
	case "cid":
		return "cid"
	case "hibpCheck":
		return "bool"
	}
	return ""
}

func (f *Fake) serveLogin(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.counters.LoginAttempts++
	f.mu.Unlock()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeText(w, http.StatusMethodNotAllowed, "Method not allowed")
		return
	}
	if len(r.Header.Values("Authorization")) > 0 {
		fakehttp.WriteJSON(w, http.StatusBadRequest, loginResponse{ErrorText: MsgAuthHeader})
		return
	}
	if !isMedia(r, "application/json") {
		fakehttp.WriteJSON(w, http.StatusUnsupportedMediaType, loginResponse{ErrorText: MsgContentType})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		fakehttp.WriteJSON(w, http.StatusBadRequest, loginResponse{ErrorText: "request body could not be read"})
		return
	}
	f.mu.Lock()
	f.loginBodies = append(f.loginBodies, bytes.Clone(body))
	f.mu.Unlock()
	fields, problem := parseLoginBody(body)
	if problem != "" {
		fakehttp.WriteJSON(w, http.StatusBadRequest, loginResponse{ErrorText: problem})
		return
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.opts.Now()
	if t := fields["p-ticket"]; t != "" {
		ti := f.tickets[t]
		switch {
		case ti == nil || now.After(ti.expiry):
			fakehttp.WriteJSON(w, http.StatusOK, loginResponse{ErrorText: MsgBadTicket})
			return
		case ti.captcha:
			f.penaltyLocked(w, t, ti, now)
			return
		case now.Before(ti.ready):
			f.penaltyLocked(w, t, ti, now)
			return
		}
		delete(f.tickets, t)
	}
	if len(f.queue) > 0 {
		a := f.queue[0]
		f.queue = f.queue[1:]
		switch a.Kind {
		case AnswerPenalty, AnswerCaptcha:
			t := newToken(18)
			ti := &ticketInfo{
				ready:   now.Add(time.Duration(a.PTime) * time.Second),
				expiry:  now.Add(ticketTTL),
				captcha: a.Kind == AnswerCaptcha,
			}
			f.tickets[t] = ti
			f.penaltyLocked(w, t, ti, now)
			return
		case AnswerLocked:
			fakehttp.WriteJSON(w, http.StatusLocked, loginResponse{ErrorText: "Too many failed attempts: the account is temporarily locked"})
			return
		case AnswerTooMany:
			if a.RetryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(a.RetryAfter))
			}
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
	}

	o := f.opts
	bad := func(msg string) {
		if o.BadCredentials401 {
			fakehttp.WriteJSON(w, http.StatusUnauthorized, loginResponse{ErrorText: msg})
			return
		}
		fakehttp.WriteJSON(w, http.StatusOK, loginResponse{ErrorText: msg})
	}
	switch {
	case !equal(fields["name"], o.Username) || !equal(fields["password"], o.Password):
		bad(MsgBadCredentials)
		return
	case o.AppID != "" && !equal(fields["appId"], o.AppID),
		o.AppVersion != "" && !equal(fields["appVersion"], o.AppVersion),
		o.CID != "" && !equal(fields["cid"], o.CID),
		o.Sec != "" && !equal(fields["sec"], o.Sec):
		bad(MsgBadApp)
		return
	case o.DeviceID != "" && !equal(fields["deviceId"], o.DeviceID):
		bad(MsgBadDevice)
		return
	}

	s := &session{id: len(f.sessions) + 1}
	f.sessions = append(f.sessions, s)
	f.counters.Sessions++
	open := 0
	for i := len(f.sessions) - 1; i >= 0; i-- {
		if f.sessions[i].closed {
			continue
		}
		open++
		if open > o.MaxSessions {
			f.sessions[i].closed = true
		}
	}
	access, md, exp := f.issueLocked(s, now, true)
	hasLive := false
	fakehttp.WriteJSON(w, http.StatusOK, loginResponse{
		AccessToken:            access,
		MDAccessToken:          md,
		ExpirationTime:         exp.UTC().Format("2006-01-02T15:04:05.000Z"),
		PasswordExpirationTime: now.Add(90 * 24 * time.Hour).UTC().Format("2006-01-02T15:04:05.000Z"),
		UserStatus:             "Active",
		UserID:                 fakeUserID,
		Name:                   o.Username,
		HasLive:                &hasLive,
	})
}

// penaltyLocked answers with ticket t.
func (f *Fake) penaltyLocked(w http.ResponseWriter, t string, ti *ticketInfo, now time.Time) {
	f.counters.Penalties++
	wait := 0
	if d := ti.ready.Sub(now); d > 0 {
		wait = int(math.Ceil(d.Seconds()))
	}
	if ti.captcha {
		wait = int(ticketTTL / time.Second)
	}
	fakehttp.WriteJSON(w, http.StatusOK, loginResponse{PTicket: t, PTime: &wait, PCaptcha: ti.captcha})
}

// issueLocked creates an access token (and, with md, a market-data token)
// for s.
func (f *Fake) issueLocked(s *session, now time.Time, md bool) (access, mdTok string, exp time.Time) {
	exp = now.Add(f.ttl)
	access = newToken(48)
	f.tokens[access] = &tokenInfo{kind: "access", session: s, expiry: exp}
	if md {
		mdTok = newToken(48)
		f.tokens[mdTok] = &tokenInfo{kind: "md", session: s, expiry: exp}
		s.md = append(s.md, mdTok)
	}
	return access, mdTok, exp
}

func parseLoginBody(body []byte) (map[string]string, string) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, "request body is not a JSON object"
	}
	if dec.More() {
		return nil, "request body has trailing data"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(map[string]string, len(m))
	for _, k := range keys {
		kind := loginFieldKind(k)
		if kind == "" {
			return nil, fmt.Sprintf("unknown field %q", k)
		}
		switch v := m[k].(type) {
		case string:
			if kind == "bool" {
				return nil, fmt.Sprintf("field %q must be a boolean", k)
			}
			out[k] = v
		case json.Number:
			if kind != "cid" {
				return nil, fmt.Sprintf("field %q must be a string", k)
			}
			if _, err := strconv.ParseInt(v.String(), 10, 64); err != nil {
				return nil, fmt.Sprintf("field %q must be an integer", k)
			}
			out[k] = v.String()
		case bool:
			if kind != "bool" {
				return nil, fmt.Sprintf("field %q must be a string", k)
			}
		default:
			return nil, fmt.Sprintf("field %q has the wrong type", k)
		}
	}
	if out["name"] == "" || out["password"] == "" {
		return nil, "name and password are required"
	}
	return out, ""
}

func (f *Fake) serveRenew(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeText(w, http.StatusMethodNotAllowed, "Method not allowed")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.opts.Now()
	tok, ok := fakehttp.Bearer(r.Header)
	ti := f.tokens[tok]
	if !ok || ti == nil || ti.kind == "md" || !f.liveLocked(ti, now) {
		f.counters.RenewalsRefused++
		msg := MsgAccessDenied
		if ti != nil && !now.Before(ti.expiry) {
			msg = MsgExpired
		}
		fakehttp.WriteJSON(w, http.StatusUnauthorized, loginResponse{ErrorText: msg})
		return
	}
	f.counters.Renewals++
	if ti.kind == "oauth" {
		exp := now.Add(f.ttl)
		access := newToken(48)
		f.tokens[access] = &tokenInfo{kind: "oauth", expiry: exp}
		fakehttp.WriteJSON(w, http.StatusOK, loginResponse{AccessToken: access, ExpirationTime: exp.UTC().Format(time.RFC3339Nano),
			UserStatus: "Active", UserID: fakeUserID})
		return
	}
	access, md, exp := f.issueLocked(ti.session, now, !f.opts.RenewOmitsMD)
	if f.opts.RenewOmitsMD {
		for _, m := range ti.session.md {
			if t := f.tokens[m]; t != nil && t.expiry.Before(exp) {
				t.expiry = exp
			}
		}
	}
	fakehttp.WriteJSON(w, http.StatusOK, loginResponse{
		AccessToken:    access,
		MDAccessToken:  md,
		ExpirationTime: exp.UTC().Format("2006-01-02T15:04:05.000Z"),
		UserStatus:     "Active",
		UserID:         fakeUserID,
		Name:           f.opts.Username,
	})
}

// liveLocked reports whether ti is accepted at now.
func (f *Fake) liveLocked(ti *tokenInfo, now time.Time) bool {
	if !now.Before(ti.expiry) {
		return false
	}
	return ti.session == nil || !ti.session.closed
}

func (f *Fake) serveAPI(w http.ResponseWriter, r *http.Request, host string, md bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.opts.Now()
	f.counters.APICalls++
	rec := Recorded{Method: r.Method, Host: host, Path: r.URL.Path,
		Authorization: strings.Join(r.Header.Values("Authorization"), ", ")}
	defer func() {
		f.requests = append(f.requests, rec)
		if n := len(f.requests); n > maxRecorded {
			f.requests = f.requests[n-maxRecorded:]
		}
	}()
	if f.outage != 0 {
		rec.Status = f.outage
		writeText(w, f.outage, "Service Unavailable")
		return
	}
	if to, ok := f.redirects[host]; ok && to != host {
		u := *r.URL
		u.Scheme, u.Host = "https", to
		f.counters.Redirects++
		rec.Status = http.StatusTemporaryRedirect
		w.Header().Set("Location", u.String())
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	tok, ok := fakehttp.Bearer(r.Header)
	ti := f.tokens[tok]
	if ok && ti != nil && f.liveLocked(ti, now) {
		rec.TokenKind = ti.kind
	}
	accepted := rec.TokenKind == "oauth" ||
		(md && rec.TokenKind == "md") || (!md && rec.TokenKind == "access")
	if !accepted {
		f.counters.APIRejected++
		rec.Status = http.StatusUnauthorized
		msg := MsgAccessDenied
		switch {
		case ti != nil && !now.Before(ti.expiry):
			msg = MsgExpired
		case ti != nil && ti.session != nil && ti.session.closed:
			msg = MsgSessionClosed
			if f.opts.ClosedSessionStatus != 0 {
				rec.Status = f.opts.ClosedSessionStatus
				writeText(w, f.opts.ClosedSessionStatus, msg)
				return
			}
		}
		writeText(w, http.StatusUnauthorized, msg)
		return
	}
	rec.Status = http.StatusOK
	p := strings.ToLower(r.URL.Path)
	switch {
	case !md && p == "/v1/account/list":
		fakehttp.WriteJSON(w, http.StatusOK, []map[string]any{{
			"id": 1001, "name": "DEMO4242", "userId": fakeUserID, "accountType": "Customer",
			"active": true, "clearingHouseId": 2, "riskCategoryId": 2, "autoLiqProfileId": 2,
			"marginAccountType": "Speculator", "legalStatus": "Individual", "archived": false,
		}})
	case !md && p == "/v1/user/syncrequest":
		fakehttp.WriteJSON(w, http.StatusOK, map[string]any{
			"users":    []map[string]any{{"id": fakeUserID, "name": f.opts.Username, "status": "Active"}},
			"accounts": []map[string]any{{"id": 1001, "name": "DEMO4242"}},
		})
	case !md && r.Method == http.MethodPost && isOrderPath(p):
		f.serveOrder(w, r, host)
	case !md && p == "/v1/auth/me":
		fakehttp.WriteJSON(w, http.StatusOK, map[string]any{"userId": fakeUserID, "name": f.opts.Username, "status": "Active"})
	default:
		fakehttp.WriteJSON(w, http.StatusOK, map[string]any{"ok": true, "host": host, "path": r.URL.Path, "method": r.Method})
	}
}

// serveConsent is trader.tradovate.com/oauth: it approves at once.
func (f *Fake) serveConsent(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeText(w, http.StatusMethodNotAllowed, "Method not allowed")
		return
	}
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	switch {
	case q.Get("response_type") != "code":
		writeText(w, http.StatusBadRequest, "response_type must be code")
		return
	case f.opts.ClientID == "" || q.Get("client_id") != f.opts.ClientID:
		writeText(w, http.StatusBadRequest, "unknown client_id")
		return
	case err != nil || (redirect.Scheme != "http" && redirect.Scheme != "https") || redirect.Host == "":
		writeText(w, http.StatusBadRequest, "redirect_uri must be an absolute http(s) URL")
		return
	}
	f.mu.Lock()
	code := newToken(24)
	f.codes[code] = &codeInfo{redirectURI: q.Get("redirect_uri"), expiry: f.opts.Now().Add(codeTTL)}
	f.counters.Consents++
	f.mu.Unlock()
	back := redirect.Query()
	back.Set("code", code)
	if s := q.Get("state"); s != "" {
		back.Set("state", s)
	}
	redirect.RawQuery = back.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// oauthResponse is Tradovate's OAuthTokenResponse.
type oauthResponse struct {
	AccessToken           string `json:"access_token,omitempty"`
	RefreshToken          string `json:"refresh_token,omitempty"`
	TokenType             string `json:"token_type,omitempty"`
	ExpiresIn             int    `json:"expires_in,omitempty"`
	RefreshTokenExpiresIn int    `json:"refresh_token_expires_in,omitempty"`
	Error                 string `json:"error,omitempty"`
	ErrorDescription      string `json:"error_description,omitempty"`
}

func (f *Fake) serveOAuthToken(w http.ResponseWriter, r *http.Request) {
	refuse := func(status int, code, desc string) {
		f.mu.Lock()
		f.counters.OAuthRefused++
		f.mu.Unlock()
		fakehttp.WriteJSON(w, status, oauthResponse{Error: code, ErrorDescription: desc})
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		refuse(http.StatusMethodNotAllowed, "invalid_request", "POST only")
		return
	}
	params, err := oauthParams(w, r)
	if err != nil {
		refuse(http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if user, pass, ok := r.BasicAuth(); ok {
		if params.Get("client_id") == "" {
			params.Set("client_id", user)
		}
		if params.Get("client_secret") == "" {
			params.Set("client_secret", pass)
		}
	} else if len(r.Header.Values("Authorization")) > 0 {
		refuse(http.StatusBadRequest, "invalid_request", MsgAuthHeader)
		return
	}
	if f.opts.ClientID == "" || !equal(params.Get("client_id"), f.opts.ClientID) ||
		!equal(params.Get("client_secret"), f.opts.ClientSecret) {
		refuse(http.StatusUnauthorized, "invalid_client", "unknown client or wrong client_secret")
		return
	}

	f.mu.Lock()
	now := f.opts.Now()
	switch params.Get("grant_type") {
	case "authorization_code":
		c := f.codes[params.Get("code")]
		switch {
		case c == nil || c.used || now.After(c.expiry):
			f.mu.Unlock()
			refuse(http.StatusOK, "invalid_grant", "unknown, used or expired code")
			return
		case c.redirectURI != params.Get("redirect_uri"):
			f.mu.Unlock()
			refuse(http.StatusOK, "invalid_grant", "redirect_uri does not match the authorization request")
			return
		}
		c.used = true
		f.counters.OAuthExchanges++
	case "refresh_token":
		rt := f.refresh[params.Get("refresh_token")]
		if rt == nil || rt.used || !now.Before(rt.expiry) {
			f.mu.Unlock()
			refuse(http.StatusOK, "invalid_token", "refresh token is unknown, used or expired")
			return
		}
		rt.used = true
		f.counters.OAuthRefreshes++
	default:
		f.mu.Unlock()
		refuse(http.StatusOK, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
		return
	}
	access, refresh := newToken(48), newToken(32)
	f.tokens[access] = &tokenInfo{kind: "oauth", expiry: now.Add(f.ttl)}
	f.refresh[refresh] = &refreshInfo{expiry: now.Add(f.opts.RefreshTTL)}
	resp := oauthResponse{
		AccessToken:           access,
		RefreshToken:          refresh,
		TokenType:             "Bearer",
		ExpiresIn:             int(math.Ceil(f.ttl.Seconds())),
		RefreshTokenExpiresIn: int(f.opts.RefreshTTL / time.Second),
	}
	f.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	fakehttp.WriteJSON(w, http.StatusOK, resp)
}

// oauthParams reads a form-encoded or JSON oauthtoken body.
func oauthParams(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return nil, fmt.Errorf("body could not be read")
	}
	switch {
	case isMedia(r, "application/x-www-form-urlencoded"):
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("malformed form body")
		}
		return v, nil
	case isMedia(r, "application/json"):
		var m map[string]string
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, fmt.Errorf("malformed JSON body")
		}
		v := url.Values{}
		for k, s := range m {
			v.Set(k, s)
		}
		return v, nil
	}
	return nil, fmt.Errorf("content type must be form-encoded or JSON")
}

func isMedia(r *http.Request, want string) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == want
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// newToken returns n random bytes, base64url.
func newToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(msg)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
}
