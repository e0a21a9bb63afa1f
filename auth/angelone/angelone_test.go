package angelone

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/authtest"
	"github.com/authproxy/authproxy/internal/brokertest"
	fakeao "github.com/authproxy/authproxy/internal/fakebroker/angelone"
)

const (
	testKey    = "Xk9apiKEY77"
	testClient = "A1234567"
	testPIN    = "4821"
	testTOTP   = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
)

type env struct {
	brokertest.Env
	fake *fakeao.Fake
}

func newEnv(t *testing.T, wrap ...func(http.Handler) http.Handler) *env {
	t.Helper()
	clk := authtest.Fixed(time.Date(2026, 3, 10, 9, 0, 5, 0, auth.IST()))
	fake := fakeao.New(fakeao.Options{APIKey: testKey, ClientCode: testClient, PIN: testPIN, TOTPSecret: testTOTP, Now: clk.Now})
	var h http.Handler = fake
	for _, w := range wrap {
		h = w(h)
	}
	return &env{Env: brokertest.Serve(t, clk, h, APIHost, StreamHost), fake: fake}
}

func (e *env) broker(t *testing.T, mutate func(*Config)) *Broker {
	t.Helper()
	cfg := Config{Account: "ao", APIKey: testKey, ClientCode: testClient, PIN: testPIN, TOTPSecret: testTOTP}
	if mutate != nil {
		mutate(&cfg)
	}
	b, err := New(cfg, e.Client, e.Clock.Now, e.Logger)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *env) login(t *testing.T, b *Broker) *auth.Token {
	t.Helper()
	tok, err := b.Login(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (e *env) call(t *testing.T, b *Broker, tok *auth.Token, method, p, body string, mutate func(*http.Request)) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, "https://"+APIHost+p, rd)
	if mutate != nil {
		mutate(req)
	}
	if tok != nil {
		if err := b.Inject(req, tok); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := (&http.Client{Transport: e.Tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(raw)
}

func (e *env) assertNoSecrets(t *testing.T, where, s string, extra ...string) {
	t.Helper()
	for _, v := range append([]string{testKey, testTOTP}, extra...) {
		if len(v) >= 4 && strings.Contains(s, v) {
			t.Errorf("%s leaks a secret %q...: %s", where, v[:4], s)
		}
	}
}

func TestNew(t *testing.T) {
	e := newEnv(t)
	full := Config{Account: "ao", APIKey: testKey, ClientCode: testClient, PIN: testPIN, TOTPSecret: testTOTP}
	for name, mutate := range map[string]func(*Config){
		"no account": func(c *Config) { c.Account = "" },
		"no key":     func(c *Config) { c.APIKey = "" },
		"no client":  func(c *Config) { c.ClientCode = "" },
		"no pin":     func(c *Config) { c.PIN = "" },
		"no totp":    func(c *Config) { c.TOTPSecret = "" },
		"bad totp":   func(c *Config) { c.TOTPSecret = "not base32 !" },
		"bad mac":    func(c *Config) { c.MACAddress = "aa bb\r\n" },
	} {
		cfg := full
		mutate(&cfg)
		if _, err := New(cfg, e.Client, nil, nil); err == nil {
			t.Errorf("%s: New succeeded", name)
		} else {
			e.assertNoSecrets(t, name, err.Error(), testPIN)
		}
	}
	if _, err := New(full, nil, nil, nil); err == nil {
		t.Error("New without a client succeeded")
	}
}

func TestLoginOK(t *testing.T) {
	e := newEnv(t)
	b := e.broker(t, nil)
	tok := e.login(t, b)
	if tok.Refresh == "" || tok.Aux[AuxFeed] == "" || tok.Meta[MetaClientCode] != testClient {
		t.Errorf("token lacks refresh/feed/client code: %+v", tok.Meta)
	}
	if want := time.Date(2026, 3, 11, 0, 0, 0, 0, auth.IST()); !tok.Expiry.Equal(want) {
		t.Errorf("expiry %s, want the next midnight IST %s", tok.Expiry, want)
	}
	reqs := e.fake.Requests()
	if len(reqs) != 1 || reqs[0].Path != LoginPath || reqs[0].Method != http.MethodPost {
		t.Fatalf("requests %+v", reqs)
	}
	h := reqs[0].Header
	for k, want := range map[string]string{
		"X-PrivateKey": testKey, "X-UserType": "USER", "X-SourceID": "WEB", "X-ClientLocalIP": DefaultLocalIP,
		"X-ClientPublicIP": DefaultPublicIP, "X-MACAddress": DefaultMAC, "Accept": "application/json",
		"Content-Type": "application/json", "Authorization": "",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("login header %s = %q, want %q", k, got, want)
		}
	}
	var body map[string]string
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil || body["clientcode"] != testClient || body["password"] != testPIN || len(body["totp"]) != 6 {
		t.Errorf("login body %s", reqs[0].Body)
	}
	e.assertNoSecrets(t, "logs", e.Logs.String(), testPIN, tok.Access.Reveal(), tok.Refresh.Reveal(), body["totp"])
}

func TestLoginRefused(t *testing.T) {
	e := newEnv(t)
	for name, tc := range map[string]struct {
		mutate func(*Config)
		status int
		code   string
	}{
		"wrong pin":  {func(c *Config) { c.PIN = "0000" }, 200, "AB1000"},
		"wrong key":  {func(c *Config) { c.APIKey = "nope-nope" }, 403, "AG8004"},
		"wrong totp": {func(c *Config) { c.TOTPSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" }, 200, "AB1050"},
	} {
		b := e.broker(t, tc.mutate)
		_, err := b.Login(t.Context())
		var le *auth.LoginError
		if !errors.As(err, &le) || le.Account != "ao" || le.StatusCode != tc.status || !strings.Contains(le.Message, tc.code) {
			t.Errorf("%s: %v, want a LoginError %d with %s", name, err, tc.status, tc.code)
			continue
		}
		e.assertNoSecrets(t, name, err.Error(), "0000", "nope-nope")
		e.Clock.Advance(30 * time.Second) // next case, next TOTP step
	}
}

// The fake refuses a TOTP step used before; a broker restored from a saved
// token never sends that step again but waits for the next.
func TestTOTPStepNotReused(t *testing.T) {
	e := newEnv(t)
	first := e.login(t, e.broker(t, nil))

	_, err := e.broker(t, nil).Login(t.Context()) // a fresh process that forgot the step
	var le *auth.LoginError
	if !errors.As(err, &le) || !strings.Contains(le.Message, "AB1050") {
		t.Fatalf("reused step: %v, want AB1050", err)
	}

	restored := e.broker(t, nil)
	restored.Restore(first)
	done := make(chan error, 1)
	go func() {
		_, err := restored.Login(t.Context())
		done <- err
	}()
	// The login waits for the next step (a spent step would be refused and
	// counted as a failure below).
	e.Clock.Advance(30 * time.Second)
	if err := <-done; err != nil {
		t.Fatalf("restored login after the step moved on: %v", err)
	}
	if c := e.fake.Counts(); c.Logins != 2 || c.LoginFailures != 1 {
		t.Errorf("counts %+v", c)
	}
}

func TestRefresh(t *testing.T) {
	e := newEnv(t)
	b := e.broker(t, nil)
	old := e.login(t, b)
	e.Clock.Advance(time.Hour)
	tok, err := b.Refresh(t.Context(), old)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Access == old.Access || tok.Refresh != old.Refresh || tok.Aux[AuxFeed] == "" || !tok.Obtained.Equal(e.Clock.Now()) {
		t.Errorf("renewed token %+v", tok)
	}
	reqs := e.fake.Requests()
	last := reqs[len(reqs)-1]
	if last.Path != RenewPath || last.Authorization != "Bearer "+old.Access.Reveal() || last.Header.Get("X-PrivateKey") != testKey {
		t.Errorf("renew request %s %q", last.Path, last.Header)
	}
	resp, body := e.call(t, b, tok, http.MethodGet, "/rest/secure/angelbroking/user/v1/getProfile", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"status":true`) {
		t.Errorf("renewed token on the API: %d %s", resp.StatusCode, body)
	}
	e.assertNoSecrets(t, "logs", e.Logs.String(), tok.Access.Reveal(), tok.Refresh.Reveal())
}

func TestRefreshImpossible(t *testing.T) {
	e := newEnv(t)
	b := e.broker(t, nil)
	old := e.login(t, b)
	if _, err := b.Refresh(t.Context(), &auth.Token{Access: old.Access}); !errors.Is(err, auth.ErrRefreshImpossible) {
		t.Errorf("without a refresh token: %v", err)
	}
	e.fake.ExpireRefresh()
	_, err := b.Refresh(t.Context(), old)
	var le *auth.LoginError
	if !errors.Is(err, auth.ErrRefreshImpossible) || !errors.As(err, &le) || !strings.Contains(le.Message, "AB8051") {
		t.Errorf("expired refresh token: %v", err)
	}
	e.assertNoSecrets(t, "error", err.Error(), old.Refresh.Reveal())
}

func TestInjectAndReject(t *testing.T) {
	e := newEnv(t)
	b := e.broker(t, nil)
	tok := e.login(t, b)
	resp, body := e.call(t, b, tok, http.MethodPost, "/rest/secure/angelbroking/order/v1/placeOrder",
		`{"variety":"NORMAL","tradingsymbol":"SBIN-EQ","symboltoken":"3045","transactiontype":"BUY","exchange":"NSE","ordertype":"MARKET","producttype":"INTRADAY","duration":"DAY","quantity":"1"}`,
		func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer placeholder")
			r.Header.Set("X-PrivateKey", "placeholder")
			r.Header.Set("X-SourceID", "WEB")
		})
	if resp.StatusCode != 200 || !strings.Contains(body, `"orderid"`) || b.Rejected(resp, func() []byte { return []byte(body) }) {
		t.Fatalf("placeOrder: %d %s", resp.StatusCode, body)
	}
	if o := e.fake.Orders(); len(o) != 1 || !o[0].Time.Equal(e.Clock.Now()) {
		t.Errorf("orders %+v", o)
	}
	reqs := e.fake.Requests()
	if h := reqs[len(reqs)-1].Header; len(h.Values("X-PrivateKey")) != 1 || len(h.Values("Authorization")) != 1 || h.Get("Content-Type") != "application/json" {
		t.Errorf("injected headers %v", h)
	}

	e.fake.RevokeAll()
	resp, body = e.call(t, b, tok, http.MethodGet, "/rest/secure/angelbroking/user/v1/getRMS", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "AG8001") {
		t.Fatalf("revoked token: %d %s", resp.StatusCode, body)
	}
	if !b.Rejected(resp, func() []byte { return []byte(body) }) {
		t.Error("the in-band AG8001 answer is not seen as a rejection")
	}
}

func TestFakeWantsPrivateKey(t *testing.T) {
	e := newEnv(t)
	b := e.broker(t, nil)
	tok := e.login(t, b)
	resp, body := e.call(t, b, nil, http.MethodGet, "/rest/secure/angelbroking/user/v1/getProfile", "", func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+tok.Access.Reveal())
	})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Invalid API Key") {
		t.Errorf("a call without X-PrivateKey: %d %s", resp.StatusCode, body)
	}
}

func TestStream(t *testing.T) {
	e := newEnv(t)
	b := e.broker(t, nil)
	tok := e.login(t, b)
	dial := func(tk *auth.Token) (*websocket.Conn, *http.Response, error) {
		r, _ := http.NewRequest(http.MethodGet, "https://"+StreamHost+StreamPath, nil)
		r.Header.Set("Authorization", "placeholder")
		r.Header.Set("x-feed-token", "placeholder")
		if err := b.Inject(r, tk); err != nil {
			t.Fatal(err)
		}
		return websocket.Dial(t.Context(), "wss://"+StreamHost+StreamPath, &websocket.DialOptions{
			HTTPClient: &http.Client{Transport: e.Tr}, HTTPHeader: r.Header,
		})
	}
	c, _, err := dial(tok)
	if err != nil {
		t.Fatalf("SmartStream with the injected headers: %v", err)
	}
	if err := c.Write(t.Context(), websocket.MessageText, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(t.Context()); err != nil || string(msg) != "pong" {
		t.Errorf("heartbeat answer %q %v", msg, err)
	}
	c.Close(websocket.StatusNormalClosure, "")

	bad := &auth.Token{Access: tok.Access, Aux: map[string]auth.Secret{AuxFeed: "wrongfeed"}}
	_, resp, err := dial(bad)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized || !b.Rejected(resp, nil) {
		t.Fatalf("SmartStream with a wrong feed token: %v %v", resp, err)
	}
	r, _ := http.NewRequest(http.MethodGet, "https://"+StreamHost+StreamPath, nil)
	if err := b.Inject(r, &auth.Token{Access: "x"}); err == nil {
		t.Error("Inject on SmartStream without a feed token succeeded")
	}
}

func TestRejected(t *testing.T) {
	b := newEnv(t).broker(t, nil)
	tests := []struct {
		name   string
		status int
		ct     string
		body   string
		want   bool
	}{
		{"401", 401, "", "", true},
		{"gateway AG8001", 200, "application/json", `{"success":false,"message":"Invalid Token","errorCode":"AG8001","data":""}`, true},
		{"service AG8002", 200, "application/json", `{"status":false,"message":"Token Expired","errorcode":"AG8002","data":null}`, true},
		{"403 AG8003", 403, "application/json", `{"status":false,"message":"Token missing","errorcode":"AG8003","data":null}`, true},
		{"token exception", 403, "application/json", `{"status":"error","error_type":"TokenException","message":"x"}`, true},
		{"token exception 200", 200, "application/json", `{"status":"error","error_type":"TokenException","message":"x"}`, false},
		{"order error", 200, "application/json", `{"status":false,"message":"Order not found","errorcode":"AB1013","data":null}`, false},
		{"success", 200, "application/json", `{"status":true,"message":"SUCCESS","errorcode":"","data":{}}`, false},
		{"csv", 200, "text/csv", `errorcode,AG8001`, false},
		{"binary", 200, "application/octet-stream", `{"errorcode":"AG8001"}`, false},
	}
	for _, tc := range tests {
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{}}
		if tc.ct != "" {
			resp.Header.Set("Content-Type", tc.ct)
		}
		if got := b.Rejected(resp, func() []byte { return []byte(tc.body) }); got != tc.want {
			t.Errorf("%s: Rejected = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestBypass(t *testing.T) {
	b := newEnv(t).broker(t, nil)
	for p, want := range map[string]bool{
		LoginPath: true, RenewPath: true, "/REST/Auth/x": true, "/rest/authx": false,
		"/rest/secure/angelbroking/user/v1/logout": false, "/rest/auth": false,
	} {
		if got := b.Bypass(&http.Request{URL: &url.URL{Path: p}}); got != want {
			t.Errorf("Bypass(%q) = %v, want %v", p, got, want)
		}
	}
}

// An answer that is not SmartAPI's envelope is a broker fault: a plain
// error wrapping ErrUnreadable, not a *auth.LoginError the Cache would hold.
func TestLoginUnreadableAnswer(t *testing.T) {
	for name, answer := range map[string]struct {
		status int
		body   string
	}{
		"html 502":    {http.StatusBadGateway, "<html><body>502 Bad Gateway</body></html>"},
		"cut off 200": {http.StatusOK, `{"status":tr`},
	} {
		e := newEnv(t, func(http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(answer.status)
				_, _ = io.WriteString(w, answer.body)
			})
		})
		_, err := e.broker(t, nil).Login(t.Context())
		var le *auth.LoginError
		if !errors.Is(err, ErrUnreadable) || errors.As(err, &le) || !strings.Contains(err.Error(), `"ao"`) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
