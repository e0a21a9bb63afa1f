package tradovate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/authproxy/authproxy/auth"
)

// OAuthConfig is one Tradovate OAuth account (rules.toml keys in brackets).
// The redirect URI comes with each AuthURL/Exchange call.
type OAuthConfig struct {
	Account      string      // the account name; used in logs and errors
	ClientID     string      // [client_id]
	ClientSecret auth.Secret // [client_secret]
}

// OAuthBroker logs in to one Tradovate account through the OAuth
// authorization-code flow: a person consents once in a browser, then the
// rotating refresh token keeps the account going. It implements
// auth.Broker, auth.Interactive, auth.Refresher and auth.Bypasser and is
// safe for concurrent use; refreshes must not run concurrently (the refresh
// token rotates), which auth.Cache guarantees.
type OAuthBroker struct {
	cfg    OAuthConfig
	hc     *http.Client // x/oauth2's client: every call through auth.HTTPClient, never retried
	now    func() time.Time
	log    *slog.Logger
	secret string
}

// Interface guards.
var (
	_ auth.Broker      = (*OAuthBroker)(nil)
	_ auth.Interactive = (*OAuthBroker)(nil)
	_ auth.Refresher   = (*OAuthBroker)(nil)
	_ auth.Bypasser    = (*OAuthBroker)(nil)
)

// NewOAuth checks cfg and returns an OAuthBroker. A nil now means time.Now
// and a nil logger discards.
func NewOAuth(cfg OAuthConfig, client *auth.HTTPClient, now func() time.Time, logger *slog.Logger) (*OAuthBroker, error) {
	if err := auth.CheckAccount("tradovate", cfg.Account,
		auth.Need("client_id", cfg.ClientID != ""), auth.Need("client_secret", cfg.ClientSecret != "")); err != nil {
		return nil, err
	}
	now, log, err := auth.Defaults("tradovate", cfg.Account, client, now, logger)
	if err != nil {
		return nil, err
	}
	return &OAuthBroker{
		cfg: cfg,
		hc: &http.Client{
			Transport: auth.OnceTransport{Client: client},
			// The token endpoint does not redirect; never follow one with a code or secret.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		now:    now,
		log:    log,
		secret: cfg.ClientSecret.Reveal(),
	}, nil
}

func (b *OAuthBroker) config(redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     b.cfg.ClientID,
		ClientSecret: b.secret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   ConsentURL,
			TokenURL:  OAuthTokenURL,
			AuthStyle: oauth2.AuthStyleInParams, // form fields, as the official example sends them
		},
		RedirectURL: redirectURI,
	}
}

// NeedsBrowser reports true: the first login is a person's consent.
func (b *OAuthBroker) NeedsBrowser() bool { return true }

// AuthURL is Tradovate's consent page for this app:
// https://trader.tradovate.com/oauth?response_type=code&client_id=..&redirect_uri=..&state=..
func (b *OAuthBroker) AuthURL(state, redirectURI string) string {
	q := url.Values{}
	q.Set("response_type", "code")
	q.Set("client_id", b.cfg.ClientID)
	q.Set("redirect_uri", redirectURI)
	if state != "" {
		q.Set("state", state)
	}
	return ConsentURL + "?" + q.Encode()
}

// Login cannot log in without a person: it returns an error wrapping
// auth.ErrLoginRequired.
func (b *OAuthBroker) Login(context.Context) (*auth.Token, error) {
	return nil, fmt.Errorf("tradovate account %q: consent in a browser first: %w", b.cfg.Account, auth.ErrLoginRequired)
}

// Exchange trades the callback's code for tokens (grant_type
// authorization_code, form-encoded, client id and secret in the body). A
// refusal is a *auth.LoginError with Tradovate's error and description; an
// HTTP 200 carrying "error" or no access_token is a refusal too.
func (b *OAuthBroker) Exchange(ctx context.Context, redirectURI string, callback url.Values) (*auth.Token, error) {
	code := callback.Get("code")
	if code == "" {
		return nil, &auth.LoginError{Account: b.cfg.Account, Message: "the consent redirect carried no authorization code"}
	}
	start := b.now()
	tk, err := b.config(redirectURI).Exchange(b.clientContext(ctx), code)
	if err != nil {
		return nil, b.failure(ctx, "code exchange", err, false, code)
	}
	t, err := b.token(tk, start)
	if err != nil {
		return nil, &auth.LoginError{Account: b.cfg.Account, StatusCode: http.StatusOK, Message: err.Error()}
	}
	if t.Refresh == "" {
		b.log.WarnContext(ctx, "tradovate gave no refresh token: the next login needs the browser again")
	}
	b.log.InfoContext(ctx, "tradovate oauth login ok", "expiry", t.Expiry, "refresh_expires", t.Meta["refresh_expires"])
	return t, nil
}

// Refresh redeems old's refresh token (grant_type refresh_token). The
// answer's refresh token replaces the old one, which Tradovate will not
// accept again; the caller must save the result before using it. A refused
// refresh (an "error" such as invalid_token, HTTP 200 or 4xx) wraps
// auth.ErrRefreshImpossible; network trouble and 5xx are plain errors.
func (b *OAuthBroker) Refresh(ctx context.Context, old *auth.Token) (*auth.Token, error) {
	if old == nil || old.Refresh == "" {
		return nil, fmt.Errorf("tradovate token refresh for %q: no refresh token: %w", b.cfg.Account, auth.ErrRefreshImpossible)
	}
	if exp, err := time.Parse(time.RFC3339, old.Meta["refresh_expires"]); err == nil && !b.now().Before(exp) {
		return nil, fmt.Errorf("tradovate token refresh for %q: the refresh token expired at %s: %w",
			b.cfg.Account, exp.UTC().Format(time.RFC3339), auth.ErrRefreshImpossible)
	}
	start := b.now()
	src := b.config("").TokenSource(b.clientContext(ctx), &oauth2.Token{RefreshToken: old.Refresh.Reveal()})
	tk, err := src.Token()
	if err != nil {
		return nil, b.failure(ctx, "token refresh", err, true, old.Refresh.Reveal())
	}
	t, err := b.token(tk, start)
	if err != nil {
		return nil, fmt.Errorf("tradovate token refresh for %q: %s", b.cfg.Account, err.Error())
	}
	b.log.InfoContext(ctx, "tradovate oauth token refreshed", "expiry", t.Expiry,
		"refresh_rotated", t.Refresh != old.Refresh)
	return t, nil
}

// clientContext carries the HTTP client x/oauth2 must use.
func (b *OAuthBroker) clientContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, b.hc)
}

// token converts x/oauth2's token; the expiry comes from expires_in read
// against b.now.
func (b *OAuthBroker) token(tk *oauth2.Token, start time.Time) (*auth.Token, error) {
	if tk == nil || tk.AccessToken == "" {
		return nil, errors.New("the answer has no access_token")
	}
	if !validToken(tk.AccessToken) {
		return nil, errors.New("the answer has a malformed access_token")
	}
	if len(tk.RefreshToken) > maxTokenLen {
		return nil, errors.New("the answer has an oversized refresh_token")
	}
	t := &auth.Token{
		Access:   auth.Secret(tk.AccessToken),
		Refresh:  auth.Secret(tk.RefreshToken),
		Obtained: start,
		Meta:     map[string]string{"login": "oauth"},
	}
	switch {
	case tk.ExpiresIn > 0:
		t.Expiry = start.Add(time.Duration(min(tk.ExpiresIn, 366*24*3600)) * time.Second)
	case !tk.Expiry.IsZero():
		t.Expiry = tk.Expiry
	default:
		t.Expiry = start.Add(DefaultLifetime)
	}
	if !t.Expiry.After(b.now()) {
		return nil, fmt.Errorf("the access token expired on arrival (%s); check the system clock", t.Expiry.UTC().Format(time.RFC3339))
	}
	if v, ok := tk.Extra("refresh_token_expires_in").(float64); ok && v > 0 && v < 10*365*24*3600 {
		t.Meta["refresh_expires"] = start.Add(time.Duration(v) * time.Second).UTC().Format(time.RFC3339)
	}
	return t, nil
}

// failure classifies an x/oauth2 error. Its text is rebuilt from the error
// code and description only: a RetrieveError's own text quotes the body.
func (b *OAuthBroker) failure(ctx context.Context, op string, err error, refresh bool, spent string) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		var ue *url.Error
		if errors.As(err, &ue) || refresh {
			// Transport trouble, or an unusable refresh answer: try again later.
			return fmt.Errorf("tradovate %s for %q: %w", op, b.cfg.Account, err)
		}
		// An answer x/oauth2 could not use (no access_token, not JSON); its
		// texts quote no body.
		return &auth.LoginError{Account: b.cfg.Account, StatusCode: http.StatusOK,
			Message: auth.BrokerMessage(strings.TrimPrefix(err.Error(), "oauth2: "), b.secret, spent)}
	}
	status := 0
	var hdr http.Header
	if re.Response != nil {
		status, hdr = re.Response.StatusCode, re.Response.Header
	}
	msg := re.ErrorCode
	if re.ErrorDescription != "" {
		if msg != "" {
			msg += ": "
		}
		msg += re.ErrorDescription
	}
	if msg == "" {
		msg = auth.StatusText(status)
	}
	msg = auth.BrokerMessage(msg, b.secret, spent)
	b.log.WarnContext(ctx, "tradovate "+op+" refused", "status", status, "message", msg)
	switch {
	case status == http.StatusTooManyRequests:
		d := auth.RetryAfterWithin(hdr.Get("Retry-After"), b.now(), Lockout, time.Second, 24*time.Hour)
		return &auth.RateLimitError{Account: b.cfg.Account, Until: b.now().Add(d), Message: "HTTP 429: " + msg}
	case status >= 500 && re.ErrorCode == "":
		return fmt.Errorf("tradovate %s for %q: %s", op, b.cfg.Account, msg)
	case refresh:
		return fmt.Errorf("tradovate %s for %q refused (%s): %w", op, b.cfg.Account, msg, auth.ErrRefreshImpossible)
	}
	return &auth.LoginError{Account: b.cfg.Account, StatusCode: status, Message: msg}
}

// Inject sets "Authorization: Bearer <access token>" (OAuth issues no
// market-data token, so the md hosts get the access token too). The proxy
// has already removed any Authorization the client sent.
func (b *OAuthBroker) Inject(r *http.Request, t *auth.Token) error {
	return inject(b.cfg.Account, r, t)
}

// Rejected reports whether Tradovate refused the token (HTTP 401).
func (b *OAuthBroker) Rejected(resp *http.Response, _ func() []byte) bool { return rejected(resp) }

// Bypass reports whether r is a client's own call to a token endpoint.
func (b *OAuthBroker) Bypass(r *http.Request) bool { return bypass(r) }
