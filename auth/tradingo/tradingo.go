// Package tradingo logs in to Tradingo (Swastika Investmart's REST API,
// tradingorestapi.swastika.co.in) with a client code, MPIN and TOTP secret,
// and writes the resulting JWT into requests as "Authorization: Bearer".
//
// Tradingo has no refresh endpoint: every new token is a new VerifyTotp
// login with a fresh TOTP code, so a login is never retried blindly. Every
// answer comes in Tradingo's envelope (StatusCode, Message, IsError,
// ResponseException, Result); IsError is checked whatever the HTTP status.
//
// The package only describes how to log in and inject; when to do either is
// the caller's business (auth.Cache, the proxy). It never logs or returns
// the MPIN, a TOTP code or a token.
//
// Orders (see [Orders]): POST /kb/PlaceOrders/PlaceOrder (seen in three
// community apps and Swastika's client code, brokers.md "Tradingo"), and its
// Noren-style siblings /kb/PlaceOrders/ModifyOrder and
// /kb/PlaceOrders/CancelOrder (inferred from the OMS naming the API follows:
// Tradingo publishes no endpoint list).
package tradingo

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

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/totp"
)

// DefaultBaseURL is Tradingo's production REST base.
const DefaultBaseURL = "https://tradingorestapi.swastika.co.in"

// LoginPath is the TOTP login endpoint, relative to the base URL.
const LoginPath = "/auth/TOTP/VerifyTotp"

// GenerationSource is the fixed GenerationSourceTP value of a TOTP login.
const GenerationSource = "FTLTP"

const (
	maxLoginBody   = 1 << 20 // a login answer is a few hundred bytes
	maxMessageLen  = auth.MaxMessageLen
	defaultLockout = time.Minute
)

// Config is one Tradingo account.
type Config struct {
	Account    string      // the account name (rules.toml [brokers.NAME]); used in logs and errors
	ClientCode string      // e.g. "GO11240"; not a secret
	MPIN       auth.Secret // the account's MPIN
	TOTPSecret auth.Secret // base32 key from Tradingo's "Enable TOTP" page
	IPAddress  string      // sent as IPAddress; "" when unset
	BaseURL    string      // default DefaultBaseURL
}

// Broker logs in to one Tradingo account. It implements auth.Broker and
// auth.Bypasser and is safe for concurrent use.
type Broker struct {
	cfg      Config
	loginURL string
	client   *auth.HTTPClient
	now      func() time.Time
	log      *slog.Logger
	totp     *totp.Generator
}

// Interface guards.
var (
	_ auth.Broker   = (*Broker)(nil)
	_ auth.Bypasser = (*Broker)(nil)
)

// New checks cfg and returns a Broker. It fails when a required value is
// missing, the base URL is not https, or the TOTP secret is not valid base32;
// the error never contains a secret. A nil now means time.Now and a nil
// logger discards.
func New(cfg Config, client *auth.HTTPClient, now func() time.Time, logger *slog.Logger) (*Broker, error) {
	if err := auth.CheckAccount("tradingo", cfg.Account, auth.Need("client_code", cfg.ClientCode != ""),
		auth.Need("mpin", cfg.MPIN != ""), auth.Need("totp_secret", cfg.TOTPSecret != "")); err != nil {
		return nil, err
	}
	now, log, err := auth.Defaults("tradingo", cfg.Account, client, now, logger)
	if err != nil {
		return nil, err
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || base.Scheme != "https" || base.Host == "" || base.RawQuery != "" || base.Fragment != "" {
		return nil, fmt.Errorf("tradingo account %q: base URL %q must be https://host[:port][/path]", cfg.Account, cfg.BaseURL)
	}
	gen, err := totp.New(cfg.TOTPSecret, now)
	if err != nil {
		// The totp package never quotes the secret; say which key is wrong.
		return nil, fmt.Errorf("tradingo account %q: totp_secret: %w", cfg.Account, err)
	}
	return &Broker{
		cfg:      cfg,
		loginURL: base.String() + LoginPath,
		client:   client,
		now:      now,
		log:      log,
		totp:     gen,
	}, nil
}

// loginRequest is the VerifyTotp body: all five fields, always.
type loginRequest struct {
	Totp               string `json:"Totp"`
	ClientCode         string `json:"ClientCode"`
	MPIN               string `json:"MPIN"`
	GenerationSourceTP string `json:"GenerationSourceTP"`
	IPAddress          string `json:"IPAddress"`
}

// Login performs one VerifyTotp login with a fresh TOTP code. It is never
// retried on its own (the code is spent once the request leaves), so a
// transport failure is returned as is. A refusal is a *auth.LoginError
// carrying Tradingo's message; HTTP 429 is a *auth.RateLimitError.
func (b *Broker) Login(ctx context.Context) (*auth.Token, error) {
	code, err := b.totp.Code(ctx)
	if err != nil {
		return nil, fmt.Errorf("tradingo login for %q: totp code: %w", b.cfg.Account, err)
	}
	encode := func(code string) ([]byte, error) {
		return json.Marshal(loginRequest{
			Totp:               code,
			ClientCode:         b.cfg.ClientCode,
			MPIN:               b.cfg.MPIN.Reveal(),
			GenerationSourceTP: GenerationSource,
			IPAddress:          b.cfg.IPAddress,
		})
	}
	body, err := encode(code)
	if err != nil {
		return nil, fmt.Errorf("tradingo login for %q: encode request: %w", b.cfg.Account, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.loginURL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("tradingo login for %q: %w", b.cfg.Account, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	start := b.now()
	first := code
	// Resent after a gateway's 502/503/504: with a fresh code once the
	// first one's step has passed.
	resp, err := b.client.DoLogin(ctx, req, func() ([]byte, bool) {
		fresh, ok := b.totp.Fresh()
		if !ok {
			return nil, false
		}
		nb, err := encode(fresh)
		if err != nil {
			return nil, false
		}
		code = fresh
		return nb, true
	})
	if err != nil {
		b.log.WarnContext(ctx, "tradingo login request failed", "error", err)
		return nil, fmt.Errorf("tradingo login for %q: %w", b.cfg.Account, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxLoginBody+1))
	if err != nil {
		return nil, fmt.Errorf("tradingo login for %q: read response: %w", b.cfg.Account, err)
	}
	if len(raw) > maxLoginBody {
		return nil, &auth.LoginError{Account: b.cfg.Account, StatusCode: resp.StatusCode, Message: "login response too large"}
	}

	tok, err := ParseLoginResponse(resp.StatusCode, raw)
	if err != nil {
		var le *auth.LoginError
		if !errors.As(err, &le) {
			return nil, fmt.Errorf("tradingo login for %q: %w", b.cfg.Account, err)
		}
		le.Account = b.cfg.Account
		le.Message = b.scrub(b.scrub(le.Message, code), first)
		b.log.WarnContext(ctx, "tradingo login refused", "status", resp.StatusCode, "message", le.Message)
		if resp.StatusCode == http.StatusTooManyRequests {
			return nil, &auth.RateLimitError{
				Account: b.cfg.Account,
				Until:   b.now().Add(auth.RetryAfterWithin(resp.Header.Get("Retry-After"), b.now(), defaultLockout, time.Second, time.Hour)),
				Message: le.Message,
			}
		}
		return nil, le
	}

	t := &auth.Token{
		Access:   auth.Secret(tok),
		Obtained: start,
		Meta:     map[string]string{"client_code": b.cfg.ClientCode},
	}
	exp, err := auth.JWTExpiry(tok)
	switch {
	case err == nil && !exp.After(start):
		return nil, &auth.LoginError{
			Account:    b.cfg.Account,
			StatusCode: resp.StatusCode,
			Message:    fmt.Sprintf("token expired on arrival (exp %s); check the system clock", exp.Format(time.RFC3339)),
		}
	case err == nil:
		t.Expiry = exp
	default:
		// Not a JWT we can read: use it until Tradingo rejects it.
		b.log.WarnContext(ctx, "tradingo token expiry unknown", "error", err)
	}
	b.log.InfoContext(ctx, "tradingo login ok", "client_code", b.cfg.ClientCode, "expiry", t.Expiry, "lifetime", t.Lifetime())
	return t, nil
}

// scrub removes the MPIN and the TOTP code from a broker message before it
// travels on (Tradingo's texts are not known to echo them; this makes sure).
func (b *Broker) scrub(msg, code string) string {
	for _, s := range []string{b.cfg.MPIN.Reveal(), code} {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, auth.Redacted)
		}
	}
	return msg
}

// Inject sets "Authorization: Bearer <token>" on r (the proxy has already
// removed the client's own Authorization, in any spelling).
func (b *Broker) Inject(r *http.Request, t *auth.Token) error {
	if t == nil || t.Access == "" {
		return fmt.Errorf("tradingo account %q: no token to inject", b.cfg.Account)
	}
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	r.Header.Set("Authorization", "Bearer "+t.Access.Reveal())
	return nil
}

// rejectEnvelope is the part of Tradingo's envelope Rejected looks at.
type rejectEnvelope struct {
	StatusCode        int  `json:"StatusCode"`
	IsError           bool `json:"IsError"`
	ResponseException *struct {
		ExceptionMessage string `json:"ExceptionMessage"`
	} `json:"ResponseException"`
}

// Rejected reports whether Tradingo refused the token: HTTP 401, or an
// envelope with IsError true whose StatusCode is 401 or whose
// ExceptionMessage speaks of unauthorized access or a token.
func (b *Broker) Rejected(resp *http.Response, peek func() []byte) bool {
	if resp.StatusCode == http.StatusUnauthorized {
		return true
	}
	if peek == nil || !maybeJSON(resp.Header.Get("Content-Type")) {
		return false
	}
	body := bytes.TrimSpace(peek())
	if len(body) == 0 || body[0] != '{' || !mayBeError(body) {
		return false
	}
	var env rejectEnvelope
	if json.Unmarshal(body, &env) != nil || !env.IsError {
		return false
	}
	if env.StatusCode == http.StatusUnauthorized {
		return true
	}
	if env.ResponseException == nil {
		return false
	}
	msg := strings.ToLower(env.ResponseException.ExceptionMessage)
	return strings.Contains(msg, "unauthori") || strings.Contains(msg, "token")
}

// Bypass reports whether r is for one of Tradingo's own /auth/ endpoints
// (login, SSO), which a client may call itself: such requests are forwarded
// untouched and get no token.
func (b *Broker) Bypass(r *http.Request) bool {
	if r.URL == nil {
		return false
	}
	p := path.Clean("/" + r.URL.Path)
	return len(p) > len("/auth/") && strings.EqualFold(p[:len("/auth/")], "/auth/")
}

// loginEnvelope is the VerifyTotp answer.
type loginEnvelope struct {
	StatusCode        *int   `json:"StatusCode"`
	Message           string `json:"Message"`
	IsError           *bool  `json:"IsError"`
	ResponseException *struct {
		ExceptionMessage string `json:"ExceptionMessage"`
	} `json:"ResponseException"`
	Result *struct {
		ResponseMessage string `json:"ResponseMessage"`
		Data            *struct {
			AccessToken string `json:"AccessToken"`
		} `json:"Data"`
	} `json:"Result"`
}

// ParseLoginResponse extracts Result.Data.AccessToken from a VerifyTotp
// answer with HTTP status status. Anything but a 2xx envelope with IsError
// false and a well-formed token is a *auth.LoginError (Account unset) whose
// Message is Tradingo's ExceptionMessage, else its Message, else a
// description; it never quotes the body.
func ParseLoginResponse(status int, body []byte) (token string, err error) {
	fail := func(msg string) (string, error) {
		return "", &auth.LoginError{StatusCode: status, Message: msg}
	}
	var env loginEnvelope
	if err := json.Unmarshal(bytes.TrimSpace(body), &env); err != nil || (env.IsError == nil && env.StatusCode == nil) {
		if status < 200 || status > 299 {
			return "", &auth.LoginError{StatusCode: status, Message: "unreadable error response: " + auth.StatusName(status), Err: auth.ErrBrokerFault}
		}
		return "", &auth.LoginError{StatusCode: status, Message: "unreadable login response", Err: auth.ErrBrokerFault}
	}
	msg := ""
	if env.ResponseException != nil {
		msg = auth.BrokerMessage(env.ResponseException.ExceptionMessage)
	}
	if msg == "" && env.Message != "" && !strings.EqualFold(env.Message, "Request successful.") {
		msg = auth.BrokerMessage(env.Message)
	}
	if status < 200 || status > 299 {
		if msg == "" {
			msg = auth.StatusName(status)
		}
		return fail(msg)
	}
	if env.IsError == nil || *env.IsError {
		if msg == "" {
			msg = "login refused"
		}
		return fail(msg)
	}
	if env.Result == nil || env.Result.Data == nil || env.Result.Data.AccessToken == "" {
		if msg == "" && env.Result != nil {
			msg = auth.BrokerMessage(env.Result.ResponseMessage)
		}
		if msg == "" {
			msg = "login response has no access token"
		} else {
			msg = "no access token: " + msg
		}
		return fail(msg)
	}
	tok := env.Result.Data.AccessToken
	if !auth.IsB64Token(tok) {
		return fail("login response has a malformed access token")
	}
	return tok, nil
}

// Restore marks the TOTP step of a token obtained by an earlier run as
// spent, so a restarted proxy never reuses that login's code.
func (b *Broker) Restore(t *auth.Token) {
	if t != nil && !t.Obtained.IsZero() {
		b.totp.MarkUsed(t.Obtained)
	}
}

var _ auth.Restorer = (*Broker)(nil)

// maybeJSON reports whether a response of content type ct may carry the
// JSON envelope (Tradingo labels it application/json; a missing type is
// read too). Binary downloads are never read ahead.
func maybeJSON(ct string) bool {
	ct = strings.ToLower(ct)
	return ct == "" || strings.Contains(ct, "json") || strings.HasPrefix(ct, "text/")
}

// mayBeError is a cheap filter run before decoding a response: only a body
// in which some "IsError" key is followed by true can be a rejection. It
// keeps the JSON decoder off the hot path of successful responses.
func mayBeError(body []byte) bool {
	key := []byte(`"IsError"`)
	for {
		i := bytes.Index(body, key)
		if i < 0 {
			return false
		}
		body = body[i+len(key):]
		rest := bytes.TrimLeft(body, " \t\r\n")
		if len(rest) > 0 && rest[0] == ':' {
			if bytes.HasPrefix(bytes.TrimLeft(rest[1:], " \t\r\n"), []byte("true")) {
				return true
			}
		}
	}
}
