// Package fivepaisa logs in to 5paisa's Xstream OpenAPI
// (openapi.5paisa.com/VendorsAPI/Service1.svc) and writes the access token
// into requests the way 5paisa wants it: "Authorization: bearer <token>",
// plus head.key (the app key) and body.ClientCode in JSON bodies.
//
// Two kinds of account exist. [Broker] logs in without a person: TOTPLogin
// (client code, a fresh TOTP code, PIN) returns a request token that lives
// seconds, which GetAccessToken trades at once for the day's access token.
// [BrowserBroker] is for accounts without a PIN or TOTP secret: the person
// logs in on 5paisa's vendor login page (dev-openapi.5paisa.com) and the
// request token arrives on the proxy's callback. Either way the token dies at
// 23:59:59 IST; 5paisa has no refresh endpoint.
//
// 5paisa answers most failures with HTTP 200 and a status inside the JSON
// (body.Status 9 "Invalid Session" for a dead token), so [ParseStatus] reads
// them. The package never logs or returns the app key, encryption key, PIN,
// a TOTP code or a token; when to log in and inject is the caller's business
// (auth.Cache, the proxy).
//
// Orders (see [Orders]), from py5paisa's urlconst.py and the Xstream docs:
// POST Service1.svc/V1/PlaceOrderRequest, V1/ModifyOrderRequest,
// V1/CancelOrderRequest (any version), the bracket and cover variants
// (BracketOrderRequest, ModifyBracketOrderRequest, CancelBracketOrderRequest,
// CoverOrderRequest, ModifyCoverOrderequest [sic], CancelCoverOrderRequest),
// CancelOrderBulk, SquareOffAll, ExecuteBasket and the VTT orders
// (AddVTTOrder, ModifyVTTOrder, CancelVTTOrder).
package fivepaisa

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
	"strconv"
	"strings"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/totp"
)

// Hosts and endpoints (production; tests redirect the names with [upstream]
// resolve, never with other URLs).
const (
	APIHost         = "openapi.5paisa.com"
	VendorLoginHost = "dev-openapi.5paisa.com"
	ServiceURL      = "https://" + APIHost + "/VendorsAPI/Service1.svc"
	TOTPLoginURL    = ServiceURL + "/TOTPLogin"
	AccessTokenURL  = ServiceURL + "/GetAccessToken"
	VendorLoginURL  = "https://" + VendorLoginHost + "/WebVendorLogin/VLogin/Index"
)

const (
	maxLoginBody   = 1 << 20 // login answers are a few kilobytes
	maxMessageLen  = auth.MaxMessageLen
	maxTokenLen    = 16 << 10
	defaultLockout = time.Minute
	// cutoffHour etc. are the daily expiry of every 5paisa token, in IST.
	cutoffHour, cutoffMin, cutoffSec = 23, 59, 59
	// StatusInvalidSession is body.Status for an expired or unknown token.
	StatusInvalidSession = 9
)

// FeedHosts returns the streaming hosts: requests to them get the
// Authorization header only (their WebSocket credentials are a query
// parameter, handled elsewhere).
func FeedHosts() []string {
	return []string{"openfeed.5paisa.com", "aopenfeed.5paisa.com", "bopenfeed.5paisa.com", "gateway.5paisa.com"}
}

// IST returns India Standard Time as a fixed +05:30 zone (no tzdata needed;
// India has no daylight saving).
func IST() *time.Location { return time.FixedZone("IST", 5*3600+30*60) }

// NextCutoff returns the first 23:59:59 IST strictly after now: the moment a
// token obtained at now dies when it carries no exp claim.
func NextCutoff(now time.Time) time.Time {
	n := now.In(IST())
	c := time.Date(n.Year(), n.Month(), n.Day(), cutoffHour, cutoffMin, cutoffSec, 0, IST())
	if !now.Before(c) {
		c = c.AddDate(0, 0, 1)
	}
	return c
}

// TokenExpiry returns the exp claim of accessToken, or NextCutoff(now) when
// the token has no readable exp.
func TokenExpiry(accessToken string, now time.Time) time.Time {
	if exp, err := auth.JWTExpiry(accessToken); err == nil {
		return exp
	}
	return NextCutoff(now)
}

// Config is one 5paisa account. AppKey, UserID and EncryptionKey are always
// needed (for partner logins they are the partner's). ClientCode, PIN and
// TOTPSecret select TOTP login ([New]); without PIN and TOTPSecret the
// account logs in through a browser ([NewBrowser]) and ClientCode is
// optional (GetAccessToken reports it).
type Config struct {
	Account       string // the account name (rules.toml [brokers.NAME]); used in logs and errors
	AppKey        auth.Secret
	UserID        string
	EncryptionKey auth.Secret
	ClientCode    string // not a secret
	PIN           auth.Secret
	TOTPSecret    auth.Secret // base32
}

// session is what both kinds of account share: the access-token exchange,
// injection, rejection and bypass rules.
type session struct {
	account    string
	appKey     auth.Secret
	userID     string
	encKey     auth.Secret
	clientCode string
	client     *auth.HTTPClient
	now        func() time.Time
	log        *slog.Logger
}

// Broker logs in to a 5paisa account with TOTP. It implements auth.Broker
// and auth.Bypasser (not auth.Interactive) and is safe for concurrent use.
type Broker struct {
	session
	pin  auth.Secret
	totp *totp.Generator
}

// BrowserBroker is a 5paisa account that logs in on 5paisa's vendor login
// page. It implements auth.Broker, auth.Interactive (NeedsBrowser true) and
// auth.Bypasser, and is safe for concurrent use.
type BrowserBroker struct {
	session
}

// Interface guards.
var (
	_ auth.Broker      = (*Broker)(nil)
	_ auth.Bypasser    = (*Broker)(nil)
	_ auth.Broker      = (*BrowserBroker)(nil)
	_ auth.Bypasser    = (*BrowserBroker)(nil)
	_ auth.Interactive = (*BrowserBroker)(nil)
)

func newSession(cfg Config, client *auth.HTTPClient, now func() time.Time, logger *slog.Logger, needs ...auth.Required) (session, error) {
	needs = append(append([]auth.Required{auth.Need("app_key", cfg.AppKey != "")}, needs...),
		auth.Need("user_id", cfg.UserID != ""), auth.Need("encryption_key", cfg.EncryptionKey != ""))
	if err := auth.CheckAccount("fivepaisa", cfg.Account, needs...); err != nil {
		return session{}, err
	}
	now, log, err := auth.Defaults("fivepaisa", cfg.Account, client, now, logger)
	if err != nil {
		return session{}, err
	}
	return session{
		account:    cfg.Account,
		appKey:     cfg.AppKey,
		userID:     cfg.UserID,
		encKey:     cfg.EncryptionKey,
		clientCode: cfg.ClientCode,
		client:     client,
		now:        now,
		log:        log,
	}, nil
}

// New returns a TOTP-login Broker. It fails when a value is missing or the
// TOTP secret is not base32; the error never contains a secret. A nil now
// means time.Now and a nil logger discards.
func New(cfg Config, client *auth.HTTPClient, now func() time.Time, logger *slog.Logger) (*Broker, error) {
	s, err := newSession(cfg, client, now, logger, auth.Need("client_code", cfg.ClientCode != ""),
		auth.Need("pin", cfg.PIN != ""), auth.Need("totp_secret", cfg.TOTPSecret != ""))
	if err != nil {
		return nil, err
	}
	gen, err := totp.New(cfg.TOTPSecret, s.now)
	if err != nil {
		return nil, fmt.Errorf("fivepaisa account %q: totp_secret: %w", cfg.Account, err)
	}
	return &Broker{session: s, pin: cfg.PIN, totp: gen}, nil
}

// NewBrowser returns a BrowserBroker (vendor-login account). PIN and
// TOTPSecret must be empty: such an account uses New.
func NewBrowser(cfg Config, client *auth.HTTPClient, now func() time.Time, logger *slog.Logger) (*BrowserBroker, error) {
	if cfg.PIN != "" || cfg.TOTPSecret != "" {
		return nil, fmt.Errorf("fivepaisa account %q: pin/totp_secret are set: this account logs in with TOTP, not a browser", cfg.Account)
	}
	s, err := newSession(cfg, client, now, logger)
	if err != nil {
		return nil, err
	}
	return &BrowserBroker{session: s}, nil
}

// totpLoginRequest and accessTokenRequest are the two login bodies, field
// names exactly as 5paisa documents them.
type totpLoginRequest struct {
	Head struct {
		Key string `json:"Key"`
	} `json:"head"`
	Body struct {
		EmailID string `json:"Email_ID"`
		TOTP    string `json:"TOTP"`
		PIN     string `json:"PIN"`
	} `json:"body"`
}

type accessTokenRequest struct {
	Head struct {
		Key string `json:"Key"`
	} `json:"head"`
	Body struct {
		RequestToken string `json:"RequestToken"`
		EncryKey     string `json:"EncryKey"`
		UserID       string `json:"UserId"`
	} `json:"body"`
}

// Login performs TOTPLogin with a fresh TOTP code and, at once, exchanges the
// request token with GetAccessToken. Neither call is retried (the code and
// the request token are spent once sent): a failure returns, and the next
// Login starts over with a new code. Refusals are *auth.LoginError carrying
// 5paisa's message; HTTP 429 is *auth.RateLimitError.
func (b *Broker) Login(ctx context.Context) (*auth.Token, error) {
	code, err := b.totp.Code(ctx)
	if err != nil {
		return nil, fmt.Errorf("fivepaisa login for %q: totp code: %w", b.account, err)
	}
	start := b.now()
	var req totpLoginRequest
	req.Head.Key = b.appKey.Reveal()
	req.Body.EmailID = b.clientCode
	req.Body.TOTP = code
	req.Body.PIN = b.pin.Reveal()
	scrub := []string{b.pin.Reveal(), code}
	// Resent after a gateway's 502/503/504: with a fresh code once the
	// first one's step has passed.
	fresh := func() (any, bool) {
		c, ok := b.totp.Fresh()
		if !ok {
			return nil, false
		}
		req.Body.TOTP = c
		scrub = append(scrub, c)
		return req, true
	}
	raw, err := b.post(ctx, "TOTPLogin", TOTPLoginURL, req, scrub, fresh)
	if err != nil {
		return nil, err
	}
	rt, err := parseTOTPLogin(raw)
	if err != nil {
		return nil, b.refused(ctx, "TOTPLogin", err, scrub)
	}
	return b.exchange(ctx, rt, start, scrub)
}

// Login always fails with an error wrapping auth.ErrLoginRequired: this
// account logs in through a browser (GET /login/NAME on the proxy).
func (b *BrowserBroker) Login(context.Context) (*auth.Token, error) {
	return nil, fmt.Errorf("fivepaisa account %q logs in on 5paisa's vendor login page: %w", b.account, auth.ErrLoginRequired)
}

// NeedsBrowser reports true: the account has no PIN or TOTP secret.
func (b *BrowserBroker) NeedsBrowser() bool { return true }

// AuthURL returns the vendor login page for state, sending the browser back
// to redirectURI: VLogin/Index?VendorKey=<app key>&ResponseURL=...&State=...
func (b *BrowserBroker) AuthURL(state, redirectURI string) string {
	return VendorLoginURL + "?VendorKey=" + url.QueryEscape(b.appKey.Reveal()) +
		"&ResponseURL=" + url.QueryEscape(redirectURI) + "&State=" + url.QueryEscape(state)
}

// Exchange trades the callback's RequestToken for an access token with
// GetAccessToken (the configured user_id and encryption_key, which are the
// partner's for partner logins). The proxy has already checked state.
func (b *BrowserBroker) Exchange(ctx context.Context, _ string, callback url.Values) (*auth.Token, error) {
	rt := callback.Get("RequestToken")
	if rt == "" {
		for k, v := range callback {
			if strings.EqualFold(k, "RequestToken") && len(v) > 0 && v[0] != "" {
				rt = v[0]
				break
			}
		}
	}
	if rt == "" {
		return nil, &auth.LoginError{Account: b.account, Message: "the vendor login callback carried no RequestToken"}
	}
	if len(rt) > maxTokenLen {
		return nil, &auth.LoginError{Account: b.account, Message: "the vendor login callback's RequestToken is too long"}
	}
	return b.exchange(ctx, rt, b.now(), nil)
}

// exchange runs GetAccessToken for requestToken and builds the token.
func (s *session) exchange(ctx context.Context, requestToken string, start time.Time, scrub []string) (*auth.Token, error) {
	var req accessTokenRequest
	req.Head.Key = s.appKey.Reveal()
	req.Body.RequestToken = requestToken
	req.Body.EncryKey = s.encKey.Reveal()
	req.Body.UserID = s.userID
	scrub = append(scrub, requestToken)
	raw, err := s.post(ctx, "GetAccessToken", AccessTokenURL, req, scrub, nil)
	if err != nil {
		return nil, err
	}
	access, code, err := parseAccessToken(raw)
	if err != nil {
		return nil, s.refused(ctx, "GetAccessToken", err, scrub)
	}
	if code == "" {
		code = s.clientCode
	}
	if code == "" {
		return nil, &auth.LoginError{Account: s.account, Message: "GetAccessToken returned no ClientCode and client_code is not configured"}
	}
	if s.clientCode != "" && !strings.EqualFold(code, s.clientCode) {
		s.log.InfoContext(ctx, "5paisa reports a client code other than the configured one; using 5paisa's",
			"configured", s.clientCode, "reported", code)
	}
	now := s.now()
	exp := TokenExpiry(access, now)
	if !exp.After(now) {
		return nil, &auth.LoginError{Account: s.account,
			Message: fmt.Sprintf("token expired on arrival (exp %s); check the system clock", exp.Format(time.RFC3339))}
	}
	t := &auth.Token{
		Access:   auth.Secret(access),
		Expiry:   exp,
		Obtained: start,
		Meta:     map[string]string{"client_code": code},
	}
	if claims, err := auth.JWTClaims(access); err == nil {
		if rs, ok := claims["RedirectServer"].(string); ok && rs != "" && len(rs) <= 8 {
			t.Meta["redirect_server"] = rs
		}
	}
	s.log.InfoContext(ctx, "fivepaisa login ok", "client_code", code, "expiry", t.Expiry,
		"redirect_server", t.Meta["redirect_server"])
	return t, nil
}

// post sends one login call (never retried) and returns the body of a 2xx
// answer; other answers become *auth.LoginError or *auth.RateLimitError.
// post sends payload; fresh, when not nil, gives the payload to resend
// after a gateway's 502/503/504 (a fresh TOTP code), or false to resend it
// as it was.
func (s *session) post(ctx context.Context, op, target string, payload any, scrub []string, fresh func() (any, bool)) ([]byte, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("fivepaisa %s for %q: encode request: %w", op, s.account, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("fivepaisa %s for %q: %w", op, s.account, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	var resp *http.Response
	if fresh != nil {
		resp, err = s.client.DoLogin(ctx, req, func() ([]byte, bool) {
			p, ok := fresh()
			if !ok {
				return nil, false
			}
			b, err := json.Marshal(p)
			return b, err == nil
		})
	} else {
		resp, err = s.client.Do(ctx, req, false)
	}
	if err != nil {
		s.log.WarnContext(ctx, "fivepaisa login request failed", "call", op, "error", err)
		return nil, fmt.Errorf("fivepaisa %s for %q: %w", op, s.account, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxLoginBody+1))
	if err != nil {
		return nil, fmt.Errorf("fivepaisa %s for %q: read response: %w", op, s.account, err)
	}
	if len(raw) > maxLoginBody {
		return nil, &auth.LoginError{Account: s.account, StatusCode: resp.StatusCode, Message: op + " response too large"}
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return raw, nil
	}
	msg := ""
	if _, m, _ := ParseStatus(raw); m != "" {
		msg = m
	} else if d := headDescription(raw); d != "" {
		msg = d
	}
	if msg == "" {
		msg = op + ": " + auth.StatusText(resp.StatusCode)
	}
	msg = s.clean(msg, scrub)
	s.log.WarnContext(ctx, "fivepaisa login refused", "call", op, "status", resp.StatusCode, "message", msg)
	if resp.StatusCode == http.StatusTooManyRequests {
		now := s.now()
		return nil, &auth.RateLimitError{Account: s.account, Until: now.Add(auth.RetryAfterWithin(resp.Header.Get("Retry-After"), now, defaultLockout, time.Second, time.Hour)), Message: msg}
	}
	return nil, &auth.LoginError{Account: s.account, StatusCode: resp.StatusCode, Message: msg}
}

// refused completes a *auth.LoginError from a parse function.
func (s *session) refused(ctx context.Context, op string, err error, scrub []string) error {
	var le *auth.LoginError
	if !errors.As(err, &le) {
		return fmt.Errorf("fivepaisa %s for %q: %w", op, s.account, err)
	}
	le.Account = s.account
	le.Message = s.clean(le.Message, scrub)
	s.log.WarnContext(ctx, "fivepaisa login refused", "call", op, "message", le.Message)
	return le
}

// clean makes broker text safe to show: no secrets, no control characters,
// bounded length.
func (s *session) clean(msg string, scrub []string) string {
	for _, v := range append([]string{s.appKey.Reveal(), s.encKey.Reveal()}, scrub...) {
		if len(v) >= 4 {
			msg = strings.ReplaceAll(msg, v, auth.Redacted)
		}
	}
	return auth.BrokerMessage(msg)
}

// loginHead is the head of a login answer: "status"/"Status" and
// "statusDescription"/"StatusDescription" (encoding/json matches names
// case-insensitively).
type loginHead struct {
	Status            flexInt `json:"status"`
	StatusDescription string  `json:"statusDescription"`
}

type loginBody struct {
	Status       flexInt `json:"Status"`
	Message      string  `json:"Message"`
	RequestToken string  `json:"RequestToken"`
	AccessToken  string  `json:"AccessToken"`
	ClientCode   string  `json:"ClientCode"`
}

type loginEnvelope struct {
	Head *loginHead `json:"head"`
	Body *loginBody `json:"body"`
}

// decodeLogin reads a login answer and applies the checks both calls share:
// a readable envelope, head status 0 when present, a body.
func decodeLogin(op string, raw []byte) (*loginBody, error) {
	var env loginEnvelope
	if err := json.Unmarshal(bytes.TrimSpace(raw), &env); err != nil {
		return nil, &auth.LoginError{Message: "unreadable " + op + " response", Err: auth.ErrBrokerFault}
	}
	if env.Head != nil && env.Head.Status.set && env.Head.Status.n != 0 {
		msg := env.Head.StatusDescription
		if msg == "" {
			msg = "head status " + strconv.Itoa(env.Head.Status.n)
		}
		return nil, &auth.LoginError{Message: msg}
	}
	if env.Body == nil {
		return nil, &auth.LoginError{Message: op + " response has no body"}
	}
	return env.Body, nil
}

// bodyFailure describes a non-zero body.Status: 5paisa's message, else the
// documented meaning of the code.
func bodyFailure(op string, b *loginBody) error {
	msg := b.Message
	if msg == "" {
		switch b.Status.n {
		case 1:
			msg = "invalid login credentials"
		case -1:
			msg = "server unable to process the request"
		case 2:
			msg = "invalid inputs"
		default:
			msg = op + " refused (status " + strconv.Itoa(b.Status.n) + ")"
		}
	}
	return &auth.LoginError{Message: msg}
}

// parseTOTPLogin returns body.RequestToken of a successful TOTPLogin
// answer (body.Status 0); anything else is a *auth.LoginError (Account unset).
func parseTOTPLogin(raw []byte) (string, error) {
	b, err := decodeLogin("TOTPLogin", raw)
	if err != nil {
		return "", err
	}
	if b.Status.set && b.Status.n != 0 {
		return "", bodyFailure("TOTPLogin", b)
	}
	if b.RequestToken == "" {
		msg := "TOTPLogin returned no RequestToken"
		if b.Message != "" && !strings.EqualFold(b.Message, "Success") {
			msg += ": " + b.Message
		}
		return "", &auth.LoginError{Message: msg}
	}
	if len(b.RequestToken) > maxTokenLen {
		return "", &auth.LoginError{Message: "TOTPLogin returned an oversized RequestToken"}
	}
	return b.RequestToken, nil
}

// parseAccessToken returns body.AccessToken and body.ClientCode of a
// successful GetAccessToken answer; anything else is a *auth.LoginError
// (Account unset).
func parseAccessToken(raw []byte) (access, clientCode string, err error) {
	b, err := decodeLogin("GetAccessToken", raw)
	if err != nil {
		return "", "", err
	}
	if b.Status.set && b.Status.n != 0 {
		return "", "", bodyFailure("GetAccessToken", b)
	}
	if b.AccessToken == "" {
		msg := "GetAccessToken returned no AccessToken"
		if b.Message != "" && !strings.EqualFold(b.Message, "Success") {
			msg = b.Message
		}
		return "", "", &auth.LoginError{Message: msg}
	}
	if !auth.IsB64Token(b.AccessToken) {
		return "", "", &auth.LoginError{Message: "GetAccessToken returned a malformed AccessToken"}
	}
	return b.AccessToken, strings.TrimSpace(b.ClientCode), nil
}

// headDescription returns head.statusDescription of a JSON answer, if any.
func headDescription(raw []byte) string {
	var env struct {
		Head *loginHead `json:"head"`
	}
	if json.Unmarshal(bytes.TrimSpace(raw), &env) != nil || env.Head == nil {
		return ""
	}
	return env.Head.StatusDescription
}

// Inject writes t into r. Every Authorization header the client sent is
// replaced by "Authorization: bearer <token>". The market-feed socket
// (FeedPath on a feed host) gets Value1=<token>|<client code> in its query,
// replacing the client's. On hosts other than the
// streaming ones, a JSON body (Content-Type application/json or +json; a
// body without a JSON Content-Type is never rewritten, so a web page's
// text/plain or unlabelled POST gets no credentials in it) gets head.key and
// body.ClientCode (see [RewriteBody]) and a fixed Content-Length; other
// bodies are left alone. A body labelled JSON that is not a JSON object is
// an error wrapping auth.ErrBadRequest.
func (s *session) Inject(r *http.Request, t *auth.Token) error {
	if t == nil || t.Access == "" {
		return fmt.Errorf("fivepaisa account %q: no token to inject", s.account)
	}
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	r.Header.Set("Authorization", "bearer "+t.Access.Reveal())
	if isFeedRequest(r) {
		if err := s.feedCredentials(r, t); err != nil {
			return err
		}
	}
	if isFeedHost(auth.RequestHost(r)) || r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	data, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		return fmt.Errorf("fivepaisa account %q: read request body: %w", s.account, err)
	}
	ct := r.Header.Get("Content-Type")
	trimmed := trimJSONSpace(data)
	if len(trimmed) == 0 || !isJSONType(ct) {
		setBody(r, data)
		return nil
	}
	code := t.Meta["client_code"]
	if code == "" {
		code = s.clientCode
	}
	if code == "" {
		return fmt.Errorf("fivepaisa account %q: no client code known for body.ClientCode", s.account)
	}
	out, err := RewriteBody(data, s.appKey.Reveal(), code)
	if err != nil {
		return fmt.Errorf("fivepaisa account %q: %w", s.account, err)
	}
	setBody(r, out)
	return nil
}

// setBody replaces r's body with data and fixes the length fields.
func setBody(r *http.Request, data []byte) {
	r.Body = io.NopCloser(bytes.NewReader(data))
	r.ContentLength = int64(len(data))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	r.TransferEncoding = nil
	r.Header.Del("Content-Length")
	if len(data) == 0 {
		r.Body = http.NoBody
	}
}

// isJSONType reports whether a Content-Type value names JSON.
func isJSONType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

func isFeedHost(h string) bool {
	for _, f := range FeedHosts() {
		if h == f {
			return true
		}
	}
	return false
}

// Rejected reports whether 5paisa refused the token: HTTP 401, or a JSON
// answer whose body.Status is 9 or whose body.Message (or Message) is
// "Invalid Session", whatever the HTTP status (5paisa says it in a 200).
func (s *session) Rejected(resp *http.Response, peek func() []byte) bool {
	if resp.StatusCode == http.StatusUnauthorized {
		return true
	}
	if peek == nil {
		return false
	}
	// Peek only at bodies that may be JSON: a stream must not be waited on.
	if ct := strings.ToLower(resp.Header.Get("Content-Type")); ct != "" && !strings.Contains(ct, "json") && !strings.HasPrefix(ct, "text/plain") {
		return false
	}
	status, msg, ok := ParseStatus(peek())
	return (ok && status == StatusInvalidSession) || strings.EqualFold(strings.TrimSpace(msg), "Invalid Session")
}

// Bypass reports whether r goes to 5paisa's own login endpoints, which a
// client may call itself: TOTPLogin and GetAccessToken (last path segment,
// any case) and everything on the vendor login host. Such requests are
// forwarded untouched and need no token.
func (s *session) Bypass(r *http.Request) bool {
	if auth.RequestHost(r) == VendorLoginHost {
		return true
	}
	if r.URL == nil {
		return false
	}
	last := path.Base(path.Clean("/" + r.URL.Path))
	return strings.EqualFold(last, "TOTPLogin") || strings.EqualFold(last, "GetAccessToken")
}
