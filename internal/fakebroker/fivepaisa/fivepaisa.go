// Package fivepaisa is a strict in-memory fake of 5paisa's Xstream OpenAPI
// for tests and the demo: TOTPLogin and GetAccessToken on openapi.5paisa.com,
// the vendor login page on dev-openapi.5paisa.com (auto-approving), and
// token-checked API calls under /VendorsAPI/Service1.svc/ answering in
// 5paisa's head/body envelope, failures included (HTTP 200 with a status
// inside, as brokers.md §3 and the GetAccessToken doc page describe), and
// the market-feed WebSocket on the feed hosts (see ws.go).
//
// It is stricter than the real service is known to be, so that a sloppy
// client fails here first: a TOTP code works once, a request token works
// once and only for RequestTokenTTL, API calls need "Authorization: bearer"
// with a live token, head carrying exactly one key spelled "key" equal to
// the app key, and body.ClientCode equal to the token's client.
//
// A Fake holds no package-level state; every method is safe for concurrent
// use.
package fivepaisa

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/authproxy/authproxy/internal/fakebroker/fakehttp"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// Hosts and paths the fake serves.
const (
	APIHost          = "openapi.5paisa.com"
	VendorHost       = "dev-openapi.5paisa.com"
	ServicePrefix    = "/VendorsAPI/Service1.svc/"
	TOTPLoginPath    = ServicePrefix + "TOTPLogin"
	AccessTokenPath  = ServicePrefix + "GetAccessToken"
	VendorLoginPath  = "/WebVendorLogin/VLogin/Index"
	HistoricalPrefix = "/V2/historical/"
)

// Messages the fake answers with (body.Message or head.statusDescription).
const (
	MsgSuccess       = "Success"
	MsgInvalidHead   = "Invalid head parameters."
	MsgInvalidInput  = "Invalid Input Parameters."
	MsgInvalidSess   = "Invalid Session"
	MsgInvalidLogin  = "Invalid Login Credentials."
	MsgInvalidTOTP   = "Invalid TOTP."
	MsgTOTPUsed      = "TOTP already used."
	MsgTokenExpired  = "Token Expired."                        // GetAccessToken: wrong app key, EncryKey or UserId
	MsgServerUnable  = "Server Unable to process your request" // GetAccessToken: bad, used or expired request token
	MsgTooMany       = "Too Many Requests"
	MsgEndpoint      = "Endpoint not found."
	MsgVendorKey     = "Invalid VendorKey."
	MsgResponseURL   = "Invalid ResponseURL."
	StatusOK         = 0
	StatusLoginFail  = 1
	StatusBadInput   = 2
	StatusUnable     = -1
	StatusSessionDie = 9
)

const (
	defaultRequestTTL = 30 * time.Second
	maxBodyBytes      = 1 << 20
	totpPeriodSeconds = 30
	totpSkew          = 1
)

// Hosts returns the host names the fake answers for, the feed hosts
// included.
func Hosts() []string { return append([]string{APIHost, VendorHost}, FeedHosts()...) }

// IST is India Standard Time (+05:30, no daylight saving).
func IST() *time.Location { return time.FixedZone("IST", 5*3600+30*60) }

// Cutoff returns the first 23:59:59 IST strictly after now: when 5paisa's
// access tokens die.
func Cutoff(now time.Time) time.Time {
	n := now.In(IST())
	c := time.Date(n.Year(), n.Month(), n.Day(), 23, 59, 59, 0, IST())
	if !now.Before(c) {
		c = c.AddDate(0, 0, 1)
	}
	return c
}

// Options configure a Fake.
type Options struct {
	AppKey        string // head.Key / head.key / VendorKey
	UserID        string // GetAccessToken UserId
	EncryptionKey string // GetAccessToken EncryKey
	ClientCode    string // Email_ID, body.ClientCode
	ClientName    string // default "Test Client"
	PIN           string
	TOTPSecret    string        // base32
	RequestTTL    time.Duration // request token lifetime; default 30s
	OmitExp       bool          // issue access tokens without an exp claim
	// RedirectServer is the access token's RedirectServer claim: "C"
	// (default; openfeed), "A" (aopenfeed) or "B" (bopenfeed). Order
	// updates are pushed only on that feed host (FeedConn.Home).
	RedirectServer string
	Now            func() time.Time
}

// Recorded is one request the fake saw.
type Recorded struct {
	Method        string
	Path          string
	RawQuery      string
	Host          string
	Authorization string // every Authorization value, joined with ", " if several
	Header        http.Header
	Body          []byte
	// From the JSON body, when there was one:
	HeadKeys      []string // names under head matching "key" in any case, in order
	HeadKey       string   // the value of the last of them, if a string
	ClientCode    string   // body.ClientCode, if a string
	HasClientCode bool
	Outcome       string // "ok", "invalid_head", "invalid_session", "invalid_input", "not_found", ...
}

type requestToken struct {
	client string
	expiry time.Time
	used   bool
}

type accessToken struct {
	client  string
	expiry  time.Time
	revoked bool
}

type order struct {
	id     int
	client string
	body   map[string]json.RawMessage
	at     time.Time
}

// Fake is a strict fake 5paisa. It implements http.Handler.
type Fake struct {
	opts Options
	key  []byte // HS256 signing key

	mu           sync.Mutex
	totpAttempts int
	totpLogins   int
	atCalls      int
	logins       int
	vendorLogins int
	usedSteps    map[uint64]time.Time
	reqTokens    map[string]*requestToken
	accTokens    map[string]*accessToken
	requests     []Recorded
	authCalls    []Recorded
	failLogins   int
	failStatus   int
	failExchange int
	blocked      bool
	orders       []order
	feeds        []FeedConn
}

// New returns a Fake. Zero durations take the defaults; nil Now is time.Now.
func New(opts Options) *Fake {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RequestTTL <= 0 {
		opts.RequestTTL = defaultRequestTTL
	}
	if opts.ClientName == "" {
		opts.ClientName = "Test Client"
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails
	return &Fake{
		opts:      opts,
		key:       key,
		usedSteps: make(map[uint64]time.Time),
		reqTokens: make(map[string]*requestToken),
		accTokens: make(map[string]*accessToken),
	}
}

// Logins returns the number of access tokens issued (successful
// GetAccessToken calls, after TOTP or vendor login).
func (f *Fake) Logins() int { return f.count(&f.logins) }

// TOTPAttempts returns the number of TOTPLogin calls, successful or not.
func (f *Fake) TOTPAttempts() int { return f.count(&f.totpAttempts) }

// TOTPLogins returns the number of request tokens issued by TOTPLogin.
func (f *Fake) TOTPLogins() int { return f.count(&f.totpLogins) }

// AccessTokenCalls returns the number of GetAccessToken calls.
func (f *Fake) AccessTokenCalls() int { return f.count(&f.atCalls) }

// VendorLogins returns the number of vendor login pages approved.
func (f *Fake) VendorLogins() int { return f.count(&f.vendorLogins) }

func (f *Fake) count(p *int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *p
}

// Requests returns a copy of every API request seen (not logins, not the
// vendor page), in order, refused ones included.
func (f *Fake) Requests() []Recorded { return f.copyOf(&f.requests) }

// AuthCalls returns a copy of every TOTPLogin and GetAccessToken call, in
// order. Their bodies hold secrets: for tests only.
func (f *Fake) AuthCalls() []Recorded { return f.copyOf(&f.authCalls) }

func (f *Fake) copyOf(p *[]Recorded) []Recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Recorded, len(*p))
	for i, r := range *p {
		r.Header = r.Header.Clone()
		r.Body = bytes.Clone(r.Body)
		r.HeadKeys = append([]string(nil), r.HeadKeys...)
		out[i] = r
	}
	return out
}

// RevokeAll ends every session issued so far: API calls with those tokens
// get "Invalid Session" (HTTP 200, body.Status 9).
func (f *Fake) RevokeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.accTokens {
		t.revoked = true
	}
}

// Block makes every API call answer "Invalid Session" (HTTP 200,
// body.Status 9) whatever the token, while logins still succeed: what 5paisa
// does for an expired password or a broker-side block, which no fresh token
// cures. Block(false) lifts it.
func (f *Fake) Block(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blocked = on
}

// FailNextLogins makes the next n TOTPLogin calls fail with HTTP status
// before the request is looked at (no TOTP code is spent). A 429 carries
// "Retry-After: 1".
func (f *Fake) FailNextLogins(n, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failLogins, f.failStatus = n, status
}

// FailNextAccessTokens makes the next n GetAccessToken calls answer
// "Server Unable to process your request" without looking at (or spending)
// the request token.
func (f *Fake) FailNextAccessTokens(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failExchange = n
}

// ServeHTTP implements http.Handler.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := hostOf(r)
	vendorHost := host == VendorHost
	apiHost := host == APIHost || net.ParseIP(host) != nil
	switch {
	case vendorHost && strings.EqualFold(r.URL.Path, VendorLoginPath):
		f.serveVendorLogin(w, r)
	case isFeedHost(host) && strings.EqualFold(strings.TrimSuffix(r.URL.Path, "/"), FeedPath):
		f.serveFeed(w, r)
	case !apiHost:
		f.notFound(w, r)
	case strings.EqualFold(r.URL.Path, TOTPLoginPath):
		f.serveTOTPLogin(w, r)
	case strings.EqualFold(r.URL.Path, AccessTokenPath):
		f.serveAccessToken(w, r)
	case hasPrefixFold(r.URL.Path, ServicePrefix):
		f.serveAPI(w, r)
	case hasPrefixFold(r.URL.Path, HistoricalPrefix):
		f.serveHistorical(w, r)
	default:
		f.notFound(w, r)
	}
}

func hostOf(r *http.Request) string {
	h := r.Host
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func (f *Fake) notFound(w http.ResponseWriter, r *http.Request) {
	f.record(r, nil, "not_found")
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	w.WriteHeader(http.StatusNotFound)
	_, _ = io.WriteString(w, "<html><body><h1>"+MsgEndpoint+"</h1></body></html>")
}

// --- envelopes -------------------------------------------------------------

// apiHead is the head of API answers: status as a string.
type apiHead struct {
	ResponseCode      string `json:"responseCode,omitempty"`
	Status            string `json:"status"`
	StatusDescription string `json:"statusDescription"`
}

type apiEnvelope struct {
	Head apiHead `json:"head"`
	Body any     `json:"body"`
}

// statusBody is the {"Message","Status"} failure body.
type statusBody struct {
	Message string `json:"Message"`
	Status  int    `json:"Status"`
}

// writeInvalidHead is {"head":{"status":"2","statusDescription":"Invalid head parameters."},"body":null}.
func writeInvalidHead(w http.ResponseWriter) {
	fakehttp.WriteJSON(w, http.StatusOK, apiEnvelope{Head: apiHead{Status: "2", StatusDescription: MsgInvalidHead}})
}

// writeBodyStatus answers head "0" with body {"Message":msg,"Status":st}.
func writeBodyStatus(w http.ResponseWriter, code, msg string, st int) {
	fakehttp.WriteJSON(w, http.StatusOK, apiEnvelope{
		Head: apiHead{ResponseCode: code, Status: "0", StatusDescription: "Success"},
		Body: statusBody{Message: msg, Status: st},
	})
}

func isJSON(r *http.Request) bool {
	mt, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

// kv is one member of a JSON object.
type kv struct {
	key string
	val json.RawMessage
}

// members decodes a JSON object keeping order and duplicates.
func members(raw []byte) ([]kv, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	t, err := dec.Token()
	if err != nil || t != json.Delim('{') {
		return nil, false
	}
	var out []kv
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, false
		}
		k, ok := kt.(string)
		if !ok {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		out = append(out, kv{k, v})
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return out, true
}

// request is a parsed head/body request.
type request struct {
	head []kv
	body []kv
	ok   bool // the document was an object with an object head
}

func parseRequest(raw []byte) request {
	top, ok := members(raw)
	if !ok {
		return request{}
	}
	var req request
	for _, m := range top {
		switch m.key {
		case "head":
			h, ok := members(m.val)
			if !ok {
				return request{}
			}
			req.head, req.ok = h, true
		case "body":
			b, ok := members(m.val)
			if !ok {
				req.body = nil
				continue
			}
			req.body = b
		}
	}
	return req
}

// str returns the string value of the last member named k (exact), and
// how many members have that name.
func str(ms []kv, k string) (string, int) {
	v, n := "", 0
	for _, m := range ms {
		if m.key == k {
			n++
			var s string
			if json.Unmarshal(m.val, &s) == nil {
				v = s
			} else {
				v = ""
			}
		}
	}
	return v, n
}

// headKeys returns the names under head equal to "key" in any case.
func headKeys(ms []kv) []string {
	var out []string
	for _, m := range ms {
		if strings.EqualFold(m.key, "key") {
			out = append(out, m.key)
		}
	}
	return out
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
}

func (f *Fake) record(r *http.Request, body []byte, outcome string) {
	rec := f.recorded(r, body, outcome)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, rec)
}

func (f *Fake) recorded(r *http.Request, body []byte, outcome string) Recorded {
	rec := Recorded{
		Method:        r.Method,
		Path:          r.URL.Path,
		RawQuery:      r.URL.RawQuery,
		Host:          r.Host,
		Authorization: strings.Join(r.Header.Values("Authorization"), ", "),
		Header:        r.Header.Clone(),
		Body:          bytes.Clone(body),
		Outcome:       outcome,
	}
	if req := parseRequest(body); req.ok || req.body != nil {
		rec.HeadKeys = headKeys(req.head)
		for _, m := range req.head {
			if strings.EqualFold(m.key, "key") {
				var s string
				if json.Unmarshal(m.val, &s) == nil {
					rec.HeadKey = s
				}
			}
		}
		var n int
		rec.ClientCode, n = str(req.body, "ClientCode")
		rec.HasClientCode = n > 0
	}
	return rec
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// --- TOTPLogin -------------------------------------------------------------

type totpLoginBody struct {
	ClientCode   string `json:"ClientCode"`
	Message      string `json:"Message"`
	RedirectURL  string `json:"RedirectURL"`
	RequestToken string `json:"RequestToken"`
	Status       int    `json:"Status"`
	Userkey      string `json:"Userkey"`
}

type loginHead struct {
	ResponseCode      string `json:"ResponseCode,omitempty"`
	Status            int    `json:"Status"`
	StatusDescription string `json:"StatusDescription"`
}

type totpLoginEnvelope struct {
	Head loginHead     `json:"head"`
	Body totpLoginBody `json:"body"`
}

func writeTOTPLogin(w http.ResponseWriter, b totpLoginBody) {
	fakehttp.WriteJSON(w, http.StatusOK, totpLoginEnvelope{
		Head: loginHead{ResponseCode: "5PTOTPLogin", Status: 0, StatusDescription: "Success"},
		Body: b,
	})
}

func (f *Fake) serveTOTPLogin(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	f.mu.Lock()
	f.totpAttempts++
	f.authCalls = append(f.authCalls, f.recorded(r, body, ""))
	fail, failStatus := f.failLogins > 0, f.failStatus
	if fail {
		f.failLogins--
	}
	f.mu.Unlock()

	if fail {
		if failStatus == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		msg := http.StatusText(failStatus)
		if failStatus == http.StatusTooManyRequests {
			msg = MsgTooMany
		}
		fakehttp.WriteJSON(w, failStatus, apiEnvelope{Head: apiHead{Status: "2", StatusDescription: msg}})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "Method not allowed.", http.StatusMethodNotAllowed)
		return
	}
	if err != nil || !isJSON(r) {
		writeInvalidHead(w)
		return
	}
	req := parseRequest(body)
	keys := headKeys(req.head)
	key := ""
	if len(keys) == 1 {
		key, _ = str(req.head, keys[0])
	}
	if !req.ok || len(keys) != 1 || !equal(key, f.opts.AppKey) {
		writeInvalidHead(w)
		return
	}
	email, n1 := str(req.body, "Email_ID")
	code, n2 := str(req.body, "TOTP")
	pin, n3 := str(req.body, "PIN")
	if n1 != 1 || n2 != 1 || n3 != 1 || email == "" || code == "" || pin == "" {
		writeTOTPLogin(w, totpLoginBody{Message: MsgInvalidInput, Status: StatusBadInput})
		return
	}
	if !strings.EqualFold(email, f.opts.ClientCode) {
		writeTOTPLogin(w, totpLoginBody{Message: MsgInvalidLogin, Status: StatusLoginFail})
		return
	}
	now := f.opts.Now()
	step, ok := f.matchTOTP(code, now)
	if !ok {
		writeTOTPLogin(w, totpLoginBody{Message: MsgInvalidTOTP, Status: StatusLoginFail})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for s, at := range f.usedSteps { // bounded: a handful of live steps
		if now.Sub(at) > 5*time.Minute {
			delete(f.usedSteps, s)
		}
	}
	if _, used := f.usedSteps[step]; used {
		writeTOTPLogin(w, totpLoginBody{Message: MsgTOTPUsed, Status: StatusLoginFail})
		return
	}
	f.usedSteps[step] = now // a valid code is spent even when the PIN is wrong
	if !equal(pin, f.opts.PIN) {
		writeTOTPLogin(w, totpLoginBody{Message: MsgInvalidLogin, Status: StatusLoginFail})
		return
	}
	rt := f.issueRequestTokenLocked(now)
	f.totpLogins++
	writeTOTPLogin(w, totpLoginBody{
		ClientCode: f.opts.ClientCode, Message: MsgSuccess, RequestToken: rt, Status: StatusOK, Userkey: f.opts.AppKey,
	})
}

// matchTOTP validates code with pquerna/otp (30 s, 6 digits, skew 1) and
// returns its time step.
func (f *Fake) matchTOTP(code string, now time.Time) (uint64, bool) {
	vo := totp.ValidateOpts{Period: totpPeriodSeconds, Skew: totpSkew, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	if len(code) != 6 {
		return 0, false
	}
	ok, err := totp.ValidateCustom(code, f.opts.TOTPSecret, now, vo)
	if err != nil || !ok {
		return 0, false
	}
	for d := -totpSkew; d <= totpSkew; d++ {
		t := now.Add(time.Duration(d*totpPeriodSeconds) * time.Second)
		c, err := totp.GenerateCodeCustom(f.opts.TOTPSecret, t, vo)
		if err == nil && equal(c, code) {
			return uint64(t.Unix()) / totpPeriodSeconds, true
		}
	}
	return 0, false
}

// issueRequestTokenLocked mints a single-use request token. f.mu held.
func (f *Fake) issueRequestTokenLocked(now time.Time) string {
	exp := now.Add(f.opts.RequestTTL)
	tok := f.sign([]claim{
		{"unique_name", f.opts.ClientCode},
		{"role", f.opts.AppKey},
		{"jti", newID()},
		{"nbf", now.Unix()},
		{"exp", exp.Unix()},
		{"iat", now.Unix()},
	})
	f.reqTokens[tok] = &requestToken{client: f.opts.ClientCode, expiry: exp}
	for k, t := range f.reqTokens { // bounded: forget long-dead ones
		if now.Sub(t.expiry) > 10*time.Minute {
			delete(f.reqTokens, k)
		}
	}
	return tok
}

// --- GetAccessToken -------------------------------------------------------

// accessTokenBody is GetAccessToken's body, fields as on the doc page.
type accessTokenBody struct {
	AccessToken          string `json:"AccessToken"`
	AllowBseCash         string `json:"AllowBseCash"`
	AllowBseDeriv        string `json:"AllowBseDeriv"`
	AllowBseMF           string `json:"AllowBseMF"`
	AllowMCXComm         string `json:"AllowMCXComm"`
	AllowMcxSx           string `json:"AllowMcxSx"`
	AllowNSECurrency     string `json:"AllowNSECurrency"`
	AllowNSEL            string `json:"AllowNSEL"`
	AllowNseCash         string `json:"AllowNseCash"`
	AllowNseComm         string `json:"AllowNseComm"`
	AllowNseDeriv        string `json:"AllowNseDeriv"`
	AllowNseMF           string `json:"AllowNseMF"`
	BulkOrderAllowed     int    `json:"BulkOrderAllowed"`
	CleareDt             string `json:"CleareDt"`
	ClientCode           string `json:"ClientCode"`
	ClientName           string `json:"ClientName"`
	ClientType           string `json:"ClientType"`
	CommodityEnabled     string `json:"CommodityEnabled"`
	CustomerType         string `json:"CustomerType"`
	DPInfoAvailable      string `json:"DPInfoAvailable"`
	DemoTrial            string `json:"DemoTrial"`
	DirectMFCharges      int    `json:"DirectMFCharges"`
	IsIDBound            int    `json:"IsIDBound"`
	IsIDBound2           int    `json:"IsIDBound2"`
	IsOnlyMF             string `json:"IsOnlyMF"`
	IsPLM                int    `json:"IsPLM"`
	IsPLMDefined         int    `json:"IsPLMDefined"`
	Message              string `json:"Message"`
	OTPCredentialID      string `json:"OTPCredentialID"`
	PGCharges            int    `json:"PGCharges"`
	PLMsAllowed          int    `json:"PLMsAllowed"`
	POAStatus            string `json:"POAStatus"`
	PasswordChangeFlag   int    `json:"PasswordChangeFlag"`
	PasswordChangeMsg    string `json:"PasswordChangeMessage"`
	ReferralBenefits     int    `json:"ReferralBenefits"`
	RefreshToken         string `json:"RefreshToken"`
	RunningAuthorization int    `json:"RunningAuthorization"`
	Status               int    `json:"Status"`
	VersionChanged       int    `json:"VersionChanged"`
}

// accessTokenEnvelope has body first, as on the doc page.
type accessTokenEnvelope struct {
	Body accessTokenBody `json:"body"`
	Head loginHead       `json:"head"`
}

func cleareDt(now time.Time) string {
	return "/Date(" + strconv.FormatInt(now.UnixMilli(), 10) + "+0530)/"
}

func writeAccessTokenFailure(w http.ResponseWriter, now time.Time, msg string, st int) {
	fakehttp.WriteJSON(w, http.StatusOK, accessTokenEnvelope{
		Body: accessTokenBody{CleareDt: cleareDt(now), Message: msg, Status: st},
		Head: loginHead{Status: 0, StatusDescription: "Success"},
	})
}

func (f *Fake) serveAccessToken(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	now := f.opts.Now()
	f.mu.Lock()
	f.atCalls++
	f.authCalls = append(f.authCalls, f.recorded(r, body, ""))
	fail := f.failExchange > 0
	if fail {
		f.failExchange--
	}
	f.mu.Unlock()
	if fail {
		writeAccessTokenFailure(w, now, MsgServerUnable, StatusUnable)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "Method not allowed.", http.StatusMethodNotAllowed)
		return
	}
	if err != nil || !isJSON(r) {
		writeInvalidHead(w)
		return
	}
	req := parseRequest(body)
	keys := headKeys(req.head)
	if !req.ok || len(keys) != 1 {
		writeInvalidHead(w)
		return
	}
	key, _ := str(req.head, keys[0])
	rt, n1 := str(req.body, "RequestToken")
	enc, n2 := str(req.body, "EncryKey")
	uid, n3 := str(req.body, "UserId")
	if n1 != 1 || n2 != 1 || n3 != 1 || rt == "" || enc == "" || uid == "" {
		writeAccessTokenFailure(w, now, MsgInvalidInput, StatusBadInput)
		return
	}
	if !equal(key, f.opts.AppKey) || !equal(enc, f.opts.EncryptionKey) || !equal(uid, f.opts.UserID) {
		writeAccessTokenFailure(w, now, MsgTokenExpired, StatusBadInput)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	it, ok := f.reqTokens[rt]
	if !ok || !f.validSig(rt) || it.used || !now.Before(it.expiry) {
		writeAccessTokenFailure(w, now, MsgServerUnable, StatusUnable)
		return
	}
	it.used = true
	exp := Cutoff(now)
	claims := []claim{
		{"unique_name", it.client},
		{"role", f.opts.UserID},
		{"State", ""},
		{"RedirectServer", f.redirectServer()},
		{"jti", newID()},
		{"nbf", now.Unix()},
	}
	if !f.opts.OmitExp {
		claims = append(claims, claim{"exp", exp.Unix()})
	}
	claims = append(claims, claim{"iat", now.Unix()})
	tok := f.sign(claims)
	f.accTokens[tok] = &accessToken{client: it.client, expiry: exp}
	f.logins++
	fakehttp.WriteJSON(w, http.StatusOK, accessTokenEnvelope{
		Body: accessTokenBody{
			AccessToken: tok, AllowBseCash: "Y", AllowBseDeriv: "Y", AllowBseMF: "Y", AllowMCXComm: "Y",
			AllowMcxSx: "N", AllowNSECurrency: "Y", AllowNSEL: "Y", AllowNseCash: "Y", AllowNseComm: "N",
			AllowNseDeriv: "Y", AllowNseMF: "N", CleareDt: cleareDt(now), ClientCode: it.client,
			ClientName: f.opts.ClientName, ClientType: "1", CommodityEnabled: "Y", CustomerType: "BASIC",
			DPInfoAvailable: "Y", DemoTrial: "N", DirectMFCharges: 10, IsOnlyMF: "N", Message: MsgSuccess,
			PGCharges: 10, POAStatus: "Y", ReferralBenefits: 250, RefreshToken: newID(), Status: StatusOK,
		},
		Head: loginHead{Status: 0, StatusDescription: "Success"},
	})
}

// --- vendor login page ------------------------------------------------------

// query returns the first value of name in q, matching the name in any case.
func query(q url.Values, name string) string {
	if v := q.Get(name); v != "" {
		return v
	}
	for k, v := range q {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

func vendorPage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, "<!doctype html><title>5paisa</title><p>"+html.EscapeString(msg)+"</p>")
}

// serveVendorLogin plays the person logging in: it approves at once and
// redirects to ResponseURL?RequestToken=<jwt>&state=<State>.
func (f *Fake) serveVendorLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		vendorPage(w, http.StatusMethodNotAllowed, "Method not allowed.")
		return
	}
	q := r.URL.Query()
	if !equal(query(q, "VendorKey"), f.opts.AppKey) {
		vendorPage(w, http.StatusBadRequest, MsgVendorKey)
		return
	}
	back, err := url.Parse(query(q, "ResponseURL"))
	if err != nil || (back.Scheme != "http" && back.Scheme != "https") || back.Host == "" {
		vendorPage(w, http.StatusBadRequest, MsgResponseURL)
		return
	}
	state := query(q, "State")
	f.mu.Lock()
	rt := f.issueRequestTokenLocked(f.opts.Now())
	f.vendorLogins++
	f.mu.Unlock()
	bq := back.Query()
	bq.Set("RequestToken", rt)
	if state != "" {
		bq.Set("state", state)
	}
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// --- API --------------------------------------------------------------------

// session returns the client of a live access token in h.
func (f *Fake) session(h http.Header) (string, bool) {
	tok, ok := fakehttp.Bearer(h)
	if !ok {
		return "", false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	it, ok := f.accTokens[tok]
	if !ok || !f.validSig(tok) || it.revoked || !f.opts.Now().Before(it.expiry) {
		return "", false
	}
	return it.client, true
}

// route is one API endpoint: its response code and handler, which returns
// the body to send or false for "Invalid Input Parameters.".
type route struct {
	code   string
	handle func(f *Fake, client string, body []kv) (any, bool)
}

func routes() map[string]route {
	return map[string]route{
		"v3/orderbook":          {"5POrdBkV2", (*Fake).orderBook},
		"v1/placeorderrequest":  {"5PPlaceOrdReq", (*Fake).placeOrder},
		"v2/marketfeed":         {"5PMF", (*Fake).marketFeed},
		"v1/marketfeed":         {"5PMF", (*Fake).marketFeed},
		"v3/holding":            {"5PHoldingV3", (*Fake).holdings},
		"v4/margin":             {"5PMarginV4", (*Fake).margin},
		"v1/tradebook":          {"5PTrdBkV1", (*Fake).tradeBook},
		"v2/netpositionnetwise": {"5PNPNWV2", (*Fake).netPositions},
	}
}

func (f *Fake) serveAPI(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	name := strings.ToLower(strings.Trim(r.URL.Path[len(ServicePrefix):], "/"))
	rt, known := routes()[name]
	outcome := "ok"
	defer func() { f.record(r, body, outcome) }()
	switch {
	case !known:
		outcome = "not_found"
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "<html><body><h1>"+MsgEndpoint+"</h1></body></html>")
		return
	case r.Method != http.MethodPost:
		outcome = "method"
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "Method not allowed.", http.StatusMethodNotAllowed)
		return
	}
	req := request{}
	if err == nil && isJSON(r) {
		req = parseRequest(body)
	}
	keys := headKeys(req.head)
	key, _ := str(req.head, "key")
	if !req.ok || len(keys) != 1 || keys[0] != "key" || !equal(key, f.opts.AppKey) {
		outcome = "invalid_head"
		writeInvalidHead(w)
		return
	}
	f.mu.Lock()
	blocked := f.blocked
	f.mu.Unlock()
	client, ok := f.session(r.Header)
	if blocked {
		outcome = "blocked"
		writeBodyStatus(w, rt.code, MsgInvalidSess, StatusSessionDie)
		return
	}
	if !ok {
		outcome = "invalid_session"
		writeBodyStatus(w, rt.code, MsgInvalidSess, StatusSessionDie)
		return
	}
	cc, n := str(req.body, "ClientCode")
	if n != 1 || !strings.EqualFold(cc, client) {
		outcome = "invalid_input"
		writeBodyStatus(w, rt.code, MsgInvalidInput, StatusBadInput)
		return
	}
	out, ok := rt.handle(f, client, req.body)
	if !ok {
		outcome = "invalid_input"
		writeBodyStatus(w, rt.code, MsgInvalidInput, StatusBadInput)
		return
	}
	fakehttp.WriteJSON(w, http.StatusOK, apiEnvelope{
		Head: apiHead{ResponseCode: rt.code, Status: "0", StatusDescription: "Success"},
		Body: out,
	})
}

func num(ms []kv, k string) (float64, bool) {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].key == k {
			var n float64
			if json.Unmarshal(ms[i].val, &n) == nil {
				return n, true
			}
			var s string
			if json.Unmarshal(ms[i].val, &s) == nil {
				if v, err := strconv.ParseFloat(s, 64); err == nil {
					return v, true
				}
			}
			return 0, false
		}
	}
	return 0, false
}

func (f *Fake) placeOrder(client string, body []kv) (any, bool) {
	ot, _ := str(body, "OrderType")
	exch, _ := str(body, "Exchange")
	et, _ := str(body, "ExchangeType")
	scrip, ok1 := num(body, "ScripCode")
	qty, ok2 := num(body, "Qty")
	switch strings.ToUpper(ot) {
	case "B", "S", "BUY", "SELL":
	default:
		return nil, false
	}
	if exch == "" || et == "" || !ok1 || !ok2 || qty <= 0 {
		return nil, false
	}
	m := make(map[string]json.RawMessage, len(body))
	for _, kv := range body {
		m[kv.key] = kv.val
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.opts.Now()
	id := 100000 + len(f.orders) + 1
	f.orders = append(f.orders, order{id: id, client: client, body: m, at: now})
	return map[string]any{
		"BrokerOrderID": id, "ClientCode": client, "Exch": exch, "ExchOrderID": "0", "ExchType": et,
		"LocalOrderID": 0, "Message": MsgSuccess, "RMSResponseCode": 0, "ScripCode": int(scrip),
		"Status": StatusOK, "Time": cleareDt(now),
	}, true
}

func (f *Fake) orderBook(client string, _ []kv) (any, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rows := []map[string]any{}
	for i := len(f.orders) - 1; i >= 0; i-- {
		o := f.orders[i]
		if o.client != client {
			continue
		}
		rows = append(rows, map[string]any{
			"BrokerOrderId": o.id, "BuySell": raw(o.body["OrderType"], `"B"`), "Exch": raw(o.body["Exchange"], `"N"`),
			"ExchType": raw(o.body["ExchangeType"], `"C"`), "ScripCode": raw(o.body["ScripCode"], `0`),
			"Qty": raw(o.body["Qty"], `0`), "Rate": raw(o.body["Price"], `0`), "OrderStatus": "Pending",
			"BrokerOrderTime": cleareDt(o.at),
		})
	}
	rows = append(rows, map[string]any{
		"BrokerOrderId": 99999, "BuySell": "B", "Exch": "N", "ExchType": "C", "ScripCode": 1660, "Qty": 1,
		"Rate": 0, "OrderStatus": "Fully Executed", "ScripName": "ITC", "BrokerOrderTime": "/Date(1706672400000+0530)/",
	})
	return map[string]any{"Message": MsgSuccess, "OrderBookDetail": rows, "Status": StatusOK}, true
}

func raw(v json.RawMessage, def string) json.RawMessage {
	if len(v) == 0 {
		return json.RawMessage(def)
	}
	return v
}

func (f *Fake) marketFeed(_ string, body []kv) (any, bool) {
	var reqs []struct {
		Exch      string          `json:"Exch"`
		ExchType  string          `json:"ExchType"`
		ScripCode json.RawMessage `json:"ScripCode"`
	}
	for _, m := range body {
		if m.key == "MarketFeedData" {
			if json.Unmarshal(m.val, &reqs) != nil {
				return nil, false
			}
		}
	}
	if len(reqs) == 0 {
		return nil, false
	}
	now := f.opts.Now()
	data := make([]map[string]any, 0, len(reqs))
	for i, q := range reqs {
		data = append(data, map[string]any{
			"Chg": 1.5, "ChgPcnt": 0.35, "Exch": q.Exch, "ExchType": q.ExchType, "High": 432.1, "LastRate": 430.0 + float64(i),
			"Low": 425.2, "PClose": 428.5, "TickDt": cleareDt(now), "Time": 33000, "Token": raw(q.ScripCode, "0"), "TotalQty": 123456,
		})
	}
	return map[string]any{"CacheTime": 5, "Data": data, "Message": MsgSuccess, "Status": StatusOK, "TimeSpan": "NA"}, true
}

func (f *Fake) holdings(_ string, _ []kv) (any, bool) {
	return map[string]any{"CacheTime": 300, "Data": []map[string]any{{
		"AvgRate": 412.3, "BseCode": 500875, "CurrentPrice": 430.0, "Exch": "N", "ExchType": "C", "FullName": "ITC LTD",
		"NseCode": 1660, "Quantity": 10, "Symbol": "ITC",
	}}, "Message": MsgSuccess, "Status": StatusOK}, true
}

func (f *Fake) margin(client string, _ []kv) (any, bool) {
	return map[string]any{"ClientCode": client, "EquityMargin": []map[string]any{{
		"ALB": 0, "Adhoc": 0, "AvailableMargin": 25000.5, "GHV": 0, "GrossMargin": 25000.5, "Lb": 0, "Mgn4Position": 0,
		"NetAvailableMargin": 25000.5, "TotalPL": 0,
	}}, "Message": MsgSuccess, "Status": StatusOK, "TimeStamp": cleareDt(f.opts.Now())}, true
}

func (f *Fake) tradeBook(client string, _ []kv) (any, bool) {
	return map[string]any{"ClientCode": client, "Message": MsgSuccess, "Status": StatusOK, "TradeBookDetail": []any{}}, true
}

func (f *Fake) netPositions(client string, _ []kv) (any, bool) {
	return map[string]any{"ClientCode": client, "Message": MsgSuccess, "NetPositionDetail": []any{}, "Status": StatusOK}, true
}

// serveHistorical answers GET /V2/historical/{Exch}/{ExchType}/{ScripCode}/{interval}
// with a few candles; it needs a live bearer token only.
func (f *Fake) serveHistorical(w http.ResponseWriter, r *http.Request) {
	outcome := "ok"
	defer func() { f.record(r, nil, outcome) }()
	if r.Method != http.MethodGet {
		outcome = "method"
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "Method not allowed.", http.StatusMethodNotAllowed)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path[len(HistoricalPrefix):], "/"), "/")
	if len(parts) != 4 {
		outcome = "not_found"
		http.Error(w, MsgEndpoint, http.StatusNotFound)
		return
	}
	if _, ok := f.session(r.Header); !ok {
		outcome = "invalid_session"
		writeBodyStatus(w, "", MsgInvalidSess, StatusSessionDie)
		return
	}
	day := Cutoff(f.opts.Now()).Add(-24*time.Hour + time.Second).Add(9*time.Hour + 15*time.Minute)
	candles := make([][]any, 0, 3)
	for i := range 3 {
		t := day.Add(time.Duration(i) * time.Minute).Format("2006-01-02T15:04:05")
		candles = append(candles, []any{t, 428.0 + float64(i), 429.5 + float64(i), 427.5 + float64(i), 429.0 + float64(i), 1000 * (i + 1)})
	}
	fakehttp.WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "data": map[string]any{"candles": candles}})
}

// --- JWTs -------------------------------------------------------------------

type claim struct {
	k string
	v any
}

// sign makes an HS256 JWT with claims in the given order.
func (f *Fake) sign(claims []claim) string {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, c := range claims {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(c.k)
		vb, _ := json.Marshal(c.v)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(b.Bytes())
	mac := hmac.New(sha256.New, f.key)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

func (f *Fake) validSig(tok string) bool {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, f.key)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	return hmac.Equal(sig, mac.Sum(nil))
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// String describes the fake without secrets.
func (f *Fake) String() string {
	return fmt.Sprintf("fake 5paisa for client %s", f.opts.ClientCode)
}
