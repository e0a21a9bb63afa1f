// Package tradingo is a strict in-memory fake of Tradingo's REST API
// (tradingorestapi.swastika.co.in) for tests and the demo: TOTP login at
// /auth/TOTP/VerifyTotp issuing HS256 JWTs, and token-checked /kb/* calls,
// all answering in Tradingo's response envelope.
//
// It is deliberately stricter than the real service is known to be, so that
// a sloppy client fails here first: the login body must hold exactly the five
// documented fields, a TOTP code works once, a login must not carry an
// Authorization header, and an API body's Uid must match the token's client.
//
// A Fake holds no package-level state; every method is safe for concurrent
// use.
package tradingo

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/authproxy/authproxy/internal/fakebroker/fakehttp"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// Issuer is the iss and aud of every token the fake issues.
const Issuer = "https://tradingorestapi.swastika.co.in"

// LoginPath is where the fake accepts TOTP logins.
const LoginPath = "/auth/TOTP/VerifyTotp"

// Messages the fake answers with (ResponseException.ExceptionMessage).
const (
	MsgUnauthorized  = "Request denied. Unauthorized access."
	MsgInvalidMPIN   = "Invalid MPIN"
	MsgInvalidTOTP   = "Invalid TOTP"
	MsgTOTPUsed      = "TOTP already used"
	MsgInvalidClient = "Invalid ClientCode"
	MsgValidation    = "Request responded with one or more validation errors."
	MsgAuthHeader    = "Authorization header is not allowed on this request."
	MsgContentType   = "Unsupported Media Type. Content-Type must be application/json."
	MsgNotFound      = "Request not found. The specified uri does not exist."
	MsgMethod        = "Method not allowed."
	MsgUnavailable   = "Service temporarily unavailable."
	MsgTooManyLogins = "Too many requests. Please try again later."
	MsgUidMismatch   = "Request denied. Uid does not match the logged-in client."
)

const (
	defaultTokenTTL   = 8 * time.Hour
	maxBodyBytes      = 1 << 20
	totpPeriodSeconds = 30
	totpSkew          = 1
	headerAuth        = "Authorization"
	nameClaim         = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
	userdataClaim     = "http://schemas.microsoft.com/ws/2008/06/identity/claims/userdata"
	roleClaim         = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
)

// loginFields returns the five fields a VerifyTotp body must hold, exactly.
func loginFields() [5]string {
	return [5]string{"Totp", "ClientCode", "MPIN", "GenerationSourceTP", "IPAddress"}
}

// Options configure a Fake.
type Options struct {
	ClientCode string
	MPIN       string
	TOTPSecret string        // base32, as shown in Tradingo's "Enable TOTP" page
	TokenTTL   time.Duration // lifetime of issued tokens; default 8h
	Now        func() time.Time
}

// Recorded is one non-login request the fake saw.
type Recorded struct {
	Method        string
	Path          string
	RawQuery      string
	Host          string
	Authorization string // every Authorization value, joined with ", " if several
	Header        http.Header
	Body          []byte
}

type issued struct {
	clientCode string
	expiry     time.Time
	revoked    bool
}

type order struct {
	no   string
	uid  string
	body map[string]any
	at   time.Time
}

// Fake is a strict fake Tradingo server. It implements http.Handler.
type Fake struct {
	opts   Options
	key    []byte // HS256 signing key
	userID string // stable per fake, the .NET name claim

	mu            sync.Mutex
	ttl           time.Duration
	logins        int
	loginAttempts int
	usedSteps     map[uint64]time.Time // TOTP counters already consumed
	tokens        map[string]*issued
	requests      []Recorded
	failN         int
	failStatus    int
	orders        []order
	orderSeq      int
}

// New returns a Fake for one client. A zero TokenTTL means 8 hours and a nil
// Now means time.Now.
func New(opts Options) *Fake {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ttl := opts.TokenTTL
	if ttl <= 0 {
		ttl = defaultTokenTTL
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails
	return &Fake{
		opts:      opts,
		key:       key,
		userID:    newGUID(),
		ttl:       ttl,
		usedSteps: make(map[uint64]time.Time),
		tokens:    make(map[string]*issued),
	}
}

// Logins returns the number of successful VerifyTotp calls.
func (f *Fake) Logins() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logins
}

// LoginAttempts returns the number of VerifyTotp calls, successful or not.
func (f *Fake) LoginAttempts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.loginAttempts
}

// RevokeAll makes every token issued so far stop working: the next API call
// with one of them gets the 401 envelope.
func (f *Fake) RevokeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.tokens {
		t.revoked = true
	}
}

// SetTokenTTL sets the lifetime of tokens issued from now on (d <= 0 is 8h).
func (f *Fake) SetTokenTTL(d time.Duration) {
	if d <= 0 {
		d = defaultTokenTTL
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ttl = d
}

// Requests returns a copy of every non-login request seen, in order,
// including ones the fake refused.
func (f *Fake) Requests() []Recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Recorded, len(f.requests))
	for i, r := range f.requests {
		r.Header = r.Header.Clone()
		r.Body = bytes.Clone(r.Body)
		out[i] = r
	}
	return out
}

// FailNextLogins makes the next n login attempts fail with HTTP status and
// Tradingo's error envelope, before the request is looked at (no TOTP code
// is consumed). A 429 carries "Retry-After: 1".
func (f *Fake) FailNextLogins(n int, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failN, f.failStatus = n, status
}

// ServeHTTP implements http.Handler.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.EqualFold(r.URL.Path, LoginPath):
		f.serveLogin(w, r)
	case strings.HasPrefix(r.URL.Path, "/kb/"):
		f.serveAPI(w, r)
	default:
		f.record(r, nil)
		writeError(w, http.StatusNotFound, MsgNotFound, nil)
	}
}

// envelope is Tradingo's response wrapper; field order follows the service.
type envelope struct {
	StatusCode        int            `json:"StatusCode"`
	Message           string         `json:"Message"`
	IsError           bool           `json:"IsError"`
	ResponseException *apiException  `json:"ResponseException"`
	Result            *resultWrapper `json:"Result"`
}

type apiException struct {
	ExceptionMessage string            `json:"ExceptionMessage"`
	Details          *string           `json:"Details"`
	ValidationErrors []validationError `json:"ValidationErrors"`
}

type validationError struct {
	Field   string `json:"Field"`
	Message string `json:"Message"`
}

type resultWrapper struct {
	ResponseID      int    `json:"ResponseId"`
	ResponseMessage string `json:"ResponseMessage"`
	Data            any    `json:"Data"`
}

type loginData struct {
	Isverified         bool   `json:"Isverified"`
	GenerationSourceTP string `json:"GenerationSourceTP"`
	AccessToken        string `json:"AccessToken"`
	CName              string `json:"CName"`
	CEmail             string `json:"CEmail"`
	CMobile            string `json:"CMobile"`
	CDP                string `json:"CDP"`
	Stk                string `json:"stk"`
}

func writeError(w http.ResponseWriter, status int, msg string, verrs []validationError) {
	fakehttp.WriteJSON(w, status, envelope{
		StatusCode:        status,
		Message:           "Fail",
		IsError:           true,
		ResponseException: &apiException{ExceptionMessage: msg, ValidationErrors: verrs},
	})
}

func writeOK(w http.ResponseWriter, id int, msg string, data any) {
	fakehttp.WriteJSON(w, http.StatusOK, envelope{
		StatusCode: http.StatusOK,
		Message:    "Request successful.",
		Result:     &resultWrapper{ResponseID: id, ResponseMessage: msg, Data: data},
	})
}

func isJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

func (f *Fake) serveLogin(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.loginAttempts++
	fail, failStatus := f.failN > 0, f.failStatus
	if fail {
		f.failN--
	}
	f.mu.Unlock()

	if fail {
		msg := http.StatusText(failStatus)
		switch {
		case failStatus == http.StatusTooManyRequests:
			msg = MsgTooManyLogins
			w.Header().Set("Retry-After", "1")
		case failStatus >= 500:
			msg = MsgUnavailable
		}
		writeError(w, failStatus, msg, nil)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, MsgMethod, nil)
		return
	}
	if len(r.Header.Values(headerAuth)) > 0 {
		writeError(w, http.StatusBadRequest, MsgAuthHeader, nil)
		return
	}
	if !isJSON(r) {
		writeError(w, http.StatusUnsupportedMediaType, MsgContentType, nil)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		writeError(w, http.StatusBadRequest, "Request body could not be read.", nil)
		return
	}
	fields, verrs := parseLoginBody(body)
	if len(verrs) > 0 {
		writeError(w, http.StatusBadRequest, MsgValidation, verrs)
		return
	}

	now := f.opts.Now()
	if subtle.ConstantTimeCompare([]byte(fields["ClientCode"]), []byte(f.opts.ClientCode)) != 1 {
		writeError(w, http.StatusUnauthorized, MsgInvalidClient, nil)
		return
	}
	step, ok := f.matchTOTP(fields["Totp"], now)
	if !ok {
		writeError(w, http.StatusUnauthorized, MsgInvalidTOTP, nil)
		return
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	for s, at := range f.usedSteps { // bounded: at most a handful of live steps
		if now.Sub(at) > 5*time.Minute {
			delete(f.usedSteps, s)
		}
	}
	if _, used := f.usedSteps[step]; used {
		writeError(w, http.StatusUnauthorized, MsgTOTPUsed, nil)
		return
	}
	f.usedSteps[step] = now // a valid code is spent even when the MPIN is wrong
	if subtle.ConstantTimeCompare([]byte(fields["MPIN"]), []byte(f.opts.MPIN)) != 1 {
		writeError(w, http.StatusUnauthorized, MsgInvalidMPIN, nil)
		return
	}
	exp := now.Add(f.ttl)
	tok := f.sign(exp)
	f.tokens[tok] = &issued{clientCode: f.opts.ClientCode, expiry: exp.Truncate(time.Second)}
	f.logins++
	writeOK(w, 43, "Data Updated Successfully", loginData{
		Isverified:         true,
		GenerationSourceTP: "FTLTP",
		AccessToken:        tok,
	})
}

// parseLoginBody demands a JSON object with exactly the five login fields
// (exact spelling), each a string, GenerationSourceTP "FTLTP".
func parseLoginBody(body []byte) (map[string]string, []validationError) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, []validationError{{Field: "body", Message: "The request body must be a JSON object."}}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, []validationError{{Field: "body", Message: "Unexpected data after the JSON object."}}
	}
	var verrs []validationError
	out := make(map[string]string, 5)
	for _, name := range loginFields() {
		v, ok := raw[name]
		if !ok {
			verrs = append(verrs, validationError{Field: name, Message: "The " + name + " field is required."})
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			verrs = append(verrs, validationError{Field: name, Message: "The " + name + " field must be a string."})
			continue
		}
		out[name] = s
	}
	var unknown []string
	for k := range raw {
		if _, ok := out[k]; !ok && !isLoginField(k) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		verrs = append(verrs, validationError{Field: k, Message: "Unknown field " + strconv.Quote(k) + "."})
	}
	if len(verrs) > 0 {
		return nil, verrs
	}
	for _, name := range []string{"Totp", "ClientCode", "MPIN"} {
		if out[name] == "" {
			verrs = append(verrs, validationError{Field: name, Message: "The " + name + " field is required."})
		}
	}
	if out["GenerationSourceTP"] != "FTLTP" {
		verrs = append(verrs, validationError{Field: "GenerationSourceTP", Message: `GenerationSourceTP must be "FTLTP".`})
	}
	return out, verrs
}

func isLoginField(k string) bool {
	for _, n := range loginFields() {
		if k == n {
			return true
		}
	}
	return false
}

// matchTOTP validates code with pquerna/otp (30 s, 6 digits, skew 1) and
// returns the time step it belongs to.
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
		if err == nil && subtle.ConstantTimeCompare([]byte(c), []byte(code)) == 1 {
			return uint64(t.Unix()) / totpPeriodSeconds, true
		}
	}
	return 0, false
}

// sign makes an HS256 JWT shaped like Tradingo's (claims in the seed's
// order, plus "clientcode"). Called with f.mu held.
func (f *Fake) sign(exp time.Time) string {
	header := `{"alg":"HS256","typ":"JWT"}`
	var claims bytes.Buffer
	claims.WriteString("{")
	kv := func(k string, v any, more bool) {
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(v)
		claims.Write(kb)
		claims.WriteString(":")
		claims.Write(vb)
		if more {
			claims.WriteString(",")
		}
	}
	kv(nameClaim, f.userID, true)
	kv(userdataClaim, newGUID(), true) // per login: tokens never collide
	kv(roleClaim, "Client", true)
	kv("clientcode", f.opts.ClientCode, true)
	kv("exp", exp.Unix(), true)
	kv("iss", Issuer, true)
	kv("aud", Issuer, false)
	claims.WriteString("}")
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString(claims.Bytes())
	mac := hmac.New(sha256.New, f.key)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// verify checks the token's signature against the fake's key and looks it
// up. Called with f.mu held.
func (f *Fake) verify(tok string, now time.Time) (*issued, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, false
	}
	mac := hmac.New(sha256.New, f.key)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, false
	}
	it, ok := f.tokens[tok]
	if !ok || it.revoked || !now.Before(it.expiry) {
		return nil, false
	}
	return it, true
}

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := strings.ToUpper(hex.EncodeToString(b[:]))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (f *Fake) record(r *http.Request, body []byte) {
	rec := Recorded{
		Method:        r.Method,
		Path:          r.URL.Path,
		RawQuery:      r.URL.RawQuery,
		Host:          r.Host,
		Authorization: strings.Join(r.Header.Values(headerAuth), ", "),
		Header:        r.Header.Clone(),
		Body:          body,
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, rec)
}

func (f *Fake) serveAPI(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	f.record(r, body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Request body could not be read.", nil)
		return
	}

	tok, ok := fakehttp.Bearer(r.Header)
	var it *issued
	if ok {
		f.mu.Lock()
		it, ok = f.verify(tok, f.opts.Now())
		f.mu.Unlock()
	}
	if !ok {
		writeError(w, http.StatusUnauthorized, MsgUnauthorized, nil)
		return
	}

	var req map[string]any
	if len(bytes.TrimSpace(body)) > 0 {
		if !isJSON(r) {
			writeError(w, http.StatusUnsupportedMediaType, MsgContentType, nil)
			return
		}
		if err := json.Unmarshal(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, MsgValidation,
				[]validationError{{Field: "body", Message: "The request body must be a JSON object."}})
			return
		}
	}
	if uid, present := req["Uid"]; present {
		if s, isStr := uid.(string); !isStr || s != it.clientCode {
			writeError(w, http.StatusUnauthorized, MsgUidMismatch, nil)
			return
		}
	}

	switch r.URL.Path {
	case "/kb/OrderBook/GetOrderBookList":
		if !f.requirePost(w, r) {
			return
		}
		writeOK(w, 1, "OK", f.orderBook(it.clientCode))
	case "/kb/PositionBook/GetPositionBookList":
		if !f.requirePost(w, r) {
			return
		}
		writeOK(w, 1, "OK", positionBook(it.clientCode))
	case "/kb/PlaceOrders/PlaceOrder":
		if !f.requirePost(w, r) {
			return
		}
		writeOK(w, 1, "OK", f.placeOrder(it.clientCode, req))
	default:
		writeOK(w, 1, "OK", []any{map[string]any{
			"Path":   r.URL.Path,
			"Method": r.Method,
			"Uid":    it.clientCode,
			"Echo":   json.RawMessage(echoBody(body)),
		}})
	}
}

func echoBody(body []byte) []byte {
	if len(bytes.TrimSpace(body)) == 0 || !json.Valid(body) {
		return []byte("null")
	}
	return body
}

func (f *Fake) requirePost(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodPost {
		return true
	}
	w.Header().Set("Allow", http.MethodPost)
	writeError(w, http.StatusMethodNotAllowed, MsgMethod, nil)
	return false
}

func (f *Fake) placeOrder(uid string, req map[string]any) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.orderSeq++
	now := f.opts.Now()
	no := fmt.Sprintf("%s%08d", now.Format("060102"), f.orderSeq)
	f.orders = append(f.orders, order{no: no, uid: uid, body: req, at: now})
	return map[string]any{"Stat": "Ok", "NorenOrdNo": no, "request_time": now.Format("15:04:05 02-01-2006")}
}

func str(m map[string]any, k, def string) string {
	if v, ok := m[k].(string); ok && v != "" {
		return v
	}
	return def
}

// orderBook returns two settled sample rows plus every order placed through
// this fake for uid, newest first.
func (f *Fake) orderBook(uid string) []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var rows []map[string]any
	for i := len(f.orders) - 1; i >= 0; i-- {
		o := f.orders[i]
		if o.uid != uid {
			continue
		}
		rows = append(rows, map[string]any{
			"Stat": "Ok", "Exch": str(o.body, "Exch", "NSE"), "Tsym": str(o.body, "Tsym", "SBIN-EQ"),
			"NorenOrdNo": o.no, "Prc": str(o.body, "Prc", "0.00"), "Qty": str(o.body, "Qty", "1"),
			"Prd": str(o.body, "Prd", "C"), "Status": "OPEN", "Trantype": str(o.body, "Trantype", "B"),
			"Prctyp": str(o.body, "Prctyp", "LMT"), "Fillshares": "0", "Ret": str(o.body, "Ret", "DAY"),
			"Uid": uid, "Actid": uid, "Norentm": o.at.Format("15:04:05 02-01-2006"),
		})
	}
	rows = append(rows,
		map[string]any{
			"Stat": "Ok", "Exch": "NSE", "Tsym": "RELIANCE-EQ", "NorenOrdNo": "24013100000002", "Prc": "2710.50",
			"Qty": "5", "Prd": "C", "Status": "COMPLETE", "Trantype": "B", "Prctyp": "LMT", "Fillshares": "5",
			"Avgprc": "2710.50", "Ret": "DAY", "Uid": uid, "Actid": uid, "Norentm": "09:20:11 31-01-2024",
		},
		map[string]any{
			"Stat": "Ok", "Exch": "NSE", "Tsym": "INFY-EQ", "NorenOrdNo": "24013100000001", "Prc": "0.00",
			"Qty": "10", "Prd": "I", "Status": "REJECTED", "Trantype": "S", "Prctyp": "MKT", "Fillshares": "0",
			"Rejreason": "RED:Margin Shortfall", "Ret": "DAY", "Uid": uid, "Actid": uid, "Norentm": "09:15:42 31-01-2024",
		},
	)
	return rows
}

func positionBook(uid string) []map[string]any {
	return []map[string]any{{
		"Stat": "Ok", "Exch": "NSE", "Tsym": "RELIANCE-EQ", "Token": "2885", "Prd": "C", "Netqty": "5",
		"Netavgprc": "2710.50", "Daybuyqty": "5", "Daysellqty": "0", "Lp": "2718.00", "Rpnl": "0.00",
		"Urmtom": "37.50", "Uid": uid, "Actid": uid,
	}}
}
