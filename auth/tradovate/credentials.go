package tradovate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/authproxy/authproxy/auth"
)

const (
	// maxPenaltyRounds bounds how many penalty tickets one Login waits out.
	maxPenaltyRounds = 3
	// maxPenaltySleep is the longest p-time a Login sleeps through; a longer
	// one is reported as a lockout and its ticket kept for the next Login.
	maxPenaltySleep = 2 * time.Minute
	// loginReserve is the time a login request needs after a penalty wait.
	loginReserve = 5 * time.Second
)

// Config is one Tradovate credential account (rules.toml keys in brackets).
type Config struct {
	Account     string      // the account name; used in logs and errors
	Environment string      // "demo" or "live" [environment]
	Username    string      // [username]
	Password    auth.Secret // [password]
	AppID       string      // [app_id]
	AppVersion  string      // [app_version]
	CID         string      // [cid]; sent as a JSON number when all digits
	Sec         auth.Secret // [sec], the API key's secret
	DeviceID    string      // [device_id]; optional, stable per machine
}

// Broker logs in to one Tradovate account with its credentials and renews
// the token without a new session. It implements auth.Broker,
// auth.Refresher and auth.Bypasser and is safe for concurrent use.
type Broker struct {
	cfg      Config
	loginURL string
	renewURL string
	client   *auth.HTTPClient
	now      func() time.Time
	log      *slog.Logger

	mu          sync.Mutex
	ticket      string    // a penalty ticket to send with the next login
	ticketReady time.Time // when that ticket may be used
}

// Interface guards.
var (
	_ auth.Broker    = (*Broker)(nil)
	_ auth.Refresher = (*Broker)(nil)
	_ auth.Bypasser  = (*Broker)(nil)
)

// New checks cfg and returns a Broker that logs in at
// https://<environment>.tradovateapi.com. A nil now means time.Now and a
// nil logger discards. Errors never contain a secret.
func New(cfg Config, client *auth.HTTPClient, now func() time.Time, logger *slog.Logger) (*Broker, error) {
	if err := auth.CheckAccount("tradovate", cfg.Account); err != nil {
		return nil, err
	}
	if cfg.Environment != "demo" && cfg.Environment != "live" {
		return nil, fmt.Errorf("tradovate account %q: environment must be \"demo\" or \"live\", not %q", cfg.Account, cfg.Environment)
	}
	if err := auth.CheckAccount("tradovate", cfg.Account,
		auth.Need("username", cfg.Username != ""), auth.Need("password", cfg.Password != ""), auth.Need("app_id", cfg.AppID != ""),
		auth.Need("app_version", cfg.AppVersion != ""), auth.Need("cid", cfg.CID != ""), auth.Need("sec", cfg.Sec != ""),
	); err != nil {
		return nil, err
	}
	now, log, err := auth.Defaults("tradovate", cfg.Account, client, now, logger)
	if err != nil {
		return nil, err
	}
	rest := "https://" + cfg.Environment + ".tradovateapi.com"
	return &Broker{
		cfg:      cfg,
		loginURL: rest + LoginPath,
		renewURL: rest + RenewPath,
		client:   client,
		now:      now,
		log:      log,
	}, nil
}

// loginRequest is the accesstokenrequest body.
type loginRequest struct {
	Name       string          `json:"name"`
	Password   string          `json:"password"`
	AppID      string          `json:"appId"`
	AppVersion string          `json:"appVersion"`
	CID        json.RawMessage `json:"cid"`
	Sec        string          `json:"sec"`
	DeviceID   string          `json:"deviceId,omitempty"`
	PTicket    string          `json:"p-ticket,omitempty"`
}

// tokenResponse is Tradovate's AccessTokenResponse plus the penalty fields.
type tokenResponse struct {
	ErrorText      string          `json:"errorText"`
	AccessToken    string          `json:"accessToken"`
	MDAccessToken  string          `json:"mdAccessToken"`
	ExpirationTime string          `json:"expirationTime"`
	UserID         json.RawMessage `json:"userId"`
	UserStatus     string          `json:"userStatus"`
	PTicket        string          `json:"p-ticket"`
	PTime          json.RawMessage `json:"p-time"`
	PCaptcha       bool            `json:"p-captcha"`
	PMessage       string          `json:"p-message"`
}

// penalty is a p-ticket answer: the request was not processed.
type penalty struct {
	ticket  string
	wait    time.Duration
	captcha bool
	message string
}

// cidJSON is cid as the official examples send it: a number when it is all
// digits, a string otherwise.
func cidJSON(cid string) json.RawMessage {
	digits := cid != "" && len(cid) <= 18
	for i := 0; i < len(cid) && digits; i++ {
		digits = cid[i] >= '0' && cid[i] <= '9'
	}
	if digits {
		if n, err := strconv.ParseUint(cid, 10, 64); err == nil {
			return json.RawMessage(strconv.FormatUint(n, 10))
		}
	}
	b, _ := json.Marshal(cid) // a string always marshals
	return b
}

// Login performs a credential login, which opens a Tradovate session. It is
// never retried on its own. A penalty ticket is waited out (bounded by ctx)
// and the same body resent with the ticket; a captcha, HTTP 423 or 429 is a
// *auth.RateLimitError; bad credentials (errorText or HTTP 401) are a
// *auth.LoginError carrying Tradovate's text.
func (b *Broker) Login(ctx context.Context) (*auth.Token, error) {
	ticket, ready := b.takeTicket()
	for round := 0; ; round++ {
		if ticket != "" {
			if err := b.waitPenalty(ctx, ticket, ready); err != nil {
				return nil, err
			}
		}
		tok, pen, err := b.attempt(ctx, ticket)
		if err != nil || pen == nil {
			return tok, err
		}
		now := b.now()
		if pen.captcha {
			b.log.WarnContext(ctx, "tradovate login needs a captcha; no logins for an hour", "message", pen.message)
			msg := "Tradovate asks for a captcha (too many logins); a program cannot solve it, wait about an hour"
			if pen.message != "" {
				msg += ": " + pen.message
			}
			return nil, &auth.RateLimitError{Account: b.cfg.Account, Until: now.Add(Lockout), Message: msg}
		}
		ticket, ready = pen.ticket, now.Add(pen.wait)
		b.log.InfoContext(ctx, "tradovate login answered with a penalty ticket", "wait", pen.wait, "round", round+1)
		if round+1 >= maxPenaltyRounds {
			b.keepTicket(ticket, ready)
			return nil, &auth.RateLimitError{Account: b.cfg.Account, Until: ready,
				Message: fmt.Sprintf("Tradovate answered %d logins in a row with a penalty ticket", round+1)}
		}
	}
}

// waitPenalty sleeps until ready when that fits in ctx; otherwise it keeps
// the ticket for the next Login and reports a lockout until ready.
func (b *Broker) waitPenalty(ctx context.Context, ticket string, ready time.Time) error {
	wait := ready.Sub(b.now())
	fits := wait <= maxPenaltySleep
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait+loginReserve {
		fits = false
	}
	if !fits {
		b.keepTicket(ticket, ready)
		return &auth.RateLimitError{Account: b.cfg.Account, Until: ready,
			Message: fmt.Sprintf("Tradovate asked to wait %s before the next login (penalty ticket)", wait.Round(time.Second))}
	}
	if err := sleep(ctx, wait); err != nil {
		b.keepTicket(ticket, ready)
		return fmt.Errorf("tradovate login for %q: waiting out a penalty: %w", b.cfg.Account, err)
	}
	return nil
}

func (b *Broker) takeTicket() (string, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, r := b.ticket, b.ticketReady
	b.ticket, b.ticketReady = "", time.Time{}
	if t != "" && b.now().Sub(r) > Lockout {
		return "", time.Time{} // long stale: start afresh
	}
	return t, r
}

func (b *Broker) keepTicket(t string, ready time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ticket, b.ticketReady = t, ready
}

// attempt sends one accesstokenrequest. It returns a token, a penalty, or
// an error.
func (b *Broker) attempt(ctx context.Context, ticket string) (*auth.Token, *penalty, error) {
	body, err := json.Marshal(loginRequest{
		Name:       b.cfg.Username,
		Password:   b.cfg.Password.Reveal(),
		AppID:      b.cfg.AppID,
		AppVersion: b.cfg.AppVersion,
		CID:        cidJSON(b.cfg.CID),
		Sec:        b.cfg.Sec.Reveal(),
		DeviceID:   b.cfg.DeviceID,
		PTicket:    ticket,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("tradovate login for %q: encode request: %w", b.cfg.Account, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.loginURL, bytes.NewReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("tradovate login for %q: %w", b.cfg.Account, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	start := b.now()
	resp, err := b.client.Do(ctx, req, false)
	if err != nil {
		b.log.WarnContext(ctx, "tradovate login request failed", "error", err)
		return nil, nil, fmt.Errorf("tradovate login for %q: %w", b.cfg.Account, err)
	}
	defer resp.Body.Close()
	raw, err := readBody(resp)
	if err != nil {
		return nil, nil, fmt.Errorf("tradovate login for %q: %w", b.cfg.Account, err)
	}
	var ans tokenResponse
	jsonErr := json.Unmarshal(raw, &ans)
	if jsonErr != nil {
		ans = tokenResponse{}
	}
	if err := b.lockout(resp, ans); err != nil {
		b.log.WarnContext(ctx, "tradovate login locked out", "status", resp.StatusCode, "until", err.Until)
		return nil, nil, err
	}
	msg := b.clean(ans.ErrorText)
	switch {
	case resp.StatusCode >= 500:
		return nil, nil, fmt.Errorf("tradovate login for %q: %s from %s", b.cfg.Account, auth.StatusText(resp.StatusCode), req.URL.Host)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		if msg == "" {
			msg = auth.StatusText(resp.StatusCode)
		}
		b.log.WarnContext(ctx, "tradovate login refused", "status", resp.StatusCode, "message", msg)
		return nil, nil, &auth.LoginError{Account: b.cfg.Account, StatusCode: resp.StatusCode, Message: msg}
	case jsonErr != nil:
		return nil, nil, &auth.LoginError{Account: b.cfg.Account, StatusCode: resp.StatusCode, Message: "unreadable login response", Err: auth.ErrBrokerFault}
	case ans.PTicket != "" || ans.PCaptcha:
		return nil, b.penalty(ans), nil
	case msg != "":
		b.log.WarnContext(ctx, "tradovate login refused", "status", resp.StatusCode, "message", msg)
		return nil, nil, &auth.LoginError{Account: b.cfg.Account, StatusCode: resp.StatusCode, Message: msg}
	}
	t, err := b.token(ans, start, nil)
	if err != nil {
		return nil, nil, err
	}
	b.log.InfoContext(ctx, "tradovate login ok", "user_id", t.Meta[MetaUserID], "expiry", t.Expiry,
		"lifetime", t.Lifetime(), "md_token", t.Aux[AuxMD] != "")
	return t, nil, nil
}

// lockout turns HTTP 423 and 429 into a *auth.RateLimitError (nil
// otherwise). A 429's Retry-After is honoured; else Tradovate's documented
// hour applies.
func (b *Broker) lockout(resp *http.Response, ans tokenResponse) *auth.RateLimitError {
	now := b.now()
	switch resp.StatusCode {
	case http.StatusLocked:
		msg := "HTTP 423: Tradovate locked logins (captcha stage, usually after failed logins); wait about an hour"
		if t := b.clean(ans.ErrorText); t != "" {
			msg += ": " + t
		}
		return &auth.RateLimitError{Account: b.cfg.Account, Until: now.Add(Lockout), Message: msg}
	case http.StatusTooManyRequests:
		d := auth.RetryAfterWithin(resp.Header.Get("Retry-After"), now, Lockout, time.Second, 24*time.Hour)
		return &auth.RateLimitError{Account: b.cfg.Account, Until: now.Add(d),
			Message: "HTTP 429: Tradovate's request limit was exceeded"}
	}
	return nil
}

// penalty reads a p-ticket answer.
func (b *Broker) penalty(ans tokenResponse) *penalty {
	p := &penalty{ticket: ans.PTicket, captcha: ans.PCaptcha || ans.PTicket == "", message: b.clean(ans.PMessage)}
	s := strings.Trim(string(bytes.TrimSpace(ans.PTime)), `"`)
	if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 && !math.IsInf(f, 0) {
		p.wait = time.Duration(math.Min(f, float64(24*3600)) * float64(time.Second))
	}
	return p
}

// token builds an auth.Token from a login or renewal answer. old, for a
// renewal, supplies the md token and user id the answer leaves out.
func (b *Broker) token(ans tokenResponse, start time.Time, old *auth.Token) (*auth.Token, error) {
	fail := func(msg string) (*auth.Token, error) {
		return nil, &auth.LoginError{Account: b.cfg.Account, StatusCode: http.StatusOK, Message: msg}
	}
	if ans.AccessToken == "" {
		return fail("answer has no access token")
	}
	if !validToken(ans.AccessToken) {
		return fail("answer has a malformed access token")
	}
	t := &auth.Token{
		Access:   auth.Secret(ans.AccessToken),
		Obtained: start,
		Aux:      map[string]auth.Secret{},
		Meta:     map[string]string{"environment": b.cfg.Environment},
	}
	exp, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(ans.ExpirationTime))
	if err != nil {
		b.log.Warn("tradovate token expiry unreadable; assuming the default lifetime", "lifetime", DefaultLifetime)
		exp = start.Add(DefaultLifetime)
	}
	if !exp.After(b.now()) {
		return fail(fmt.Sprintf("token expired on arrival (expirationTime %s); check the system clock", exp.UTC().Format(time.RFC3339)))
	}
	t.Expiry = exp
	switch {
	case ans.MDAccessToken != "" && validToken(ans.MDAccessToken):
		t.Aux[AuxMD] = auth.Secret(ans.MDAccessToken)
	case old != nil && old.Aux[AuxMD] != "":
		t.Aux[AuxMD] = old.Aux[AuxMD]
	}
	if id := strings.Trim(string(bytes.TrimSpace(ans.UserID)), `"`); id != "" && id != "null" && id != "0" {
		t.Meta[MetaUserID] = id
	} else if old != nil && old.Meta[MetaUserID] != "" {
		t.Meta[MetaUserID] = old.Meta[MetaUserID]
	}
	return t, nil
}

// Refresh renews old with GET /v1/auth/renewaccesstoken, which extends the
// session instead of opening a new one. The answer's mdAccessToken replaces
// the old one when present. It returns an error wrapping
// auth.ErrRefreshImpossible when old cannot be renewed (expired, or
// Tradovate answered 401 or errorText) so that the caller logs in instead;
// network trouble and 5xx are plain errors (the caller keeps the current
// token and tries later), and 423/429 are a *auth.RateLimitError.
func (b *Broker) Refresh(ctx context.Context, old *auth.Token) (*auth.Token, error) {
	impossible := func(why string) (*auth.Token, error) {
		return nil, fmt.Errorf("tradovate renewal for %q: %s: %w", b.cfg.Account, why, auth.ErrRefreshImpossible)
	}
	now := b.now()
	switch {
	case old == nil || old.Access == "":
		return impossible("no token to renew")
	case !old.Expiry.IsZero() && !now.Before(old.Expiry):
		return impossible("the token expired at " + old.Expiry.UTC().Format(time.RFC3339))
	case old.Meta["environment"] != "" && old.Meta["environment"] != b.cfg.Environment:
		return impossible("the token is for environment " + old.Meta["environment"])
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.renewURL, nil)
	if err != nil {
		return nil, fmt.Errorf("tradovate renewal for %q: %w", b.cfg.Account, err)
	}
	req.Header.Set("Authorization", "Bearer "+old.Access.Reveal())
	req.Header.Set("Accept", "application/json")

	start := b.now()
	resp, err := b.client.Do(ctx, req, true)
	if err != nil {
		return nil, fmt.Errorf("tradovate renewal for %q: %w", b.cfg.Account, err)
	}
	defer resp.Body.Close()
	raw, err := readBody(resp)
	if err != nil {
		return nil, fmt.Errorf("tradovate renewal for %q: %w", b.cfg.Account, err)
	}
	var ans tokenResponse
	jsonErr := json.Unmarshal(raw, &ans)
	if jsonErr != nil {
		ans = tokenResponse{}
	}
	if rl := b.lockout(resp, ans); rl != nil {
		return nil, rl
	}
	msg := b.clean(ans.ErrorText)
	if msg == "" && resp.StatusCode != http.StatusOK {
		msg = b.clean(string(raw))
	}
	switch {
	case resp.StatusCode >= 500:
		return nil, fmt.Errorf("tradovate renewal for %q: %s from %s", b.cfg.Account, auth.StatusText(resp.StatusCode), req.URL.Host)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		if msg == "" {
			msg = auth.StatusText(resp.StatusCode)
		}
		return impossible(fmt.Sprintf("refused (HTTP %d): %s", resp.StatusCode, msg))
	case jsonErr != nil:
		return nil, fmt.Errorf("tradovate renewal for %q: unreadable answer", b.cfg.Account)
	case ans.PCaptcha:
		return nil, &auth.RateLimitError{Account: b.cfg.Account, Until: b.now().Add(Lockout),
			Message: "Tradovate asks for a captcha; wait about an hour"}
	case ans.PTicket != "":
		// Not processed; the token stays good, so renew again later.
		return nil, fmt.Errorf("tradovate renewal for %q: answered with a penalty ticket; will renew later", b.cfg.Account)
	case msg != "":
		return impossible("refused: " + msg)
	}
	t, err := b.token(ans, start, old)
	if err != nil {
		return nil, fmt.Errorf("tradovate renewal for %q: %w", b.cfg.Account, err)
	}
	b.log.InfoContext(ctx, "tradovate token renewed", "expiry", t.Expiry, "new_md_token", ans.MDAccessToken != "")
	return t, nil
}

// clean makes broker text showable and strips this account's secrets.
func (b *Broker) clean(s string) string {
	return auth.BrokerMessage(s, b.cfg.Password.Reveal(), b.cfg.Sec.Reveal())
}

// Inject sets "Authorization: Bearer <token>": the mdAccessToken on the md
// hosts (the access token when there is none), the access token elsewhere.
// The proxy has already removed any Authorization the client sent.
func (b *Broker) Inject(r *http.Request, t *auth.Token) error { return inject(b.cfg.Account, r, t) }

// Rejected reports whether Tradovate refused the token (HTTP 401).
func (b *Broker) Rejected(resp *http.Response, _ func() []byte) bool { return rejected(resp) }

// Bypass reports whether r is a client's own call to a token endpoint
// (/auth/accesstokenrequest or /auth/oauthtoken, with or without /v1, in
// any case): those are forwarded untouched.
func (b *Broker) Bypass(r *http.Request) bool { return bypass(r) }
