// Package auth holds the broker-neutral half of authproxy: the Token and
// Secret types, the Broker contract every broker package implements, the
// per-account token Cache (refresh-ahead, single-flight, persistence) and the
// token Store.
//
// auth never imports proxy, config or cmd: brokers describe how to log in and
// how to write a token into a request; the proxy decides when.
package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Secret is a string that must never be printed. Every formatting path
// (fmt verbs, slog, JSON) renders it as "REDACTED"; Reveal returns the value.
type Secret string

// Redacted is what a Secret prints as.
const Redacted = "REDACTED"

// Reveal returns the secret's value. Call it only where the value is sent to
// its broker or written to the token store.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (s Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer.
func (s Secret) GoString() string { return `auth.Secret("` + Redacted + `")` }

// Format implements fmt.Formatter so that no verb (%d, %x, %q ...) leaks it.
func (s Secret) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON implements json.Marshaler; stores use their own record types.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// Token is one broker login's result. A Token is never modified after it is
// handed out by a Cache; brokers build a new one on every login or refresh.
type Token struct {
	Access   Secret    // the credential written into requests
	Refresh  Secret    // a refresh token, when the broker issues one
	Expiry   time.Time // zero: unknown (treated as never expiring)
	Obtained time.Time // when the broker issued it

	// Aux holds further secret values a broker returned (for example
	// Tradovate's "md" market-data token).
	Aux map[string]Secret
	// Meta holds non-secret facts learned at login (client codes, user ids,
	// feed-host hints) that Inject may need.
	Meta map[string]string
}

// Valid reports whether t can be sent at time now.
func (t *Token) Valid(now time.Time) bool {
	return t != nil && t.Access != "" && (t.Expiry.IsZero() || now.Before(t.Expiry))
}

// Lifetime is Expiry-Obtained, or 0 when either is unknown.
func (t *Token) Lifetime() time.Duration {
	if t == nil || t.Expiry.IsZero() || t.Obtained.IsZero() {
		return 0
	}
	return t.Expiry.Sub(t.Obtained)
}

// Broker logs in to one broker account and knows how that broker wants its
// credentials written into a request. Implementations must be safe for
// concurrent use; the Cache guarantees only one Login or Refresh runs at a
// time per account.
type Broker interface {
	// Login obtains a fresh token without a person. A broker whose account
	// can only log in through a browser returns an error wrapping
	// ErrLoginRequired.
	Login(ctx context.Context) (*Token, error)
	// Inject writes t into r: headers, and for brokers that need it, the
	// body (r.Body, r.ContentLength and r.GetBody are replaced) or the URL.
	// The proxy has already buffered r.Body. A body that cannot be rewritten
	// yields an error wrapping ErrBadRequest.
	Inject(r *http.Request, t *Token) error
	// Rejected reports whether resp says the token was refused. peek returns
	// up to a bounded prefix of the body (and leaves the body intact for the
	// client); call it only when the status alone cannot decide.
	Rejected(resp *http.Response, peek func() []byte) bool
}

// Refresher is implemented by a Broker that can renew a token without a full
// login. A Refresh error wrapping ErrRefreshImpossible makes the Cache fall
// back to Login; any other error is reported as is.
type Refresher interface {
	Refresh(ctx context.Context, old *Token) (*Token, error)
}

// Interactive is implemented by a Broker whose login needs a person in a
// browser (OAuth2 authorization code and vendor login pages).
type Interactive interface {
	// AuthURL is where the person's browser goes; state must come back.
	AuthURL(state, redirectURI string) string
	// Exchange turns the callback's query parameters into a token.
	Exchange(ctx context.Context, redirectURI string, callback url.Values) (*Token, error)
	// NeedsBrowser reports whether this account logs in only interactively
	// (as opposed to a broker that supports both, configured for credentials).
	NeedsBrowser() bool
}

// Bypasser is implemented by a Broker whose own login/consent endpoints a
// client may call directly: such requests are forwarded untouched, with no
// token.
type Bypasser interface {
	Bypass(r *http.Request) bool
}

// Restorer is implemented by a Broker that must know about a token an
// earlier run obtained: a TOTP broker marks that login's code as spent so a
// restarted proxy never sends it twice. The Cache calls Restore for every
// token it loads from the Store.
type Restorer interface {
	Restore(t *Token)
}

// Store persists tokens between runs and processes. Load returns an error
// wrapping ErrNotFound when nothing is stored under key.
type Store interface {
	Load(ctx context.Context, key string) (*Token, error)
	Save(ctx context.Context, key string, t *Token) error
	Delete(ctx context.Context, key string) error
}

// Sentinel errors. Test with errors.Is.
var (
	ErrNotFound          = errors.New("no stored token")
	ErrLoginRequired     = errors.New("interactive login required")
	ErrRefreshImpossible = errors.New("refresh impossible")
	ErrBadRequest        = errors.New("bad request")
	ErrTooLarge          = errors.New("request body too large")
	// ErrBrokerFault marks a login answer that could not be read (not
	// JSON, cut off, missing its fields): a broker fault, not a verdict on
	// the credentials, so the Cache does not hold it like a refusal.
	ErrBrokerFault = errors.New("unreadable broker answer")
)

// LoginError is a login the broker refused: bad credentials, a locked
// account, an error envelope. Message is the broker's own text and is shown
// to the client; it must not contain secrets.
type LoginError struct {
	Account    string
	StatusCode int    // HTTP status of the broker's answer, 0 if not HTTP
	Message    string // the broker's own words
	Err        error  // optional cause
}

func (e *LoginError) Error() string {
	s := fmt.Sprintf("login for %q refused", e.Account)
	if e.StatusCode != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.StatusCode)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *LoginError) Unwrap() error { return e.Err }

// RateLimitError says the broker locked the account out (Tradovate captcha
// or 429, 5paisa 429 ...). No login is attempted before Until.
type RateLimitError struct {
	Account string
	Until   time.Time
	Message string
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("account %q rate limited until %s: %s", e.Account, e.Until.UTC().Format(time.RFC3339), e.Message)
}

// NotConfiguredError says an account's ${VAR}s are unset.
type NotConfiguredError struct {
	Account string
	Missing []string
}

func (e *NotConfiguredError) Error() string {
	return fmt.Sprintf("account %q is not configured: unset variables %v", e.Account, e.Missing)
}

// StreamRewriter is implemented by a Broker that authenticates a WebSocket
// in-band (Tradovate's "authorize" frame). After the broker accepts an
// upgrade, every byte the client sends to host passes through the returned
// writer, which forwards it to toBroker, rewritten where needed. Bytes the
// broker sends are relayed untouched.
type StreamRewriter interface {
	RewriteStream(host string, t *Token, toBroker io.Writer) io.Writer
}

// HostRouter is implemented by a Broker that sends some requests to another
// of its hosts than the one the client named, depending on the token (5paisa
// opens feed sockets on the host its token's RedirectServer claim names).
// UpstreamHost returns the host to use for a request to host, or host
// itself.
type HostRouter interface {
	UpstreamHost(host string, t *Token) string
}

// SessionChecker is implemented by a Broker whose closed sessions do not
// always answer 401 (Tradovate answers 408, 429 or 5xx once the user logged
// in elsewhere). SuspectDead says whether resp may mean that; SessionAlive
// then asks the broker with one cheap authenticated call: dead is true only
// when the broker's answer says the token's session is gone, so that a real
// outage never costs a login.
type SessionChecker interface {
	SuspectDead(resp *http.Response) bool
	SessionAlive(ctx context.Context, t *Token) (alive bool, err error)
}

// RedirectFollower is implemented by a Broker whose API moves accounts
// between its own hosts with 307/308 redirects (Tradovate's apiHosts). The
// proxy follows a redirect to a host FollowRedirect accepts itself, with the
// same token, instead of handing the client a Location it would reach
// without credentials (or log in again for).
type RedirectFollower interface {
	FollowRedirect(to *url.URL) bool
}
