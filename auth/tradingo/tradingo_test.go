package tradingo

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/authtest"
	"github.com/authproxy/authproxy/internal/fakebroker/fakeca"
	faketradingo "github.com/authproxy/authproxy/internal/fakebroker/tradingo"
	"github.com/pquerna/otp/totp"
)

type clock = authtest.Clock
type syncBuffer = authtest.LogBuffer

const (
	testSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	testClient = "GO11240"
	testMPIN   = "73915"
	prodHost   = "tradingorestapi.swastika.co.in"
)

// env is a fake Tradingo served over TLS by a throwaway CA, with a client
// that trusts it and dials it for the production host name.
type env struct {
	ca     *fakeca.CA
	srv    *fakeca.Server
	fake   *faketradingo.Fake
	clk    *clock
	client *auth.HTTPClient
	logs   *syncBuffer
	logger *slog.Logger
}

func newEnv(t *testing.T, h http.Handler) *env {
	t.Helper()
	ca, err := fakeca.New()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{ca: ca, clk: &clock{}, logs: &syncBuffer{}}
	if h == nil {
		e.fake = faketradingo.New(faketradingo.Options{
			ClientCode: testClient, MPIN: testMPIN, TOTPSecret: testSecret,
			TokenTTL: 2 * time.Hour, Now: e.clk.Now,
		})
		h = e.fake
	}
	e.srv, err = ca.Serve(h, prodHost)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.srv.Close() })
	e.logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.client = auth.NewHTTPClient(e.transport(ca), e.logger, auth.RetryOptions{WaitMin: 10 * time.Millisecond})
	return e
}

// transport trusts roots (nil: system roots) and sends every connection to
// the fake, whatever the host, like [upstream] resolve does.
func (e *env) transport(ca *fakeca.CA) *http.Transport {
	tc := &tls.Config{}
	if ca != nil {
		tc.RootCAs = ca.CertPool()
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		TLSClientConfig:   tc,
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, e.srv.Addr)
		},
	}
	return tr
}

func (e *env) broker(t *testing.T, mutate func(*Config)) *Broker {
	t.Helper()
	cfg := Config{Account: "tg", ClientCode: testClient, MPIN: testMPIN, TOTPSecret: testSecret}
	if mutate != nil {
		mutate(&cfg)
	}
	b, err := New(cfg, e.client, e.clk.Now, e.logger)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// codesAround returns the TOTP codes valid near now (for leak checks).
func codesAround(t *testing.T, now time.Time) []string {
	t.Helper()
	var out []string
	for d := -2; d <= 2; d++ {
		c, err := totp.GenerateCode(testSecret, now.Add(time.Duration(d)*30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func assertNoSecrets(t *testing.T, where, s string, extra ...string) {
	t.Helper()
	for _, secret := range append([]string{testMPIN, testSecret}, extra...) {
		if secret != "" && strings.Contains(s, secret) {
			t.Errorf("%s contains a secret (%q): %s", where, secret, s)
		}
	}
}

func TestLoginOK(t *testing.T) {
	e := newEnv(t, nil)
	b := e.broker(t, nil) // default base URL: the production host, dialled to the fake
	start := e.clk.Now()
	tok, err := b.Login(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if tok.Access == "" {
		t.Fatal("empty access token")
	}
	exp, err := auth.JWTExpiry(tok.Access.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if !tok.Expiry.Equal(exp) {
		t.Errorf("Expiry = %v, want the JWT exp %v", tok.Expiry, exp)
	}
	if lo, hi := start.Add(2*time.Hour-2*time.Second), start.Add(2*time.Hour+2*time.Second); tok.Expiry.Before(lo) || tok.Expiry.After(hi) {
		t.Errorf("Expiry = %v, want about %v", tok.Expiry, start.Add(2*time.Hour))
	}
	if tok.Obtained.Before(start.Add(-time.Second)) || tok.Obtained.After(e.clk.Now()) {
		t.Errorf("Obtained = %v, want about %v", tok.Obtained, start)
	}
	if got := tok.Meta["client_code"]; got != testClient {
		t.Errorf("Meta[client_code] = %q, want %q", got, testClient)
	}
	if e.fake.Logins() != 1 || e.fake.LoginAttempts() != 1 {
		t.Errorf("fake saw %d logins / %d attempts, want 1/1", e.fake.Logins(), e.fake.LoginAttempts())
	}
	assertNoSecrets(t, "log", e.logs.String(), append(codesAround(t, start), tok.Access.Reveal())...)
	if !strings.Contains(e.logs.String(), "tradingo login ok") {
		t.Errorf("no success log line: %s", e.logs.String())
	}

	// The token works on the API once injected over a stale client value.
	resp := e.api(t, b, tok, `{"Uid":"`+testClient+`"}`)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("API call: %d %s", resp.StatusCode, body)
	}
	if b.Rejected(resp, func() []byte { return body }) {
		t.Error("Rejected on a successful answer")
	}
	recs := e.fake.Requests()
	if len(recs) != 1 || recs[0].Authorization != "Bearer "+tok.Access.Reveal() {
		t.Fatalf("fake recorded %+v", recs)
	}
}

// api sends a POST to the order book with a stale client Authorization,
// after Inject.
func (e *env) api(t *testing.T, b *Broker, tok *auth.Token, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "https://"+prodHost+"/kb/OrderBook/GetOrderBookList", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer stale-client-token")
	if err := b.Inject(req, tok); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: e.transport(e.ca), Timeout: 10 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestRevokedTokenIsRejectedAndReloginWorks(t *testing.T) {
	e := newEnv(t, nil)
	b := e.broker(t, nil)
	tok, err := b.Login(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	e.fake.RevokeAll()
	resp := e.api(t, b, tok, `{}`)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !b.Rejected(resp, func() []byte { return body }) {
		t.Fatalf("revoked token not recognised as rejected: %d %s", resp.StatusCode, body)
	}
	e.clk.Advance(30 * time.Second) // next TOTP step, no real wait
	tok2, err := b.Login(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if tok2.Access == tok.Access {
		t.Fatal("second login returned the revoked token")
	}
	resp = e.api(t, b, tok2, `{}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("fresh token: status %d", resp.StatusCode)
	}
}

func TestLoginRefused(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		status int
		msg    string
	}{
		{"wrong MPIN", func(c *Config) { c.MPIN = "11111" }, 401, faketradingo.MsgInvalidMPIN},
		{"wrong TOTP secret", func(c *Config) { c.TOTPSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" }, 401, faketradingo.MsgInvalidTOTP},
		{"wrong client code", func(c *Config) { c.ClientCode = "GO99999" }, 401, faketradingo.MsgInvalidClient},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			b := e.broker(t, tc.mutate)
			tok, err := b.Login(t.Context())
			if tok != nil {
				t.Fatal("token returned with an error")
			}
			var le *auth.LoginError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v (%T), want *auth.LoginError", err, err)
			}
			if le.Account != "tg" || le.StatusCode != tc.status || le.Message != tc.msg {
				t.Errorf("LoginError = %+v, want account tg, %d, %q", le, tc.status, tc.msg)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not carry the broker's message", err)
			}
			assertNoSecrets(t, "error", err.Error(), append(codesAround(t, e.clk.Now()), "11111")...)
			assertNoSecrets(t, "log", e.logs.String(), append(codesAround(t, e.clk.Now()), "11111")...)
			if e.fake.LoginAttempts() != 1 {
				t.Errorf("login attempts = %d, want 1 (never retried)", e.fake.LoginAttempts())
			}
		})
	}
}

func TestLoginServerFailuresAreNotRetried(t *testing.T) {
	t.Run("503 twice", func(t *testing.T) {
		// A gateway's 503 means the login endpoint never saw the request:
		// it is resent inside the same Login, with backoff.
		e := newEnv(t, nil)
		e.fake.FailNextLogins(2, http.StatusServiceUnavailable)
		tok, err := e.broker(t, nil).Login(t.Context())
		if err != nil || tok == nil {
			t.Fatalf("Login = %v, %v; want a token after two 503s", tok, err)
		}
		if e.fake.LoginAttempts() != 3 {
			t.Fatalf("attempts = %d, want 3", e.fake.LoginAttempts())
		}
	})
	t.Run("503 always", func(t *testing.T) {
		e := newEnv(t, nil)
		e.fake.FailNextLogins(100, http.StatusServiceUnavailable)
		_, err := e.broker(t, nil).Login(t.Context())
		var le *auth.LoginError
		if !errors.As(err, &le) || le.StatusCode != 503 || le.Message != faketradingo.MsgUnavailable {
			t.Fatalf("err = %v, want LoginError 503 %q", err, faketradingo.MsgUnavailable)
		}
		if n := e.fake.LoginAttempts(); n < 2 || n > 4 {
			t.Fatalf("attempts = %d, want a bounded retry (2..4)", n)
		}
	})
	t.Run("500", func(t *testing.T) {
		e := newEnv(t, nil)
		e.fake.FailNextLogins(1, http.StatusInternalServerError)
		_, err := e.broker(t, nil).Login(t.Context())
		if err == nil {
			t.Fatal("a 500 login succeeded")
		}
		if e.fake.LoginAttempts() != 1 {
			t.Fatalf("attempts = %d, want 1: a 500 may have used the TOTP code", e.fake.LoginAttempts())
		}
	})
	t.Run("429", func(t *testing.T) {
		e := newEnv(t, nil)
		e.fake.FailNextLogins(1, http.StatusTooManyRequests)
		before := e.clk.Now()
		_, err := e.broker(t, nil).Login(t.Context())
		var rl *auth.RateLimitError
		if !errors.As(err, &rl) {
			t.Fatalf("err = %v (%T), want *auth.RateLimitError", err, err)
		}
		if rl.Account != "tg" || rl.Message != faketradingo.MsgTooManyLogins {
			t.Errorf("RateLimitError = %+v", rl)
		}
		if d := rl.Until.Sub(before); d < time.Second || d > 5*time.Second {
			t.Errorf("Until is %v after the attempt, want about Retry-After (1s)", d)
		}
		if e.fake.LoginAttempts() != 1 {
			t.Fatalf("attempts = %d, want 1", e.fake.LoginAttempts())
		}
	})
}

func TestLoginUntrustedCertificate(t *testing.T) {
	e := newEnv(t, nil)
	other, err := fakeca.New()
	if err != nil {
		t.Fatal(err)
	}
	// Trust some other root only: the fake's certificate must be refused.
	client := auth.NewHTTPClient(e.transport(other), e.logger, auth.RetryOptions{})
	b, err := New(Config{Account: "tg", ClientCode: testClient, MPIN: testMPIN, TOTPSecret: testSecret}, client, e.clk.Now, e.logger)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Login(t.Context())
	if err == nil || !auth.IsTLSError(err) {
		t.Fatalf("err = %v, want a TLS verification error", err)
	}
	if !strings.Contains(err.Error(), `"tg"`) {
		t.Errorf("error %q does not name the account", err)
	}
	if e.fake.LoginAttempts() != 0 {
		t.Fatalf("fake saw %d login attempts through an untrusted TLS connection", e.fake.LoginAttempts())
	}
}

// capture answers VerifyTotp like Tradingo and remembers the request.
type capture struct {
	mu     sync.Mutex
	method string
	path   string
	header http.Header
	body   []byte
	reply  func(w http.ResponseWriter)
}

func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.method, c.path, c.header, c.body = r.Method, r.URL.Path, r.Header.Clone(), b
	c.mu.Unlock()
	c.reply(w)
}

const seedToken = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjQxMDI0NDQ4MDAsImlzcyI6Imh0dHBzOi8vdHJhZGluZ29yZXN0YXBpLnN3YXN0aWthLmNvLmluIn0.c2ln"

func seedReply(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"StatusCode":200,"Message":"Request successful.","IsError":false,"ResponseException":null,"Result":{"ResponseId":43,"ResponseMessage":"Data Updated Successfully","Data":{"Isverified":true,"GenerationSourceTP":"FTLTP","AccessToken":"`+seedToken+`","CName":"","CEmail":"","CMobile":"","CDP":"","stk":""}}}`)
}

func TestLoginRequestShape(t *testing.T) {
	for _, ip := range []string{"", "192.168.0.1"} {
		t.Run("IPAddress="+ip, func(t *testing.T) {
			c := &capture{reply: seedReply}
			e := newEnv(t, c)
			b := e.broker(t, func(cfg *Config) { cfg.IPAddress = ip; cfg.BaseURL = "https://" + prodHost + "/" })
			tok, err := b.Login(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if tok.Access.Reveal() != seedToken || !tok.Expiry.Equal(time.Unix(4102444800, 0)) {
				t.Errorf("token %v expiry %v", tok.Access.Reveal() == seedToken, tok.Expiry)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.method != http.MethodPost || c.path != LoginPath {
				t.Errorf("request %s %s, want POST %s", c.method, c.path, LoginPath)
			}
			if got := c.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q", got)
			}
			if got := c.header.Get("Accept"); got != "application/json" {
				t.Errorf("Accept = %q", got)
			}
			if v := c.header.Values("Authorization"); len(v) != 0 {
				t.Errorf("login carries Authorization %q", v)
			}
			var m map[string]any
			if err := json.Unmarshal(c.body, &m); err != nil {
				t.Fatalf("body %q: %v", c.body, err)
			}
			want := map[string]any{"ClientCode": testClient, "MPIN": testMPIN, "GenerationSourceTP": "FTLTP", "IPAddress": ip}
			if len(m) != 5 {
				t.Errorf("body has %d fields, want exactly 5: %v", len(m), keys(m))
			}
			for k, v := range want {
				if got, ok := m[k]; !ok || got != v {
					t.Errorf("%s = %v (present %v), want %q", k, got, ok, v)
				}
			}
			code, _ := m["Totp"].(string)
			if ok, err := totp.ValidateCustom(code, testSecret, e.clk.Now(), totp.ValidateOpts{Period: 30, Skew: 1, Digits: 6}); err != nil || !ok {
				t.Errorf("Totp %q is not a valid code for the secret", code)
			}
		})
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestLoginBadAnswers(t *testing.T) {
	tests := []struct {
		name   string
		status int
		ctype  string
		body   string
		want   string
	}{
		{"html gateway error", 502, "text/html", "<html>Bad Gateway</html>", "unreadable error response: Bad Gateway"},
		{"IsError in a 200", 200, "application/json", `{"StatusCode":400,"Message":"Fail","IsError":true,"ResponseException":{"ExceptionMessage":"Client is blocked","Details":null,"ValidationErrors":null},"Result":null}`, "Client is blocked"},
		{"no token", 200, "application/json", `{"StatusCode":200,"Message":"Request successful.","IsError":false,"ResponseException":null,"Result":{"ResponseId":0,"ResponseMessage":"TOTP not verified","Data":{"Isverified":false,"AccessToken":""}}}`, "no access token: TOTP not verified"},
		{"token with a newline", 200, "application/json", `{"StatusCode":200,"IsError":false,"Result":{"Data":{"AccessToken":"abc\r\nX-Evil: 1"}}}`, "login response has a malformed access token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, &capture{reply: func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}})
			_, err := e.broker(t, nil).Login(t.Context())
			var le *auth.LoginError
			if !errors.As(err, &le) || le.Message != tc.want || le.StatusCode != tc.status || le.Account != "tg" {
				t.Fatalf("err = %#v, want LoginError{tg, %d, %q}", err, tc.status, tc.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	client := auth.NewHTTPClient(nil, nil, auth.RetryOptions{})
	good := Config{Account: "tg", ClientCode: testClient, MPIN: testMPIN, TOTPSecret: testSecret}
	tests := []struct {
		name    string
		mutate  func(*Config)
		client  *auth.HTTPClient
		wantErr string
	}{
		{name: "ok", client: client},
		{name: "bad totp secret", mutate: func(c *Config) { c.TOTPSecret = "NOT-BASE32-S3CR3T!" }, client: client, wantErr: "totp_secret"},
		{name: "missing mpin and secret", mutate: func(c *Config) { c.MPIN, c.TOTPSecret = "", "" }, client: client, wantErr: "missing mpin, totp_secret"},
		{name: "plain http", mutate: func(c *Config) { c.BaseURL = "http://" + prodHost }, client: client, wantErr: "must be https"},
		{name: "no account", mutate: func(c *Config) { c.Account = "" }, client: client, wantErr: "account name is empty"},
		{name: "no client", wantErr: "no HTTP client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			if tc.mutate != nil {
				tc.mutate(&cfg)
			}
			b, err := New(cfg, tc.client, nil, nil)
			if tc.wantErr == "" {
				if err != nil || b == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
			}
			assertNoSecrets(t, "error", err.Error(), "NOT-BASE32-S3CR3T!", "S3CR3T")
		})
	}
}

func TestInject(t *testing.T) {
	b := &Broker{cfg: Config{Account: "tg"}}
	tok := &auth.Token{Access: "new.jwt.value"}
	tests := []struct {
		name   string
		header http.Header
	}{
		{"none", http.Header{}},
		{"nil header", nil},
		{"client bearer", http.Header{"Authorization": {"Bearer old"}}},
		{"several copies", http.Header{"Authorization": {"Bearer a", "Basic b"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := http.NewRequest(http.MethodPost, "https://"+prodHost+"/kb/OrderBook/GetOrderBookList", nil)
			if err != nil {
				t.Fatal(err)
			}
			r.Header = tc.header
			if err := b.Inject(r, tok); err != nil {
				t.Fatal(err)
			}
			n := 0
			for k, v := range r.Header {
				if strings.EqualFold(k, "Authorization") {
					n++
					if k != "Authorization" || len(v) != 1 || v[0] != "Bearer new.jwt.value" {
						t.Errorf("header %q = %q, want one %q", k, v, "Bearer new.jwt.value")
					}
				}
			}
			if n != 1 {
				t.Errorf("%d Authorization keys after Inject, want 1: %v", n, r.Header)
			}
		})
	}
	r, _ := http.NewRequest(http.MethodGet, "https://"+prodHost+"/", nil)
	if err := b.Inject(r, nil); err == nil {
		t.Error("Inject(nil token) succeeded")
	}
	if err := b.Inject(r, &auth.Token{}); err == nil {
		t.Error("Inject(empty token) succeeded")
	}
}

func TestRejected(t *testing.T) {
	b := &Broker{cfg: Config{Account: "tg"}}
	env := func(status int, isErr bool, msg string) string {
		return `{"StatusCode":` + jsonNum(status) + `,"Message":"Fail","IsError":` + jsonBool(isErr) +
			`,"ResponseException":{"ExceptionMessage":` + jsonStr(msg) + `,"Details":null,"ValidationErrors":null},"Result":null}`
	}
	tests := []struct {
		name   string
		status int
		body   string
		want   bool
	}{
		{"401 envelope", 401, env(401, true, "Request denied. Unauthorized access."), true},
		{"401 empty body", 401, "", true},
		{"200 IsError unauthorized", 200, env(200, true, "Request denied. Unauthorized access."), true},
		{"200 IsError token expired", 200, env(200, true, "Token Expired"), true},
		{"400 IsError invalid token", 400, env(400, true, "Invalid token."), true},
		{"200 envelope StatusCode 401", 200, env(401, true, "Session ended"), true},
		{"200 IsError UNAUTHORISED", 200, env(200, true, "UNAUTHORISED"), true},
		{"200 success", 200, `{"StatusCode":200,"Message":"Request successful.","IsError":false,"ResponseException":null,"Result":{"ResponseId":1,"Data":[]}}`, false},
		{"200 IsError other", 200, env(200, true, "Insufficient margin"), false},
		{"500 unhandled", 500, env(500, true, "Unhandled Exception occured"), false},
		{"IsError false mentions token", 200, `{"IsError":false,"ResponseException":{"ExceptionMessage":"token"}}`, false},
		{"403 html", 403, "<html>Forbidden</html>", false},
		{"truncated JSON", 200, `{"IsError":true,"ResponseException":{"ExceptionMessage":"Unauthori`, false},
		{"null exception", 200, `{"StatusCode":200,"IsError":true,"ResponseException":null}`, false},
		{"array", 200, `[{"IsError":true}]`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tc.status, Header: http.Header{"Content-Type": {"application/json"}}}
			peeked := false
			got := b.Rejected(resp, func() []byte { peeked = true; return []byte(tc.body) })
			if got != tc.want {
				t.Errorf("Rejected = %v, want %v", got, tc.want)
			}
			if tc.status == 401 && peeked {
				t.Error("peeked although the status decided")
			}
		})
	}
	if b.Rejected(&http.Response{StatusCode: 200}, nil) {
		t.Error("Rejected(200, nil peek) = true")
	}
}

func jsonNum(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func jsonBool(v bool) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func jsonStr(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestBypass(t *testing.T) {
	b := &Broker{cfg: Config{Account: "tg"}}
	tests := []struct {
		path string
		want bool
	}{
		{"/auth/TOTP/VerifyTotp", true},
		{"/AUTH/totp/verifytotp", true},
		{"/auth/SSO/GetSSOAppSessionId", true},
		{"/Auth/Login/VerifySTPMPIN", true},
		{"/kb/OrderBook/GetOrderBookList", false},
		{"/kb/auth/x", false},
		{"/authx/y", false},
		{"/auth", false},
		{"/", false},
		{"", false},
		{"/kb/../auth/TOTP/VerifyTotp", true},
		{"/auth/../kb/PlaceOrders/PlaceOrder", false},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			r, err := http.NewRequest(http.MethodPost, "https://"+prodHost, nil)
			if err != nil {
				t.Fatal(err)
			}
			r.URL.Path = tc.path
			if got := b.Bypass(r); got != tc.want {
				t.Errorf("Bypass(%q) = %v, want %v", tc.path, got, tc.want)
			}
		})
	}
}

func TestParseLoginResponse(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		wantToken string
		wantMsg   string
	}{
		{"seed success", 200, `{"StatusCode":200,"Message":"Request successful.","IsError":false,"ResponseException":null,"Result":{"ResponseId":43,"ResponseMessage":"Data Updated Successfully","Data":{"Isverified":true,"GenerationSourceTP":"FTLTP","AccessToken":"a.b.c"}}}`, "a.b.c", ""},
		{"error envelope 401", 401, `{"StatusCode":401,"Message":"Fail","IsError":true,"ResponseException":{"ExceptionMessage":"Invalid MPIN","Details":null,"ValidationErrors":null},"Result":null}`, "", "Invalid MPIN"},
		{"error envelope without exception", 400, `{"StatusCode":400,"Message":"Bad things","IsError":true,"ResponseException":null,"Result":null}`, "", "Bad things"},
		{"token in a non-2xx", 500, `{"StatusCode":200,"IsError":false,"Result":{"Data":{"AccessToken":"a.b.c"}}}`, "", "Internal Server Error"},
		{"IsError missing", 200, `{"StatusCode":200,"Result":{"Data":{"AccessToken":"a.b.c"}}}`, "", "login refused"},
		{"empty object", 200, `{}`, "", "unreadable login response"},
		{"garbage", 200, "\x00\xff not json", "", "unreadable login response"},
		{"control characters in message", 401, `{"IsError":true,"ResponseException":{"ExceptionMessage":"Invalid\r\nMPIN\u0000"}}`, "", "Invalid MPIN"},
		{"unknown status", 599, ``, "", "unreadable error response: HTTP 599"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := ParseLoginResponse(tc.status, []byte(tc.body))
			if tok != tc.wantToken {
				t.Errorf("token = %q, want %q", tok, tc.wantToken)
			}
			if tc.wantMsg == "" {
				if err != nil {
					t.Errorf("err = %v", err)
				}
				return
			}
			var le *auth.LoginError
			if !errors.As(err, &le) || le.Message != tc.wantMsg || le.StatusCode != tc.status {
				t.Errorf("err = %#v, want LoginError{%d, %q}", err, tc.status, tc.wantMsg)
			}
		})
	}
	long := strings.Repeat("é", 400)
	_, err := ParseLoginResponse(401, []byte(`{"IsError":true,"ResponseException":{"ExceptionMessage":"`+long+`"}}`))
	var le *auth.LoginError
	if !errors.As(err, &le) || len(le.Message) > maxMessageLen+len("…") || !strings.HasSuffix(le.Message, "…") {
		t.Errorf("long message not cut: %d bytes", len(le.Message))
	}
}
