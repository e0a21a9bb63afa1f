package pocketful

import (
	"context"
	"crypto/tls"
	"encoding/base64"
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
	"github.com/authproxy/authproxy/internal/brokertest"
	"github.com/authproxy/authproxy/internal/fakebroker/fakeca"
	fakepf "github.com/authproxy/authproxy/internal/fakebroker/pocketful"
)

type clock = authtest.Clock
type syncBuffer = authtest.LogBuffer

const (
	testAppID    = "Ybg3ab2VXM"
	testSecret   = "gB2sxoP9C3XHoA17oyVkinj3KxkOXBwUBdHnk6oatoq2h5DWyVcbUhnS7QoNIcyZ"
	testClientID = "YA0002"
	testRedirect = "http://127.0.0.1:8899/callback/pf"
)

// ist is 10:00 IST on a weekday: far from midnight.
func morningIST() time.Time {
	return time.Date(2026, 3, 10, 10, 0, 0, 0, time.FixedZone("IST", 5*3600+1800))
}

// env is the fake Pocketful over TLS for the production host name, and a
// client that trusts the fake CA and dials the fake whatever the host.
type env struct {
	ca     *fakeca.CA
	srv    *fakeca.Server
	fake   *fakepf.Fake
	clk    *clock
	client *auth.HTTPClient
	tr     *http.Transport
	logs   *syncBuffer
	logger *slog.Logger
}

func newEnv(t *testing.T, wrap func(http.Handler) http.Handler) *env {
	t.Helper()
	ca, err := fakeca.New()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{ca: ca, clk: authtest.Fixed(morningIST()), logs: &syncBuffer{}}
	e.fake = fakepf.New(fakepf.Options{
		AppID: testAppID, AppSecret: testSecret, RedirectURI: testRedirect, ClientID: testClientID, Now: e.clk.Now,
	})
	var h http.Handler = e.fake
	if wrap != nil {
		h = wrap(h)
	}
	e.srv, err = ca.Serve(h, Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.srv.Close() })
	e.logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.tr = e.transport(ca)
	t.Cleanup(e.tr.CloseIdleConnections)
	e.client = auth.NewHTTPClient(e.tr, e.logger, auth.RetryOptions{WaitMin: 5 * time.Millisecond, WaitMax: 20 * time.Millisecond})
	return e
}

func (e *env) transport(ca *fakeca.CA) *http.Transport {
	tc := &tls.Config{}
	if ca != nil {
		tc.RootCAs = ca.CertPool()
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{
		TLSClientConfig:   tc,
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, e.srv.Addr)
		},
	}
}

func (e *env) broker(t *testing.T, mutate func(*Config)) *Broker {
	t.Helper()
	cfg := Config{Account: "pf", ClientID: testAppID, ClientSecret: testSecret, FillClientID: true}
	if mutate != nil {
		mutate(&cfg)
	}
	b, err := New(cfg, e.client, e.clk.Now, e.logger)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// authorize plays the browser on the consent page: it follows AuthURL to
// the fake and returns the callback query it redirects to.
func (e *env) authorize(t *testing.T, b *Broker, state, redirectURI string) url.Values {
	t.Helper()
	return brokertest.Callback(t, e.tr, "consent page", b.AuthURL(state, redirectURI), redirectURI)
}

func (e *env) assertNoSecrets(t *testing.T, where, s string, extra ...string) {
	t.Helper()
	for _, v := range append([]string{testSecret}, extra...) {
		if len(v) >= 4 && strings.Contains(s, v) {
			t.Errorf("%s leaks a secret %q...: %s", where, v[:4], s)
		}
	}
}

func TestNew(t *testing.T) {
	e := newEnv(t, nil)
	for name, cfg := range map[string]Config{
		"no account":   {ClientID: testAppID, ClientSecret: testSecret},
		"no client_id": {Account: "pf", ClientSecret: testSecret},
		"no secret":    {Account: "pf", ClientID: testAppID},
	} {
		if _, err := New(cfg, e.client, nil, nil); err == nil {
			t.Errorf("%s: New succeeded", name)
		} else {
			e.assertNoSecrets(t, name, err.Error())
		}
	}
	if _, err := New(Config{Account: "pf", ClientID: testAppID, ClientSecret: testSecret}, nil, nil, nil); err == nil {
		t.Error("New without a client succeeded")
	}
}

func TestLoginNeedsBrowser(t *testing.T) {
	e := newEnv(t, nil)
	b := e.broker(t, nil)
	if !b.NeedsBrowser() {
		t.Error("NeedsBrowser() = false")
	}
	tok, err := b.Login(context.Background())
	if tok != nil || !errors.Is(err, auth.ErrLoginRequired) {
		t.Fatalf("Login = %v, %v; want ErrLoginRequired", tok, err)
	}
	if !strings.Contains(err.Error(), `"pf"`) {
		t.Errorf("error does not name the account: %v", err)
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("Login sent %d requests", n)
	}
}

func TestAuthURL(t *testing.T) {
	e := newEnv(t, nil)
	b := e.broker(t, nil)
	raw := b.AuthURL("bdkjbcjhdbsvhj", "http://127.0.0.1:8000/cb?x=1")
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "https" || u.Host != Host || u.Path != AuthPath {
		t.Errorf("AuthURL base = %s://%s%s", u.Scheme, u.Host, u.Path)
	}
	want := url.Values{
		"client_id":     {testAppID},
		"redirect_uri":  {"http://127.0.0.1:8000/cb?x=1"},
		"response_type": {"code"},
		"scope":         {"orders holdings"},
		"state":         {"bdkjbcjhdbsvhj"},
	}
	got := u.Query()
	if len(got) != len(want) {
		t.Errorf("AuthURL parameters = %v, want %v", got, want)
	}
	for k, v := range want {
		if got.Get(k) != v[0] || len(got[k]) != 1 {
			t.Errorf("%s = %q, want %q", k, got[k], v[0])
		}
	}
	if strings.Contains(raw, "redirect-uri") || strings.Contains(raw, testSecret) {
		t.Errorf("AuthURL = %s", raw)
	}
	b2 := e.broker(t, func(c *Config) { c.Scope = "  orders   holdings offline " })
	if s := mustParse(t, b2.AuthURL("12345678", testRedirect)).Query().Get("scope"); s != "orders holdings offline" {
		t.Errorf("scope = %q", s)
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestExchangeOK(t *testing.T) {
	e := newEnv(t, nil)
	b := e.broker(t, nil)
	cb := e.authorize(t, b, "state-1234567", testRedirect)
	if cb.Get("state") != "state-1234567" || cb.Get("code") == "" || cb.Get("scope") != "orders holdings" {
		t.Fatalf("callback query = %v", cb)
	}
	tok, err := b.Exchange(context.Background(), testRedirect, cb)
	if err != nil {
		t.Fatal(err)
	}
	if !e.fake.ValidToken(tok.Access.Reveal()) {
		t.Error("Exchange returned a token the fake did not issue")
	}
	now := e.clk.Now()
	if !tok.Obtained.Equal(now) {
		t.Errorf("Obtained = %v, want %v", tok.Obtained, now)
	}
	// 10:00 IST + 86399s is after midnight: the token dies at midnight.
	if m := NextMidnightIST(now); !tok.Expiry.Equal(m) || tok.Lifetime() != 14*time.Hour {
		t.Errorf("Expiry = %v, want midnight IST %v", tok.Expiry, m)
	}
	if tok.Meta[MetaClientID] != testClientID || tok.Meta[MetaScope] != "orders holdings" {
		t.Errorf("Meta = %v", tok.Meta)
	}
	c := e.fake.Counts()
	if c.Exchanges != 1 || c.TradingInfo != 1 || c.ExchangeFailures != 0 {
		t.Errorf("fake counts = %+v", c)
	}

	// The token request: Basic auth, a form, exactly the three fields.
	var tokReq *fakepf.Recorded
	for _, r := range e.fake.Requests() {
		if r.Path == TokenPath {
			r := r
			tokReq = &r
		}
	}
	if tokReq == nil {
		t.Fatal("no token request recorded")
	}
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(testAppID+":"+testSecret))
	if tokReq.Authorization != wantAuth || tokReq.Method != http.MethodPost {
		t.Errorf("token request %s Authorization = %q", tokReq.Method, tokReq.Authorization)
	}
	if ct := tokReq.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type = %q", ct)
	}
	form, err := url.ParseQuery(string(tokReq.Body))
	if err != nil {
		t.Fatal(err)
	}
	if len(form) != 3 || form.Get("grant_type") != "authorization_code" || form.Get("code") != cb.Get("code") ||
		form.Get("redirect_uri") != testRedirect {
		t.Errorf("token form = %v", form)
	}
	e.assertNoSecrets(t, "logs", e.logs.String(), cb.Get("code"), tok.Access.Reveal())
}

func TestExpiryNearMidnight(t *testing.T) {
	e := newEnv(t, nil)
	ist := time.FixedZone("IST", 5*3600+1800)
	e.clk.Set(time.Date(2026, 3, 10, 23, 0, 0, 0, ist))
	b := e.broker(t, nil)
	tok, err := b.Exchange(context.Background(), testRedirect, e.authorize(t, b, "state-1234567", testRedirect))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 3, 11, 0, 0, 0, 0, ist); !tok.Expiry.Equal(want) {
		t.Errorf("Expiry = %v, want %v", tok.Expiry, want)
	}
	if tok.Lifetime() != time.Hour {
		t.Errorf("Lifetime = %v, want 1h", tok.Lifetime())
	}
}

func TestExpiry(t *testing.T) {
	ist := time.FixedZone("IST", 5*3600+1800)
	for _, tc := range []struct {
		obtained time.Time
		lifetime time.Duration
		want     time.Time
	}{
		{time.Date(2026, 3, 10, 10, 0, 0, 0, ist), 86399 * time.Second, time.Date(2026, 3, 11, 0, 0, 0, 0, ist)},
		{time.Date(2026, 3, 10, 10, 0, 0, 0, ist), time.Hour, time.Date(2026, 3, 10, 11, 0, 0, 0, ist)},
		{time.Date(2026, 3, 10, 10, 0, 0, 0, ist), 0, time.Date(2026, 3, 11, 0, 0, 0, 0, ist)},
		// 20:00 UTC is 01:30 IST the next day.
		{time.Date(2026, 3, 10, 20, 0, 0, 0, time.UTC), 86399 * time.Second, time.Date(2026, 3, 12, 0, 0, 0, 0, ist)},
		// Exactly midnight: the next one.
		{time.Date(2026, 3, 31, 0, 0, 0, 0, ist), 48 * time.Hour, time.Date(2026, 4, 1, 0, 0, 0, 0, ist)},
		{time.Date(2026, 12, 31, 23, 59, 59, 0, ist), 86399 * time.Second, time.Date(2027, 1, 1, 0, 0, 0, 0, ist)},
	} {
		if got := Expiry(tc.obtained, tc.lifetime); !got.Equal(tc.want) {
			t.Errorf("Expiry(%v, %v) = %v, want %v", tc.obtained, tc.lifetime, got, tc.want)
		}
	}
}

func TestExchangeRefused(t *testing.T) {
	e := newEnv(t, nil)
	b := e.broker(t, nil)

	cb := e.authorize(t, b, "state-1234567", testRedirect)
	if _, err := b.Exchange(context.Background(), testRedirect, cb); err != nil {
		t.Fatal(err)
	}
	wantLoginError := func(name string, err error, status int, text string, extra ...string) {
		t.Helper()
		var le *auth.LoginError
		if !errors.As(err, &le) {
			t.Fatalf("%s: error %v (%T), want *auth.LoginError", name, err, err)
		}
		if le.Account != "pf" || le.StatusCode != status || !strings.Contains(le.Message, text) {
			t.Errorf("%s: LoginError = %+v, want status %d and %q", name, le, status, text)
		}
		e.assertNoSecrets(t, name, err.Error(), extra...)
	}
	// A code works once.
	_, err := b.Exchange(context.Background(), testRedirect, cb)
	wantLoginError("replayed code", err, http.StatusBadRequest, "invalid_grant", cb.Get("code"))

	// The redirect_uri must be the one of the authorization request.
	cb = e.authorize(t, b, "state-1234567", testRedirect)
	_, err = b.Exchange(context.Background(), "http://127.0.0.1:9999/callback/pf", cb)
	wantLoginError("other redirect", err, http.StatusBadRequest, "redirect_uri", cb.Get("code"))

	// Codes are short-lived.
	cb = e.authorize(t, b, "state-1234567", testRedirect)
	e.clk.Advance(fakepf.DefaultCodeLifetime + time.Second)
	_, err = b.Exchange(context.Background(), testRedirect, cb)
	wantLoginError("expired code", err, http.StatusBadRequest, "expired", cb.Get("code"))

	// A wrong secret is refused with invalid_client.
	bad := e.broker(t, func(c *Config) { c.ClientSecret = "not-the-secret" })
	cb = e.authorize(t, bad, "state-1234567", testRedirect)
	_, err = bad.Exchange(context.Background(), testRedirect, cb)
	wantLoginError("wrong secret", err, http.StatusUnauthorized, "invalid_client", "not-the-secret", cb.Get("code"))

	// The broker's own refusal on the callback, and a callback with no code.
	_, err = b.Exchange(context.Background(), testRedirect, url.Values{"error": {"access_denied"}, "error_description": {"the user said no"}})
	wantLoginError("access denied", err, 0, "access_denied: the user said no")
	_, err = b.Exchange(context.Background(), testRedirect, url.Values{"state": {"x"}})
	wantLoginError("no code", err, 0, "no authorization code")

	if c := e.fake.Counts(); c.Exchanges != 1 || c.ExchangeFailures != 4 {
		t.Errorf("fake counts = %+v", c)
	}
	e.assertNoSecrets(t, "logs", e.logs.String())
}

func TestConsentPageIsStrict(t *testing.T) {
	e := newEnv(t, nil)
	c := &http.Client{Transport: e.tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(q string) (int, string) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, BaseURL+AuthPath+"?"+q, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Location")
	}
	ok := url.Values{"client_id": {testAppID}, "redirect_uri": {testRedirect}, "response_type": {"code"},
		"scope": {"orders holdings"}, "state": {"12345678"}}
	if st, loc := get(ok.Encode()); st != http.StatusFound || !strings.Contains(loc, "code=") {
		t.Fatalf("valid request: %d %s", st, loc)
	}
	// The docs' misspelt parameter is refused, as is any other redirect.
	misspelt := url.Values{"client_id": {testAppID}, "redirect-uri": {testRedirect}, "response_type": {"code"},
		"scope": {"orders holdings"}, "state": {"12345678"}}
	if st, _ := get(misspelt.Encode()); st != http.StatusBadRequest {
		t.Errorf("redirect-uri: HTTP %d, want 400", st)
	}
	for name, mut := range map[string]func(url.Values){
		"short state":   func(v url.Values) { v.Set("state", "1234567") },
		"token type":    func(v url.Values) { v.Set("response_type", "token") },
		"unknown scope": func(v url.Values) { v.Set("scope", "orders admin") },
	} {
		v := url.Values{}
		for k, vv := range ok {
			v[k] = append([]string(nil), vv...)
		}
		mut(v)
		st, loc := get(v.Encode())
		if st != http.StatusFound || !strings.Contains(loc, "error=") || strings.Contains(loc, "code=") {
			t.Errorf("%s: %d %s, want an error redirect", name, st, loc)
		}
	}
	for name, mut := range map[string]func(url.Values){
		"other redirect": func(v url.Values) { v.Set("redirect_uri", testRedirect+"x") },
		"other client":   func(v url.Values) { v.Set("client_id", "nope") },
	} {
		v := url.Values{}
		for k, vv := range ok {
			v[k] = append([]string(nil), vv...)
		}
		mut(v)
		if st, _ := get(v.Encode()); st != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d, want 400", name, st)
		}
	}
}

func TestExchangeTradingInfoFailure(t *testing.T) {
	e := newEnv(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == TradingInfoPath {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadGateway)
				_, _ = w.Write([]byte(`{"status":"error","error_type":"GeneralException","message":"backend down"}`))
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	b := e.broker(t, nil)
	tok, err := b.Exchange(context.Background(), testRedirect, e.authorize(t, b, "state-1234567", testRedirect))
	if err != nil {
		t.Fatalf("a trading_info failure failed the login: %v", err)
	}
	if _, ok := tok.Meta[MetaClientID]; ok {
		t.Errorf("client_id set: %v", tok.Meta)
	}
	if !strings.Contains(e.logs.String(), "trading_info failed") || !strings.Contains(e.logs.String(), "backend down") {
		t.Errorf("no warning logged:\n%s", e.logs.String())
	}
	e.assertNoSecrets(t, "logs", e.logs.String(), tok.Access.Reveal())

	// With no client id, Inject leaves the query alone.
	r := httptestRequest(t, http.MethodGet, "https://"+Host+"/api/v1/holdings", nil)
	if err := b.Inject(r, tok); err != nil {
		t.Fatal(err)
	}
	if r.URL.RawQuery != "" {
		t.Errorf("query = %q", r.URL.RawQuery)
	}
}

func TestExchangeUntrustedCertificate(t *testing.T) {
	e := newEnv(t, nil)
	other, err := fakeca.New()
	if err != nil {
		t.Fatal(err)
	}
	tr := e.transport(other)
	defer tr.CloseIdleConnections()
	client := auth.NewHTTPClient(tr, e.logger, auth.RetryOptions{})
	b, err := New(Config{Account: "pf", ClientID: testAppID, ClientSecret: testSecret}, client, e.clk.Now, e.logger)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Exchange(context.Background(), testRedirect, url.Values{"code": {"abcdefgh.ijkl"}, "state": {"12345678"}})
	var le *auth.LoginError
	if err == nil || errors.As(err, &le) || !auth.IsTLSError(err) {
		t.Fatalf("Exchange = %v; want a TLS error", err)
	}
	if c := e.fake.Counts(); c.Exchanges+c.ExchangeFailures != 0 {
		t.Errorf("the untrusted server got a token request: %+v", c)
	}
}

func httptestRequest(t *testing.T, method, target string, body io.Reader) *http.Request {
	t.Helper()
	r, err := http.NewRequestWithContext(context.Background(), method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestInject(t *testing.T) {
	e := newEnv(t, nil)
	b := e.broker(t, nil)
	tok := &auth.Token{Access: "tok.en", Meta: map[string]string{MetaClientID: testClientID}}
	for _, tc := range []struct {
		method, target string
		fill           bool
		wantQuery      string
	}{
		{"GET", "/api/v1/holdings", true, "client_id=YA0002"},
		{"GET", "/api/v1/orders?type=pending", true, "type=pending&client_id=YA0002"},
		{"GET", "/api/v1/orders?client_id=&type=completed", true, "type=completed&client_id=YA0002"},
		{"GET", "/api/v1/orders?type=pending&client_id=OTHER", true, "type=pending&client_id=OTHER"},
		{"GET", "/api/v2/funds/view?type=all", true, "type=all&client_id=YA0002"},
		{"GET", "/api/v1/funds/view", true, "client_id=YA0002"},
		{"GET", "/api/v1/user/profile", true, "client_id=YA0002"},
		{"GET", "/api/v1/trades", true, "client_id=YA0002"},
		{"GET", "/api/v1/positions?type=live", true, "type=live&client_id=YA0002"},
		{"GET", "/api/v1/order/OMS1/history", true, "client_id=YA0002"},
		{"GET", "/api/v1/event/gtt", true, "client_id=YA0002"},
		{"GET", "/api/v1/search?key=INFY", true, "key=INFY"},
		{"GET", "/api/v1/order/a/b/history", true, ""},
		{"GET", "/api/v1/user/trading_info", true, ""},
		{"POST", "/api/v1/orders", true, ""},
		{"DELETE", "/api/v1/orders/OMS1", true, ""},
		{"GET", "/api/v1/holdings", false, ""},
		{"GET", "/api/v1/holdings?x=a%20b", true, "x=a%20b&client_id=YA0002"},
	} {
		bb := b
		if !tc.fill {
			bb = e.broker(t, func(c *Config) { c.FillClientID = false })
		}
		r := httptestRequest(t, tc.method, "https://"+Host+tc.target, nil)
		r.Header.Set("Authorization", "Bearer stale")
		if err := bb.Inject(r, tok); err != nil {
			t.Fatal(err)
		}
		if r.URL.RawQuery != tc.wantQuery {
			t.Errorf("%s %s (fill %v): query %q, want %q", tc.method, tc.target, tc.fill, r.URL.RawQuery, tc.wantQuery)
		}
		n := 0
		for k, v := range r.Header {
			if strings.EqualFold(k, "Authorization") {
				n += len(v)
			}
		}
		if n != 1 || r.Header.Get("Authorization") != "Bearer tok.en" {
			t.Errorf("%s: Authorization headers = %v", tc.target, r.Header)
		}
	}

	// A token without a client id never fills.
	r := httptestRequest(t, "GET", "https://"+Host+"/api/v1/holdings", nil)
	if err := b.Inject(r, &auth.Token{Access: "tok.en"}); err != nil || r.URL.RawQuery != "" {
		t.Errorf("no client id: err %v, query %q", err, r.URL.RawQuery)
	}
	// The feed WebSocket authenticates in its query.
	r = httptestRequest(t, "GET", "https://"+Host+"/ws/v1/feeds?access_token=old&login_id=", nil)
	if err := b.Inject(r, tok); err != nil {
		t.Fatal(err)
	}
	if q := r.URL.Query(); q.Get("access_token") != "tok.en" || q.Get("login_id") != testClientID || len(q["access_token"]) != 1 {
		t.Errorf("feed query = %q", r.URL.RawQuery)
	}
	if err := b.Inject(httptestRequest(t, "GET", "https://"+Host+"/", nil), nil); err == nil {
		t.Error("Inject without a token succeeded")
	}
}

func TestRejected(t *testing.T) {
	e := newEnv(t, nil)
	b := e.broker(t, nil)
	for _, tc := range []struct {
		status int
		body   string
		want   bool
	}{
		{401, "", true},
		{401, `{"status":"error","error_type":"TokenException","message":"x"}`, true},
		{403, `{"status":"error","error_type":"TokenException","message":"expired"}`, true},
		{403, ` {"error_type":"tokenexception"}`, true},
		{403, `{"status":"error","error_type":"PermissionException","message":"static IP"}`, false},
		{403, `<html>forbidden</html>`, false},
		{403, ``, false},
		{200, `{"status":"error","error_type":"TokenException"}`, false},
		{400, `{"status":"error","error_type":"TokenException"}`, false},
	} {
		resp := &http.Response{StatusCode: tc.status, Body: io.NopCloser(strings.NewReader(tc.body))}
		peek := func() []byte { return []byte(tc.body) }
		if got := b.Rejected(resp, peek); got != tc.want {
			t.Errorf("Rejected(%d, %s) = %v, want %v", tc.status, tc.body, got, tc.want)
		}
	}
	if b.Rejected(&http.Response{StatusCode: 403}, nil) {
		t.Error("Rejected(403, nil peek) = true")
	}
}

func TestBypass(t *testing.T) {
	e := newEnv(t, nil)
	b := e.broker(t, nil)
	for p, want := range map[string]bool{
		"/oauth2/auth":                    true,
		"/oauth2/token":                   true,
		"/OAuth2/Auth":                    true,
		"/oauth2/sessions/logout":         true,
		"/api/../oauth2/auth":             true,
		"/oauth2":                         false,
		"/oauth2/":                        false,
		"/oauth2/../api/v1/holdings":      false,
		"/oauth2/%2e%2e/api/v1/holdings":  false,
		"/api/v1/oauth2/auth":             false,
		"/api/v1/holdings":                false,
		"/oauth2x/auth":                   false,
		"/ws/v1/feeds":                    false,
		"/oauth2/auth/../../api/v1/trade": false,
	} {
		r := httptestRequest(t, "GET", "https://"+Host+p, nil)
		if got := b.Bypass(r); got != want {
			t.Errorf("Bypass(%s) = %v, want %v", p, got, want)
		}
	}
}

// TestCacheLifecycle drives the broker the way the proxy does: no token
// means "needs login"; an interactive login serves; a revoked token is
// rejected and the relogin asks for the browser again; after midnight IST
// the token is gone.
func TestCacheLifecycle(t *testing.T) {
	e := newEnv(t, nil)
	b := e.broker(t, nil)
	c := auth.NewCache("pf", b, nil, auth.CacheOptions{Now: e.clk.Now, Logger: e.logger})
	ctx := context.Background()
	if st := c.Status(); st.State != auth.StateNeedsLogin {
		t.Errorf("state without a token = %q, want %q", st.State, auth.StateNeedsLogin)
	}
	if _, err := c.Token(ctx); !errors.Is(err, auth.ErrLoginRequired) {
		t.Fatalf("Token before login: %v", err)
	}

	tok, err := b.Exchange(ctx, testRedirect, e.authorize(t, b, "state-1234567", testRedirect))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if st := c.Status(); st.State != auth.StateReady {
		t.Errorf("state after login = %q", st.State)
	}

	call := func(tok *auth.Token) *http.Response {
		t.Helper()
		r := httptestRequest(t, http.MethodGet, BaseURL+"/api/v1/holdings", nil)
		if err := b.Inject(r, tok); err != nil {
			t.Fatal(err)
		}
		resp, err := e.tr.RoundTrip(r)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	got, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resp := call(got)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || b.Rejected(resp, func() []byte { return body }) {
		t.Fatalf("API call: HTTP %d %s", resp.StatusCode, body)
	}

	e.fake.RevokeAll()
	resp = call(got)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !b.Rejected(resp, func() []byte { return body }) {
		t.Fatalf("revoked token: HTTP %d %s, Rejected false", resp.StatusCode, body)
	}
	if _, err := c.Relogin(ctx, got); !errors.Is(err, auth.ErrLoginRequired) {
		t.Fatalf("Relogin: %v, want ErrLoginRequired", err)
	}
	if st := c.Status(); st.State != auth.StateNeedsLogin {
		t.Errorf("state after rejection = %q, want %q", st.State, auth.StateNeedsLogin)
	}

	// A fresh login, then the clock passes midnight IST.
	tok, err = b.Exchange(ctx, testRedirect, e.authorize(t, b, "state-7654321", testRedirect))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, tok); err != nil {
		t.Fatal(err)
	}
	e.clk.Set(NextMidnightIST(e.clk.Now()).Add(time.Second))
	if _, err := c.Token(ctx); !errors.Is(err, auth.ErrLoginRequired) {
		t.Fatalf("Token after midnight: %v, want ErrLoginRequired", err)
	}
	if st := c.Status(); st.State != auth.StateNeedsLogin || st.HasToken {
		t.Errorf("state after midnight = %q (has token %v)", st.State, st.HasToken)
	}
	resp = call(tok)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("the fake accepted a token after midnight: HTTP %d", resp.StatusCode)
	}
	e.assertNoSecrets(t, "logs", e.logs.String(), tok.Access.Reveal(), got.Access.Reveal())
}
