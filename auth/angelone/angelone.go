// Package angelone logs in to Angel One SmartAPI (apiconnect.angelone.in)
// with a client code, PIN and TOTP secret, renews the session with its
// refresh token, and writes the credentials into REST calls and SmartStream
// WebSocket handshakes.
//
// What SmartAPI does, and where it is said ([P] primary: Angel One's docs
// at smartapi.angelbroking.com/docs or its official SDK
// github.com/angel-one/smartapi-python at ff60852 (Oct 2024); [S]
// secondary: SmartAPI staff answers on the SmartAPI forum; [I] inference):
//
//   - Login: POST /rest/auth/angelbroking/user/v1/loginByPassword with JSON
//     {"clientcode","password" (the 4-digit PIN),"totp"} and the SDK's
//     headers: Content-Type and Accept application/json, X-UserType USER,
//     X-SourceID WEB, X-ClientLocalIP, X-ClientPublicIP, X-MACAddress,
//     X-PrivateKey (the API key) [P SDK requestHeaders, generateSession].
//     The SDK always sends 127.0.0.1 and 106.193.147.98 as the two IPs
//     (its try/finally overwrites what it detected) [P SDK], so the values
//     are not checked [I]. Success: {"status":true,"message":"SUCCESS",
//     "errorcode":"","data":{"jwtToken","refreshToken","feedToken"}} [P].
//     A wrong TOTP is {"status":false,"message":"Invalid totp",
//     "errorcode":"AB1050","data":null} in an HTTP 200 [S forum]. Logins
//     are limited to 1 per second [S forum, quoting the rate-limit page].
//   - Renewal: POST /rest/auth/angelbroking/jwt/v1/generateTokens with
//     {"refreshToken"} and "Authorization: Bearer <jwt>" answers the same
//     data (a new jwtToken and feedToken; refreshToken) [P SDK
//     generateToken/renewAccessToken]; 1 per second, 1000 per hour [S].
//   - Lifetime: the jwtToken is a JWT whose exp is read; the session must
//     be renewed every day ("login everyday" [S forum]), so the expiry used
//     is the earlier of exp and the next midnight IST [I].
//   - REST calls carry "Authorization: Bearer <jwtToken>", X-PrivateKey and
//     the other SDK headers [P SDK _request]. All answers use the
//     envelope {"status","message","errorcode","data"}; the API gateway
//     answers a bad token with {"success":false,"message":"Invalid Token",
//     "errorCode":"AG8001","data":""} [S forum, several threads], so both
//     spellings are read. AG8002 (token expired) and AG8003 (token missing)
//     are documented alongside AG8001 [S]. The SDK also treats a 403 with
//     error_type TokenException as a dead session [P SDK].
//   - SmartStream, wss://smartapisocket.angelone.in/smart-stream, takes
//     headers Authorization, x-api-key, x-client-code, x-feed-token [P SDK
//     smartWebSocketV2.connect]; the order-update socket
//     wss://tns.angelone.in/smart-order-update takes the same four [P SDK
//     smartWebSocketOrderUpdate]. The SDK's README passes the jwtToken
//     that generateSession returns, which it prefixes with "Bearer " [P];
//     other clients send "Bearer "+jwt as well [S forum]. A refused
//     handshake is HTTP 401 [S forum].
//   - Orders (see [Orders]): POST /rest/secure/angelbroking/order/v1/
//     placeOrder, modifyOrder, cancelOrder, and the GTT rules createRule,
//     modifyRule, cancelRule under .../gtt/v1/, with and without the
//     /gtt-service prefix [P SDK _routes]; an order answer carries
//     data.orderid [P SDK placeOrder]. placeOrder/modifyOrder/cancelOrder
//     run at 20 per second, 500 per minute, 1000 per hour [S forum,
//     rate-limit page].
//
// The package never logs or returns the PIN, the TOTP secret or code, the
// API key or a token.
package angelone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/totp"
)

// SmartAPI's production hosts and endpoints.
const (
	APIHost         = "apiconnect.angelone.in"
	StreamHost      = "smartapisocket.angelone.in"
	OrderStreamHost = "tns.angelone.in"
	BaseURL         = "https://" + APIHost
	LoginPath       = "/rest/auth/angelbroking/user/v1/loginByPassword"
	RenewPath       = "/rest/auth/angelbroking/jwt/v1/generateTokens"
	StreamPath      = "/smart-stream"
)

// DefaultHosts are the hosts an angelone account claims.
func DefaultHosts() []string { return []string{APIHost, StreamHost} }

// The SDK's fixed header values, used when Config leaves them empty.
const (
	DefaultLocalIP  = "127.0.0.1"
	DefaultPublicIP = "106.193.147.98"
	DefaultMAC      = "02:00:00:00:00:00"
)

// Token.Aux and Token.Meta keys.
const (
	AuxFeed        = "feed"        // the feedToken, for SmartStream
	MetaClientCode = "client_code" // the account's client code
)

// tokenCode reports whether an in-band error code means the token was
// refused: AG8001 Invalid Token, AG8002 Token Expired, AG8003 Token missing.
func tokenCode(c string) bool {
	switch strings.ToUpper(c) {
	case "AG8001", "AG8002", "AG8003":
		return true
	}
	return false
}

const (
	maxBody = 1 << 20
)

// Config is one Angel One account.
type Config struct {
	Account    string      // the account name (rules.toml [brokers.NAME])
	APIKey     auth.Secret // the SmartAPI app's API key (sent as X-PrivateKey)
	ClientCode string      // the Angel One client id, e.g. "A123456"; not a secret
	PIN        auth.Secret // the 4-digit trading PIN (the login's "password")
	TOTPSecret auth.Secret // base32 key from smartapi.angelbroking.com/enable-totp
	LocalIP    string      // X-ClientLocalIP; default DefaultLocalIP
	PublicIP   string      // X-ClientPublicIP; default DefaultPublicIP
	MACAddress string      // X-MACAddress; default DefaultMAC
}

// Broker is one Angel One account. It implements auth.Broker,
// auth.Refresher, auth.Restorer and auth.Bypasser and is safe for
// concurrent use.
type Broker struct {
	cfg    Config
	client *auth.HTTPClient
	now    func() time.Time
	log    *slog.Logger
	totp   *totp.Generator
}

// Interface guards.
var (
	_ auth.Broker    = (*Broker)(nil)
	_ auth.Refresher = (*Broker)(nil)
	_ auth.Restorer  = (*Broker)(nil)
	_ auth.Bypasser  = (*Broker)(nil)
)

// New checks cfg and returns a Broker. A nil now means time.Now and a nil
// logger discards. Errors never contain a secret.
func New(cfg Config, client *auth.HTTPClient, now func() time.Time, logger *slog.Logger) (*Broker, error) {
	if err := auth.CheckAccount("angelone", cfg.Account, auth.Need("api_key", cfg.APIKey != ""),
		auth.Need("client_code", cfg.ClientCode != ""), auth.Need("pin", cfg.PIN != ""),
		auth.Need("totp_secret", cfg.TOTPSecret != "")); err != nil {
		return nil, err
	}
	for name, v := range map[string]string{"api_key": cfg.APIKey.Reveal(), "client_code": cfg.ClientCode,
		"local_ip": cfg.LocalIP, "public_ip": cfg.PublicIP, "mac_address": cfg.MACAddress} {
		if !headerSafe(v) {
			return nil, fmt.Errorf("angelone account %q: %s holds characters a header cannot carry", cfg.Account, name)
		}
	}
	now, log, err := auth.Defaults("angelone", cfg.Account, client, now, logger)
	if err != nil {
		return nil, err
	}
	if cfg.LocalIP == "" {
		cfg.LocalIP = DefaultLocalIP
	}
	if cfg.PublicIP == "" {
		cfg.PublicIP = DefaultPublicIP
	}
	if cfg.MACAddress == "" {
		cfg.MACAddress = DefaultMAC
	}
	gen, err := totp.New(cfg.TOTPSecret, now)
	if err != nil {
		return nil, fmt.Errorf("angelone account %q: totp_secret: %w", cfg.Account, err)
	}
	return &Broker{cfg: cfg, client: client, now: now, totp: gen,
		log: log}, nil
}

// headerSafe accepts printable ASCII without spaces (empty is fine).
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return len(s) <= 256
}

// sdkHeaders sets the headers the SDK sends on every call.
func (b *Broker) sdkHeaders(h http.Header) {
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json")
	h.Set("X-UserType", "USER")
	h.Set("X-SourceID", "WEB")
	h.Set("X-ClientLocalIP", b.cfg.LocalIP)
	h.Set("X-ClientPublicIP", b.cfg.PublicIP)
	h.Set("X-MACAddress", b.cfg.MACAddress)
	h.Set("X-PrivateKey", b.cfg.APIKey.Reveal())
}

// Login performs one loginByPassword with a fresh TOTP code, never
// retried (the code is spent once the request leaves). A refusal is a
// *auth.LoginError with SmartAPI's message and code; HTTP 429 or an
// access-rate refusal is a *auth.RateLimitError.
func (b *Broker) Login(ctx context.Context) (*auth.Token, error) {
	code, err := b.totp.Code(ctx)
	if err != nil {
		return nil, fmt.Errorf("angelone login for %q: totp code: %w", b.cfg.Account, err)
	}
	body, err := json.Marshal(map[string]string{"clientcode": b.cfg.ClientCode, "password": b.cfg.PIN.Reveal(), "totp": code})
	if err != nil {
		return nil, fmt.Errorf("angelone login for %q: %w", b.cfg.Account, err)
	}
	t, err := b.post(ctx, "login", LoginPath, body, "", code)
	if err != nil {
		return nil, err
	}
	b.log.InfoContext(ctx, "angelone login ok", "client_code", b.cfg.ClientCode, "expiry", t.Expiry)
	return t, nil
}

// Refresh renews the session with generateTokens. Without a refresh token,
// or when SmartAPI refuses it, the error wraps auth.ErrRefreshImpossible so
// that the Cache falls back to a TOTP login; a transport failure is
// returned as is.
func (b *Broker) Refresh(ctx context.Context, old *auth.Token) (*auth.Token, error) {
	if old == nil || old.Refresh == "" || old.Access == "" {
		return nil, fmt.Errorf("angelone account %q: no refresh token: %w", b.cfg.Account, auth.ErrRefreshImpossible)
	}
	body, err := json.Marshal(map[string]string{"refreshToken": old.Refresh.Reveal()})
	if err != nil {
		return nil, fmt.Errorf("angelone renew for %q: %w", b.cfg.Account, err)
	}
	t, err := b.post(ctx, "renew", RenewPath, body, old.Access.Reveal(), old.Refresh.Reveal())
	if err != nil {
		var le *auth.LoginError
		if errors.As(err, &le) {
			return nil, fmt.Errorf("angelone account %q: renewal refused: %w: %w", b.cfg.Account, auth.ErrRefreshImpossible, err)
		}
		return nil, err
	}
	if t.Refresh == "" {
		t.Refresh = old.Refresh
	}
	if t.Aux[AuxFeed] == "" && old.Aux[AuxFeed] != "" {
		t.Aux[AuxFeed] = old.Aux[AuxFeed]
	}
	b.log.InfoContext(ctx, "angelone session renewed", "expiry", t.Expiry)
	return t, nil
}

// post sends one login or renewal and turns the answer into a token.
func (b *Broker) post(ctx context.Context, op, p string, body []byte, bearer string, scrub ...string) (*auth.Token, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, BaseURL+p, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("angelone %s for %q: %w", op, b.cfg.Account, err)
	}
	b.sdkHeaders(req.Header)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	start := b.now()
	resp, err := b.client.Do(ctx, req, false)
	if err != nil {
		b.log.WarnContext(ctx, "angelone "+op+" request failed", "err", err)
		return nil, fmt.Errorf("angelone %s for %q: %w", op, b.cfg.Account, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("angelone %s for %q: read answer: %w", op, b.cfg.Account, err)
	}
	s, err := ParseSession(resp.StatusCode, raw)
	if err != nil {
		var le *auth.LoginError
		if !errors.As(err, &le) {
			return nil, fmt.Errorf("angelone %s for %q: %w", op, b.cfg.Account, err)
		}
		if errors.Is(err, ErrUnreadable) && resp.StatusCode != http.StatusTooManyRequests {
			b.log.WarnContext(ctx, "angelone "+op+" answer unreadable", "status", resp.StatusCode)
			return nil, fmt.Errorf("angelone %s for %q: %s: %w", op, b.cfg.Account, auth.StatusText(resp.StatusCode), ErrUnreadable)
		}
		le.Account = b.cfg.Account
		le.Message = b.scrub(le.Message, scrub...)
		b.log.WarnContext(ctx, "angelone "+op+" refused", "status", resp.StatusCode, "message", le.Message)
		if resp.StatusCode == http.StatusTooManyRequests || strings.Contains(strings.ToLower(le.Message), "exceeding access rate") {
			return nil, &auth.RateLimitError{Account: b.cfg.Account, Until: b.now().Add(auth.RetryAfterWithin(resp.Header.Get("Retry-After"), b.now(), time.Minute, time.Second, time.Hour)), Message: le.Message}
		}
		return nil, le
	}
	t := &auth.Token{
		Access:   auth.Secret(s.JWT),
		Refresh:  auth.Secret(s.Refresh),
		Obtained: start,
		Expiry:   NextMidnight(start),
		Aux:      map[string]auth.Secret{},
		Meta:     map[string]string{MetaClientCode: b.cfg.ClientCode},
	}
	if s.Feed != "" {
		t.Aux[AuxFeed] = auth.Secret(s.Feed)
	}
	if exp, err := auth.JWTExpiry(s.JWT); err == nil && exp.Before(t.Expiry) {
		t.Expiry = exp
	}
	if !t.Expiry.After(b.now()) {
		return nil, &auth.LoginError{Account: b.cfg.Account, StatusCode: resp.StatusCode,
			Message: "the new token has already expired; check the system clock"}
	}
	return t, nil
}

// ErrUnreadable is wrapped by ParseSession's error for an answer that is
// not SmartAPI's envelope at all (an HTML error page, a cut-off body). It is
// a broker fault, not a verdict on the credentials: Login and Refresh
// report it as a plain error, which the Cache does not hold like a refusal.
var ErrUnreadable = errors.New("unreadable answer")

// Session holds the tokens of a login or renewal answer.
type Session struct {
	JWT, Refresh, Feed string
}

// answer is SmartAPI's envelope in both spellings (service: status,
// errorcode; gateway: success, errorCode).
type answer struct {
	Status      json.RawMessage `json:"status"` // true/false; Kite-style "error" seen too
	Success     json.RawMessage `json:"success"`
	Message     string          `json:"message"`
	ErrorCode   string          `json:"errorcode"`
	ErrorCodeGW string          `json:"errorCode"`
	ErrorType   string          `json:"error_type"`
	Data        json.RawMessage `json:"data"`
}

func (a *answer) ok() bool {
	if a.Status != nil {
		return string(a.Status) == "true"
	}
	return string(a.Success) == "true"
}

func (a *answer) code() string {
	if a.ErrorCode != "" {
		return a.ErrorCode
	}
	return a.ErrorCodeGW
}

// ParseSession reads a loginByPassword or generateTokens answer with HTTP
// status status. Anything but a 2xx envelope with status true and a
// header-safe jwtToken is a *auth.LoginError (Account unset) whose message
// is SmartAPI's message and error code; the body is never quoted otherwise.
// A jwtToken that arrives as "Bearer <jwt>" is accepted without the prefix.
func ParseSession(status int, body []byte) (Session, error) {
	fail := func(msg string) (Session, error) {
		return Session{}, &auth.LoginError{StatusCode: status, Message: msg}
	}
	var a answer
	if err := json.Unmarshal(bytes.TrimSpace(body), &a); err != nil || (a.Status == nil && a.Success == nil && a.Message == "") {
		return Session{}, &auth.LoginError{StatusCode: status, Message: "unreadable answer: " + auth.StatusText(status), Err: ErrUnreadable}
	}
	if status < 200 || status > 299 || !a.ok() {
		msg := auth.BrokerMessage(a.Message)
		if c := auth.BrokerMessage(a.code()); c != "" {
			msg = strings.TrimSpace(msg + " (" + c + ")")
		}
		if msg == "" {
			msg = auth.StatusText(status)
		}
		return fail(msg)
	}
	var d struct {
		JWT     string `json:"jwtToken"`
		Refresh string `json:"refreshToken"`
		Feed    string `json:"feedToken"`
	}
	if err := json.Unmarshal(a.Data, &d); err != nil {
		return fail("the answer has no data")
	}
	if len(d.JWT) > 7 && strings.EqualFold(d.JWT[:7], "bearer ") {
		d.JWT = d.JWT[7:]
	}
	if !auth.IsB64Token(d.JWT) {
		return fail("the answer has no usable jwtToken")
	}
	if d.Refresh != "" && !auth.IsB64Token(d.Refresh) {
		d.Refresh = ""
	}
	if d.Feed != "" && !auth.IsB64Token(d.Feed) {
		d.Feed = ""
	}
	return Session(d), nil
}

// Inject writes the account's credentials into r. On the SmartStream and
// order-update socket hosts it sets Authorization (Bearer), x-api-key,
// x-client-code and x-feed-token, replacing the client's. Everywhere else
// it replaces Authorization with "Bearer <jwtToken>" and X-PrivateKey with
// the API key, and adds the SDK's other headers (X-UserType,
// X-SourceID, X-ClientLocalIP, X-ClientPublicIP, X-MACAddress, Accept,
// and Content-Type on a request with a body) when the client sent none.
func (b *Broker) Inject(r *http.Request, t *auth.Token) error {
	// The proxy has already removed the client's own copies of
	// CredentialHeaders and Authorization, in any spelling.
	if t == nil || t.Access == "" {
		return fmt.Errorf("angelone account %q: no token to inject", b.cfg.Account)
	}
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	if h := auth.RequestHost(r); h == StreamHost || h == OrderStreamHost {
		feed := t.Aux[AuxFeed]
		if feed == "" {
			return fmt.Errorf("angelone account %q: the session has no feed token for %s", b.cfg.Account, h)
		}
		r.Header.Set("Authorization", "Bearer "+t.Access.Reveal())
		r.Header.Set("x-api-key", b.cfg.APIKey.Reveal())
		r.Header.Set("x-client-code", b.cfg.ClientCode)
		r.Header.Set("x-feed-token", feed.Reveal())
		return nil
	}
	r.Header.Set("Authorization", "Bearer "+t.Access.Reveal())
	r.Header.Set("X-PrivateKey", b.cfg.APIKey.Reveal())
	for _, kv := range [...][2]string{
		{"X-UserType", "USER"}, {"X-SourceID", "WEB"}, {"X-ClientLocalIP", b.cfg.LocalIP},
		{"X-ClientPublicIP", b.cfg.PublicIP}, {"X-MACAddress", b.cfg.MACAddress}, {"Accept", "application/json"},
	} {
		if r.Header.Get(kv[0]) == "" {
			r.Header.Set(kv[0], kv[1])
		}
	}
	if r.Header.Get("Content-Type") == "" && r.Body != nil && r.Body != http.NoBody {
		r.Header.Set("Content-Type", "application/json")
	}
	return nil
}

// CredentialHeaders names the headers besides Authorization that carry
// this broker's credentials: the proxy strips a client's own copies of them
// before Inject.
func (b *Broker) CredentialHeaders() []string {
	return []string{"X-PrivateKey", "x-api-key", "x-client-code", "x-feed-token"}
}

// Rejected reports whether SmartAPI refused the token: HTTP 401; or a
// JSON answer, whatever its status, whose errorcode/errorCode is AG8001
// (Invalid Token), AG8002 (Token Expired) or AG8003 (Token missing); or a
// 403 with error_type TokenException.
func (b *Broker) Rejected(resp *http.Response, peek func() []byte) bool {
	if resp.StatusCode == http.StatusUnauthorized {
		return true
	}
	if peek == nil || resp.StatusCode == http.StatusSwitchingProtocols {
		return false
	}
	if ct := strings.ToLower(resp.Header.Get("Content-Type")); ct != "" && !strings.Contains(ct, "json") && !strings.HasPrefix(ct, "text/") {
		return false
	}
	return IsTokenRefusal(resp.StatusCode, peek())
}

// IsTokenRefusal reports whether an answer with status and body says the
// token was refused (see Rejected; status 401 is not looked at here).
func IsTokenRefusal(status int, body []byte) bool {
	body = bytes.TrimSpace(body)
	// Successful answers carry "errorcode":"" too: decode only a body that
	// names a token code or TokenException.
	if len(body) == 0 || body[0] != '{' || !(bytes.Contains(body, []byte("AG800")) ||
		bytes.Contains(body, []byte("ag800")) || bytes.Contains(body, []byte("TokenException"))) {
		return false
	}
	var a answer
	if json.Unmarshal(body, &a) != nil {
		return false
	}
	if tokenCode(a.code()) {
		return true
	}
	return status == http.StatusForbidden && a.ErrorType == "TokenException"
}

// Bypass reports whether r is for SmartAPI's own login and token endpoints
// (every path under /rest/auth/): they are forwarded untouched and never
// get the account's token.
func (b *Broker) Bypass(r *http.Request) bool {
	if r.URL == nil {
		return false
	}
	p := path.Clean("/" + r.URL.Path)
	const prefix = "/rest/auth/"
	return len(p) > len(prefix) && strings.EqualFold(p[:len(prefix)], prefix)
}

// Restore marks the TOTP step of a token obtained by an earlier run as
// spent.
func (b *Broker) Restore(t *auth.Token) {
	if t != nil && !t.Obtained.IsZero() {
		b.totp.MarkUsed(t.Obtained)
	}
}

// NextMidnight is the first midnight IST after t.
func NextMidnight(t time.Time) time.Time { return auth.NextIST(t, 0, 0) }

// scrub is auth.BrokerMessage with the account's secrets and extra.
func (b *Broker) scrub(msg string, extra ...string) string {
	return auth.BrokerMessage(msg, append([]string{b.cfg.PIN.Reveal(), b.cfg.APIKey.Reveal(), b.cfg.TOTPSecret.Reveal()}, extra...)...)
}
