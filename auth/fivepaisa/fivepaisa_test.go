package fivepaisa

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/authtest"
	"github.com/authproxy/authproxy/internal/fakebroker/fakeca"
	fake5p "github.com/authproxy/authproxy/internal/fakebroker/fivepaisa"
)

type clock = authtest.Clock
type syncBuffer = authtest.LogBuffer

const (
	testSecret  = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	testAppKey  = "AppKeyQ7x9Lm2Vw4"
	testUserID  = "UsrId8812"
	testEncKey  = "EncKeyZp4Tn7Rk1"
	testClient  = "50012322"
	testPIN     = "482913"
	otherSecret = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"
)

// env is a fake 5paisa served over TLS for the production host names, and
// clients that trust it and dial it whatever the host (like [upstream]
// resolve).
type env struct {
	srv    *fakeca.Server
	fake   *fake5p.Fake
	clk    *clock
	client *auth.HTTPClient
	api    *http.Client // for API calls and the vendor page; no redirects
	logs   *syncBuffer
	logger *slog.Logger
}

func newEnv(t *testing.T, mod func(*fake5p.Options)) *env {
	t.Helper()
	ca, err := fakeca.New()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{clk: &clock{}, logs: &syncBuffer{}}
	opts := fake5p.Options{
		AppKey: testAppKey, UserID: testUserID, EncryptionKey: testEncKey,
		ClientCode: testClient, PIN: testPIN, TOTPSecret: testSecret, Now: e.clk.Now,
	}
	if mod != nil {
		mod(&opts)
	}
	e.fake = fake5p.New(opts)
	e.srv, err = ca.Serve(e.fake, fake5p.Hosts()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.srv.Close() })
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: ca.CertPool()},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, e.srv.Addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	e.logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.client = auth.NewHTTPClient(tr, e.logger, auth.RetryOptions{WaitMin: 10 * time.Millisecond})
	e.api = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return e
}

func (e *env) config() Config {
	return Config{
		Account: "fp", AppKey: testAppKey, UserID: testUserID, EncryptionKey: testEncKey,
		ClientCode: testClient, PIN: testPIN, TOTPSecret: testSecret,
	}
}

func (e *env) broker(t *testing.T, mod func(*Config)) *Broker {
	t.Helper()
	cfg := e.config()
	if mod != nil {
		mod(&cfg)
	}
	b, err := New(cfg, e.client, e.clk.Now, e.logger)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// noSecrets fails if any test secret shows up in text.
func noSecrets(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range []string{testAppKey, testEncKey, testPIN, testSecret} {
		if strings.Contains(text, s) {
			t.Errorf("%s contains a secret (%s...)", what, s[:4])
		}
	}
}

func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestLoginTOTP(t *testing.T) {
	e := newEnv(t, nil)
	b := e.broker(t, nil)
	before := e.clk.Now()
	tok, err := b.Login(ctx(t))
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if !tok.Valid(e.clk.Now()) {
		t.Fatal("token not valid")
	}
	want := fake5p.Cutoff(before)
	if !tok.Expiry.Equal(want) {
		t.Errorf("Expiry = %v, want %v (23:59:59 IST)", tok.Expiry, want)
	}
	if h, m, s := tok.Expiry.In(IST()).Clock(); h != 23 || m != 59 || s != 59 {
		t.Errorf("Expiry %v is not 23:59:59 IST", tok.Expiry.In(IST()))
	}
	if tok.Meta["client_code"] != testClient || tok.Meta["redirect_server"] != "C" {
		t.Errorf("Meta = %v", tok.Meta)
	}
	if got := [3]int{e.fake.TOTPAttempts(), e.fake.AccessTokenCalls(), e.fake.Logins()}; got != [3]int{1, 1, 1} {
		t.Errorf("fake counters (totp, getaccesstoken, logins) = %v, want [1 1 1]", got)
	}

	calls := e.fake.AuthCalls()
	if len(calls) != 2 {
		t.Fatalf("%d login calls, want 2", len(calls))
	}
	var login struct {
		Head map[string]string `json:"head"`
		Body map[string]string `json:"body"`
	}
	if err := json.Unmarshal(calls[0].Body, &login); err != nil {
		t.Fatal(err)
	}
	if login.Head["Key"] != testAppKey || len(login.Head) != 1 {
		t.Errorf("TOTPLogin head = %v", login.Head)
	}
	if login.Body["Email_ID"] != testClient || login.Body["PIN"] != testPIN || len(login.Body["TOTP"]) != 6 || len(login.Body) != 3 {
		t.Errorf("TOTPLogin body has fields %v", keys(login.Body))
	}
	var exch struct {
		Head map[string]string `json:"head"`
		Body map[string]string `json:"body"`
	}
	if err := json.Unmarshal(calls[1].Body, &exch); err != nil {
		t.Fatal(err)
	}
	if exch.Head["Key"] != testAppKey || exch.Body["EncryKey"] != testEncKey || exch.Body["UserId"] != testUserID ||
		exch.Body["RequestToken"] == "" || len(exch.Body) != 3 {
		t.Errorf("GetAccessToken body has fields %v", keys(exch.Body))
	}
	for i, c := range calls {
		if c.Authorization != "" {
			t.Errorf("login call %d carried Authorization", i)
		}
		if ct := c.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("login call %d Content-Type %q", i, ct)
		}
	}
	if !strings.Contains(e.logs.String(), "fivepaisa login ok") {
		t.Errorf("no success log line:\n%s", e.logs.String())
	}
	noSecrets(t, "logs", e.logs.String())
	if strings.Contains(e.logs.String(), tok.Access.Reveal()) {
		t.Error("logs contain the access token")
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestLoginRefusals(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func(*Config)
		wantMsg string
	}{
		{"wrong pin", func(c *Config) { c.PIN = "000000" }, fake5p.MsgInvalidLogin},
		{"wrong client", func(c *Config) { c.ClientCode = "59999999" }, fake5p.MsgInvalidLogin},
		{"wrong totp secret", func(c *Config) { c.TOTPSecret = otherSecret }, fake5p.MsgInvalidTOTP},
		{"wrong app key", func(c *Config) { c.AppKey = "NotTheAppKey123" }, fake5p.MsgInvalidHead},
		{"wrong encryption key", func(c *Config) { c.EncryptionKey = "NotTheEncKey99" }, fake5p.MsgTokenExpired},
		{"wrong user id", func(c *Config) { c.UserID = "nobody" }, fake5p.MsgTokenExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			b := e.broker(t, tc.cfg)
			tok, err := b.Login(ctx(t))
			var le *auth.LoginError
			if !errors.As(err, &le) {
				t.Fatalf("Login = %v, %v; want *auth.LoginError", tok, err)
			}
			if le.Account != "fp" || le.Message != tc.wantMsg {
				t.Errorf("LoginError = %+v, want account fp and message %q", le, tc.wantMsg)
			}
			if e.fake.Logins() != 0 {
				t.Errorf("fake issued %d tokens", e.fake.Logins())
			}
			noSecrets(t, "error", err.Error())
			noSecrets(t, "logs", e.logs.String())
		})
	}
}

// A failed GetAccessToken is never retried with the same request token: the
// next Login starts over with a new TOTP code.
func TestExchangeFailureStartsOver(t *testing.T) {
	e := newEnv(t, nil)
	b := e.broker(t, nil)
	e.fake.FailNextAccessTokens(1)
	_, err := b.Login(ctx(t))
	var le *auth.LoginError
	if !errors.As(err, &le) || le.Message != fake5p.MsgServerUnable {
		t.Fatalf("first Login = %v, want LoginError %q", err, fake5p.MsgServerUnable)
	}
	if n := e.fake.AccessTokenCalls(); n != 1 {
		t.Fatalf("GetAccessToken called %d times by one Login, want 1 (no retry)", n)
	}
	e.clk.Advance(30 * time.Second) // the next TOTP step, without waiting
	if _, err := b.Login(ctx(t)); err != nil {
		t.Fatalf("second Login: %v", err)
	}
	calls := e.fake.AuthCalls()
	if len(calls) != 4 {
		t.Fatalf("%d login calls, want 4", len(calls))
	}
	field := func(i int, name string) string {
		var v struct {
			Body map[string]string `json:"body"`
		}
		_ = json.Unmarshal(calls[i].Body, &v)
		return v.Body[name]
	}
	if !strings.HasSuffix(calls[0].Path, "TOTPLogin") || !strings.HasSuffix(calls[2].Path, "TOTPLogin") {
		t.Fatalf("call order %s, %s, %s, %s", calls[0].Path, calls[1].Path, calls[2].Path, calls[3].Path)
	}
	if field(0, "TOTP") == field(2, "TOTP") {
		t.Error("the second login reused the TOTP code")
	}
	if field(1, "RequestToken") == field(3, "RequestToken") {
		t.Error("the second exchange reused the first request token")
	}
	if e.fake.TOTPAttempts() != 2 || e.fake.Logins() != 1 {
		t.Errorf("totp attempts %d, logins %d; want 2, 1", e.fake.TOTPAttempts(), e.fake.Logins())
	}
}

func TestLoginRateLimited(t *testing.T) {
	e := newEnv(t, nil)
	b := e.broker(t, nil)
	e.fake.FailNextLogins(1, http.StatusTooManyRequests)
	now := e.clk.Now()
	_, err := b.Login(ctx(t))
	var rl *auth.RateLimitError
	if !errors.As(err, &rl) {
		t.Fatalf("Login = %v, want *auth.RateLimitError", err)
	}
	if d := rl.Until.Sub(now); d < time.Second || d > 5*time.Second {
		t.Errorf("Until is %v after now, want about 1s (Retry-After: 1)", d)
	}
	if rl.Message != fake5p.MsgTooMany || rl.Account != "fp" {
		t.Errorf("RateLimitError = %+v", rl)
	}
	if e.fake.AccessTokenCalls() != 0 {
		t.Error("GetAccessToken called after a failed TOTPLogin")
	}
}

func TestLoginServerError(t *testing.T) {
	e := newEnv(t, nil)
	b := e.broker(t, nil)
	e.fake.FailNextLogins(1, http.StatusInternalServerError)
	_, err := b.Login(ctx(t))
	var le *auth.LoginError
	if !errors.As(err, &le) || le.StatusCode != http.StatusInternalServerError {
		t.Fatalf("Login = %v, want LoginError with HTTP 500", err)
	}
	if e.fake.TOTPAttempts() != 1 {
		t.Errorf("TOTPLogin sent %d times, want 1 (a 500 may have used the code)", e.fake.TOTPAttempts())
	}
}

// TestLoginGatewayErrorIsRetried: a gateway's 503 means TOTPLogin never
// ran: it is resent within the same Login.
func TestLoginGatewayErrorIsRetried(t *testing.T) {
	e := newEnv(t, nil)
	b := e.broker(t, nil)
	e.fake.FailNextLogins(2, http.StatusServiceUnavailable)
	if _, err := b.Login(ctx(t)); err != nil {
		t.Fatalf("Login after two 503s = %v", err)
	}
	if n := e.fake.TOTPAttempts(); n != 3 {
		t.Errorf("TOTPLogin sent %d times, want 3", n)
	}
}

func TestExpiryFallbackWithoutExp(t *testing.T) {
	e := newEnv(t, func(o *fake5p.Options) { o.OmitExp = true })
	b := e.broker(t, nil)
	now := e.clk.Now()
	tok, err := b.Login(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := NextCutoff(now); !tok.Expiry.Equal(want) {
		t.Errorf("Expiry = %v, want %v", tok.Expiry, want)
	}
}

func TestNextCutoff(t *testing.T) {
	ist := IST()
	tests := []struct {
		now  time.Time
		want time.Time
	}{
		{time.Date(2024, 1, 31, 10, 0, 0, 0, ist), time.Date(2024, 1, 31, 23, 59, 59, 0, ist)},
		{time.Date(2024, 1, 31, 23, 59, 58, 0, ist), time.Date(2024, 1, 31, 23, 59, 59, 0, ist)},
		{time.Date(2024, 1, 31, 23, 59, 59, 0, ist), time.Date(2024, 2, 1, 23, 59, 59, 0, ist)},
		{time.Date(2024, 1, 31, 18, 30, 0, 0, time.UTC), time.Date(2024, 2, 1, 23, 59, 59, 0, ist)}, // 00:00 IST
		{time.Date(2024, 1, 31, 18, 29, 58, 0, time.UTC), time.Date(2024, 1, 31, 23, 59, 59, 0, ist)},
		{time.Date(2024, 12, 31, 20, 0, 0, 0, ist), time.Date(2024, 12, 31, 23, 59, 59, 0, ist)},
	}
	for _, tc := range tests {
		if got := NextCutoff(tc.now); !got.Equal(tc.want) {
			t.Errorf("NextCutoff(%v) = %v, want %v", tc.now, got, tc.want)
		}
	}
	if _, off := time.Date(2024, 6, 1, 0, 0, 0, 0, ist).Zone(); off != 19800 {
		t.Errorf("IST offset %d, want 19800", off)
	}
}

// After the cutoff the token is invalid, 5paisa says Invalid Session, and a
// new login gets a token for the next day.
func TestAfterCutoff(t *testing.T) {
	e := newEnv(t, nil)
	b := e.broker(t, nil)
	tok, err := b.Login(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(tok.Expiry.Sub(e.clk.Now()) + time.Second)
	if tok.Valid(e.clk.Now()) {
		t.Fatal("token still valid after 23:59:59 IST")
	}
	resp, peek := e.call(t, b, tok, "V3/OrderBook", `{"head":{},"body":{}}`)
	if !b.Rejected(resp, peek) {
		t.Fatalf("expired token not rejected: %s", peek())
	}
	tok2, err := b.Login(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !tok2.Expiry.Equal(tok.Expiry.AddDate(0, 0, 1)) {
		t.Errorf("new expiry %v, want %v", tok2.Expiry, tok.Expiry.AddDate(0, 0, 1))
	}
	resp, peek = e.call(t, b, tok2, "V3/OrderBook", `{"head":{},"body":{}}`)
	if b.Rejected(resp, peek) || resp.StatusCode != 200 {
		t.Fatalf("fresh token rejected: %d %s", resp.StatusCode, peek())
	}
}

// call sends a POST with body to the fake API through Inject, like the proxy.
func (e *env) call(t *testing.T, b interface {
	Inject(*http.Request, *auth.Token) error
}, tok *auth.Token, endpoint, body string) (*http.Response, func() []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, ServiceURL+"/"+endpoint, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer client-sent-junk")
	if err := b.Inject(req, tok); err != nil {
		t.Fatalf("Inject: %v", err)
	}
	resp, err := e.api.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, func() []byte { return data }
}

func TestInjectAgainstFake(t *testing.T) {
	e := newEnv(t, nil)
	b := e.broker(t, nil)
	tok, err := b.Login(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	bodies := []struct{ endpoint, body string }{
		{"V3/OrderBook", `{"head":{},"body":{"ClientCode":""}}`},
		{"V3/OrderBook", `{"body":{}}`},
		{"V3/OrderBook", `{}`},
		{"V1/PlaceOrderRequest", `{"head":{"Key":"stale","KEY":"x"},"body":{"OrderType":"B","Exchange":"N","ExchangeType":"C","ScripCode":1660,"Qty":1,"Price":0}}`},
		{"V2/MarketFeed", `{"head":{"key":"wrong"},"body":{"ClientCode":"someone","Count":1,"MarketFeedData":[{"Exch":"N","ExchType":"C","ScripCode":"1660"}]}}`},
	}
	for _, tc := range bodies {
		resp, peek := e.call(t, b, tok, tc.endpoint, tc.body)
		st, msg, ok := ParseStatus(peek())
		if resp.StatusCode != 200 || !ok || st != 0 || b.Rejected(resp, peek) {
			t.Errorf("%s %s: HTTP %d status %d %q ok=%v: %s", tc.endpoint, tc.body, resp.StatusCode, st, msg, ok, peek())
		}
	}
	for _, r := range e.fake.Requests() {
		if r.Outcome != "ok" || r.HeadKey != testAppKey || r.ClientCode != testClient || len(r.HeadKeys) != 1 {
			t.Errorf("fake saw %s: outcome %s head keys %v client %q", r.Path, r.Outcome, r.HeadKeys, r.ClientCode)
		}
		if r.Authorization != "bearer "+tok.Access.Reveal() {
			t.Errorf("fake saw Authorization %q", r.Authorization)
		}
	}

	// A revoked session: HTTP 200 with body.Status 9.
	e.fake.RevokeAll()
	resp, peek := e.call(t, b, tok, "V3/OrderBook", `{"head":{},"body":{}}`)
	if resp.StatusCode != 200 || !b.Rejected(resp, peek) {
		t.Errorf("revoked token: HTTP %d, Rejected false: %s", resp.StatusCode, peek())
	}
}

func TestBrowserLogin(t *testing.T) {
	e := newEnv(t, nil)
	cfg := e.config()
	cfg.PIN, cfg.TOTPSecret, cfg.ClientCode = "", "", ""
	if _, err := New(cfg, e.client, e.clk.Now, e.logger); err == nil {
		t.Error("New accepted an account without pin/totp_secret")
	}
	b, err := NewBrowser(cfg, e.client, e.clk.Now, e.logger)
	if err != nil {
		t.Fatal(err)
	}
	var _ auth.Interactive = b
	if !b.NeedsBrowser() {
		t.Error("NeedsBrowser false")
	}
	if _, err := b.Login(ctx(t)); !errors.Is(err, auth.ErrLoginRequired) {
		t.Errorf("Login = %v, want ErrLoginRequired", err)
	}
	redirect := "http://127.0.0.1:8899/callback/fp"
	au := b.AuthURL("st-123", redirect)
	want := "https://dev-openapi.5paisa.com/WebVendorLogin/VLogin/Index?VendorKey=" + testAppKey +
		"&ResponseURL=http%3A%2F%2F127.0.0.1%3A8899%2Fcallback%2Ffp&State=st-123"
	if au != want {
		t.Errorf("AuthURL =\n %s\nwant\n %s", au, want)
	}

	// The browser: the fake approves at once and redirects back.
	req, _ := http.NewRequestWithContext(ctx(t), http.MethodGet, au, nil)
	resp, err := e.api.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("vendor page: HTTP %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), redirect+"?") {
		t.Fatalf("redirect to %q", resp.Header.Get("Location"))
	}
	q := loc.Query()
	if q.Get("state") != "st-123" || q.Get("RequestToken") == "" {
		t.Fatalf("callback query has keys %v", q)
	}
	tok, err := b.Exchange(ctx(t), redirect, q)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.Meta["client_code"] != testClient || !tok.Expiry.Equal(NextCutoff(e.clk.Now())) {
		t.Errorf("token meta %v expiry %v", tok.Meta, tok.Expiry)
	}
	if e.fake.VendorLogins() != 1 || e.fake.Logins() != 1 || e.fake.TOTPAttempts() != 0 {
		t.Errorf("fake counters: vendor %d logins %d totp %d", e.fake.VendorLogins(), e.fake.Logins(), e.fake.TOTPAttempts())
	}
	// The client code learnt at login is injected.
	resp2, peek := e.call(t, b, tok, "V3/OrderBook", `{"body":{}}`)
	if resp2.StatusCode != 200 || b.Rejected(resp2, peek) {
		t.Errorf("API call after browser login: %s", peek())
	}

	// A request token works once.
	var le *auth.LoginError
	if _, err := b.Exchange(ctx(t), redirect, q); !errors.As(err, &le) || le.Message != fake5p.MsgServerUnable {
		t.Errorf("reused request token: %v", err)
	}
	if _, err := b.Exchange(ctx(t), redirect, url.Values{"state": {"x"}}); !errors.As(err, &le) {
		t.Errorf("callback without RequestToken: %v", err)
	}
	// A stale one (past the 30 s lifetime) is refused too.
	req, _ = http.NewRequestWithContext(ctx(t), http.MethodGet, au, nil)
	resp, err = e.api.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ = url.Parse(resp.Header.Get("Location"))
	e.clk.Advance(31 * time.Second)
	if _, err := b.Exchange(ctx(t), redirect, loc.Query()); !errors.As(err, &le) || le.Message != fake5p.MsgServerUnable {
		t.Errorf("expired request token: %v", err)
	}
	noSecrets(t, "logs", e.logs.String())
}

func TestNewValidates(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no account", func(c *Config) { c.Account = "" }, "account name"},
		{"no app key", func(c *Config) { c.AppKey = "" }, "app_key"},
		{"no pin", func(c *Config) { c.PIN = "" }, "pin"},
		{"bad secret", func(c *Config) { c.TOTPSecret = "not base32!" }, "totp_secret"},
		{"no encryption key", func(c *Config) { c.EncryptionKey = "" }, "encryption_key"},
	}
	for _, tc := range tests {
		cfg := e.config()
		tc.mod(&cfg)
		_, err := New(cfg, e.client, nil, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want mention of %q", tc.name, err, tc.want)
			continue
		}
		noSecrets(t, tc.name, err.Error())
	}
	if _, err := New(e.config(), nil, nil, nil); err == nil {
		t.Error("New accepted a nil client")
	}
	if _, err := NewBrowser(e.config(), e.client, nil, nil); err == nil {
		t.Error("NewBrowser accepted an account with pin/totp_secret")
	}
}

// With auth.Cache: past 23:59:59 IST the next Token call logs in again by
// itself, and the fresh token lasts until the next day's cutoff.
func TestCacheLogsInAgainAfterCutoff(t *testing.T) {
	e := newEnv(t, nil)
	b := e.broker(t, nil)
	c := auth.NewCache("fp", b, auth.NewFileStore(t.TempDir()+"/tokens.json"), auth.CacheOptions{Now: e.clk.Now, Logger: e.logger})
	tok, err := c.Token(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(tok.Expiry.Sub(e.clk.Now()) + time.Second)
	tok2, err := c.Token(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if tok2 == tok || e.fake.Logins() != 2 {
		t.Fatalf("after the cutoff: logins %d, same token %v", e.fake.Logins(), tok2 == tok)
	}
	if !tok2.Expiry.Equal(tok.Expiry.AddDate(0, 0, 1)) || !tok2.Valid(e.clk.Now()) {
		t.Errorf("new token expires %v, want %v", tok2.Expiry, tok.Expiry.AddDate(0, 0, 1))
	}
	resp, peek := e.call(t, b, tok2, "V3/OrderBook", `{"body":{}}`)
	if resp.StatusCode != 200 || b.Rejected(resp, peek) {
		t.Errorf("new token refused: %s", peek())
	}
}
