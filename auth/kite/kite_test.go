package kite

import (
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
	fakekite "github.com/authproxy/authproxy/internal/fakebroker/kite"
)

const (
	testKey      = "xk3a9q2w8e7r6t5y"
	testSecret   = "s3cr3tS3cr3tS3cr3tS3cr3tS3cr3t00"
	testUser     = "ZX1234"
	testRedirect = "http://127.0.0.1:8899/callback/kite"
)

type env struct {
	brokertest.Env
	fake *fakekite.Fake
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clk := authtest.Fixed(time.Date(2026, 3, 10, 10, 0, 0, 0, auth.IST()))
	fake := fakekite.New(fakekite.Options{APIKey: testKey, APISecret: testSecret, RedirectURL: testRedirect, UserID: testUser, Now: clk.Now})
	return &env{Env: brokertest.Serve(t, clk, fake, APIHost, TickerHost, LoginHost), fake: fake}
}

func (e *env) broker(t *testing.T) *Broker {
	t.Helper()
	b, err := New(Config{Account: "zk", APIKey: testKey, APISecret: testSecret}, e.Client, e.Clock.Now, e.Logger)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// login plays the person's browser on Kite's login page and returns the
// callback query.
func (e *env) login(t *testing.T, b *Broker, state string) url.Values {
	t.Helper()
	return brokertest.Callback(t, e.Tr, "login page", b.AuthURL(state, testRedirect), testRedirect)
}

// call sends a request through Inject to the fake and returns status and body.
func (e *env) call(t *testing.T, b *Broker, tok *auth.Token, method, target string, mutate func(*http.Request)) (int, string, *http.Response) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, target, nil)
	if mutate != nil {
		mutate(req)
	}
	if err := b.Inject(req, tok); err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: e.Tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body), resp
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
	e := newEnv(t)
	for name, cfg := range map[string]Config{
		"no account": {APIKey: testKey, APISecret: testSecret},
		"no key":     {Account: "zk", APISecret: testSecret},
		"no secret":  {Account: "zk", APIKey: testKey},
		"bad key":    {Account: "zk", APIKey: "a b", APISecret: testSecret},
	} {
		if _, err := New(cfg, e.Client, nil, nil); err == nil {
			t.Errorf("%s: New succeeded", name)
		} else {
			e.assertNoSecrets(t, name, err.Error())
		}
	}
	if _, err := New(Config{Account: "zk", APIKey: testKey, APISecret: testSecret}, nil, nil, nil); err == nil {
		t.Error("New without a client succeeded")
	}
}

func TestLoginNeedsBrowser(t *testing.T) {
	e := newEnv(t)
	b := e.broker(t)
	if !b.NeedsBrowser() {
		t.Error("NeedsBrowser() = false")
	}
	tok, err := b.Login(t.Context())
	if tok != nil || !errors.Is(err, auth.ErrLoginRequired) || !strings.Contains(err.Error(), `"zk"`) {
		t.Fatalf("Login = %v, %v; want ErrLoginRequired naming the account", tok, err)
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("Login sent %d requests", n)
	}
}

func TestAuthURL(t *testing.T) {
	b := newEnv(t).broker(t)
	u, err := url.Parse(b.AuthURL("st4te-xyz", testRedirect))
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme+"://"+u.Host+u.Path != LoginURL {
		t.Errorf("AuthURL base = %s", u)
	}
	q := u.Query()
	if q.Get("v") != "3" || q.Get("api_key") != testKey || q.Get("redirect_params") != "state=st4te-xyz" || len(q) != 3 {
		t.Errorf("AuthURL query = %v", q)
	}
}

func TestExchangeAndUse(t *testing.T) {
	e := newEnv(t)
	b := e.broker(t)
	cb := e.login(t, b, "st4te-xyz")
	if cb.Get("state") != "st4te-xyz" {
		t.Fatalf("state did not come back: %v", cb)
	}
	tok, err := b.Exchange(t.Context(), testRedirect, cb)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 3, 11, 6, 0, 0, 0, auth.IST()); !tok.Expiry.Equal(want) {
		t.Errorf("expiry %s, want %s", tok.Expiry, want)
	}
	if tok.Meta[MetaUserID] != testUser || !tok.Obtained.Equal(e.Clock.Now()) {
		t.Errorf("token meta %v obtained %s", tok.Meta, tok.Obtained)
	}
	reqs := e.fake.Requests()
	last := reqs[len(reqs)-1]
	if last.Path != SessionPath || last.Header.Get("X-Kite-Version") != "3" {
		t.Errorf("session request %+v", last)
	}
	form, _ := url.ParseQuery(string(last.Body))
	if form.Get("checksum") != Checksum(testKey, cb.Get("request_token"), testSecret) || strings.Contains(string(last.Body), testSecret) {
		t.Errorf("session form %v", form)
	}
	// The token works on the API, with and without the client's own version header.
	st, body, _ := e.call(t, b, tok, http.MethodGet, "https://"+APIHost+"/user/profile", func(r *http.Request) {
		r.Header.Set("Authorization", "token placeholder:placeholder")
	})
	if st != http.StatusOK || !strings.Contains(body, testUser) {
		t.Fatalf("profile: %d %s", st, body)
	}
	e.assertNoSecrets(t, "logs", e.Logs.String(), tok.Access.Reveal(), cb.Get("request_token"))

	// A second exchange of the same request token is refused, like Kite does.
	_, err = b.Exchange(t.Context(), testRedirect, cb)
	var le *auth.LoginError
	if !errors.As(err, &le) || le.StatusCode != http.StatusForbidden || !strings.Contains(le.Message, "TokenException") {
		t.Fatalf("reused request token: %v", err)
	}
}

func TestExchangeRefusals(t *testing.T) {
	e := newEnv(t)
	b := e.broker(t)
	for name, cb := range map[string]url.Values{
		"no token":     {"status": {"success"}},
		"cancelled":    {"status": {"cancelled"}, "request_token": {"x"}},
		"crlf":         {"request_token": {"a\r\nb"}},
		"unknown":      {"request_token": {"deadbeef"}, "status": {"success"}},
		"wrong secret": nil,
	} {
		bb := b
		if cb == nil {
			var err error
			bb, err = New(Config{Account: "zk", APIKey: testKey, APISecret: "wrong-secret"}, e.Client, e.Clock.Now, nil)
			if err != nil {
				t.Fatal(err)
			}
			cb = url.Values{"request_token": {e.fake.IssueRequestToken()}}
		}
		_, err := bb.Exchange(t.Context(), testRedirect, cb)
		var le *auth.LoginError
		if !errors.As(err, &le) || le.Account != "zk" {
			t.Errorf("%s: %v, want a LoginError", name, err)
			continue
		}
		e.assertNoSecrets(t, name, err.Error(), "wrong-secret")
	}
	if c := e.fake.Counts(); c.Sessions != 0 || c.SessionFailures != 2 {
		t.Errorf("counts %+v: only the two well-formed callbacks should reach Kite", c)
	}
}

func TestExpiredRequestToken(t *testing.T) {
	e := newEnv(t)
	b := e.broker(t)
	rt := e.fake.IssueRequestToken()
	e.Clock.Advance(fakekite.DefaultRequestTokenLifetime + time.Second)
	if _, err := b.Exchange(t.Context(), testRedirect, url.Values{"request_token": {rt}}); err == nil {
		t.Fatal("an expired request token was exchanged")
	}
}

func TestInject(t *testing.T) {
	b := newEnv(t).broker(t)
	tok := &auth.Token{Access: "acc355"}
	r, _ := http.NewRequest(http.MethodGet, "https://api.kite.trade/orders", nil)
	r.Header.Add("Authorization", "Bearer z")
	if err := b.Inject(r, tok); err != nil {
		t.Fatal(err)
	}
	if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != "token "+testKey+":acc355" || brokertest.AuthKeys(r.Header) != 1 {
		t.Errorf("Authorization = %v (%v)", got, r.Header)
	}
	if r.Header.Get("X-Kite-Version") != "3" {
		t.Error("X-Kite-Version not added")
	}
	r, _ = http.NewRequest(http.MethodGet, "https://api.kite.trade/orders", nil)
	r.Header.Set("X-Kite-Version", "3")
	_ = b.Inject(r, tok)
	if got := r.Header.Values("X-Kite-Version"); len(got) != 1 {
		t.Errorf("X-Kite-Version = %v", got)
	}
	r, _ = http.NewRequest(http.MethodGet, "https://WS.Kite.Trade:443/?api_key=placeholder&access_token=x&foo=1", nil)
	_ = b.Inject(r, tok)
	q := r.URL.Query()
	if q.Get("api_key") != testKey || q.Get("access_token") != "acc355" || q.Get("foo") != "1" || len(q["access_token"]) != 1 {
		t.Errorf("ticker query = %v", q)
	}
	if err := b.Inject(r, nil); err == nil {
		t.Error("Inject without a token succeeded")
	}
}

func TestRejected(t *testing.T) {
	b := newEnv(t).broker(t)
	api, _ := http.NewRequest(http.MethodGet, "https://api.kite.trade/orders", nil)
	ticker, _ := http.NewRequest(http.MethodGet, "https://ws.kite.trade/", nil)
	tests := []struct {
		name   string
		status int
		req    *http.Request
		body   string
		want   bool
	}{
		{"token exception", 403, api, `{"status":"error","message":"Incorrect api_key or access_token.","data":null,"error_type":"TokenException"}`, true},
		{"permission", 403, api, `{"status":"error","message":"x","error_type":"PermissionException"}`, false},
		{"html 403", 403, api, `<html>forbidden</html>`, false},
		{"200 with token exception text", 200, api, `{"status":"error","error_type":"TokenException"}`, false},
		{"401", 401, api, ``, false},
		{"ticker 403", 403, ticker, `Forbidden`, true},
	}
	for _, tc := range tests {
		resp := &http.Response{StatusCode: tc.status, Request: tc.req, Header: http.Header{}}
		if got := b.Rejected(resp, func() []byte { return []byte(tc.body) }); got != tc.want {
			t.Errorf("%s: Rejected = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRevokedTokenIsRejected(t *testing.T) {
	e := newEnv(t)
	b := e.broker(t)
	tok, err := b.Exchange(t.Context(), testRedirect, e.login(t, b, "st4te-xyz"))
	if err != nil {
		t.Fatal(err)
	}
	e.fake.RevokeAll()
	st, body, resp := e.call(t, b, tok, http.MethodGet, "https://"+APIHost+"/user/margins", nil)
	if st != http.StatusForbidden || !b.Rejected(resp, func() []byte { return []byte(body) }) {
		t.Fatalf("revoked token: %d %s not recognised", st, body)
	}
}

func TestFakeWantsKiteVersion(t *testing.T) {
	e := newEnv(t)
	b := e.broker(t)
	tok, err := b.Exchange(t.Context(), testRedirect, e.login(t, b, "st4te-xyz"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+APIHost+"/user/profile", nil)
	req.Header.Set("Authorization", "token "+testKey+":"+tok.Access.Reveal())
	resp, err := (&http.Client{Transport: e.Tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a call without X-Kite-Version got %d, want 400", resp.StatusCode)
	}
}

func TestOrdersReachTheFake(t *testing.T) {
	e := newEnv(t)
	b := e.broker(t)
	tok, err := b.Exchange(t.Context(), testRedirect, e.login(t, b, "st4te-xyz"))
	if err != nil {
		t.Fatal(err)
	}
	st, body, _ := e.call(t, b, tok, http.MethodPost, "https://"+APIHost+"/orders/regular", nil)
	if st != http.StatusOK || !strings.Contains(body, "order_id") {
		t.Fatalf("place: %d %s", st, body)
	}
	orders := e.fake.Orders()
	if len(orders) != 1 || !orders[0].Time.Equal(e.Clock.Now()) || orders[0].Path != "/orders/regular" {
		t.Errorf("orders %+v", orders)
	}
	r, _ := http.NewRequest(http.MethodPost, "https://"+APIHost+"/orders/regular", nil)
	if !auth.IsOrder(b, r) {
		t.Error("the order just placed is not one of the broker's orders")
	}
}

func TestTicker(t *testing.T) {
	e := newEnv(t)
	b := e.broker(t)
	tok, err := b.Exchange(t.Context(), testRedirect, e.login(t, b, "st4te-xyz"))
	if err != nil {
		t.Fatal(err)
	}
	dial := func(tk *auth.Token) (*websocket.Conn, *http.Response, error) {
		r, _ := http.NewRequest(http.MethodGet, "https://"+TickerHost+"/?api_key=x&access_token=placeholder", nil)
		if err := b.Inject(r, tk); err != nil {
			t.Fatal(err)
		}
		u := *r.URL
		u.Scheme = "wss"
		return websocket.Dial(t.Context(), u.String(), &websocket.DialOptions{HTTPClient: &http.Client{Transport: e.Tr}})
	}
	c, _, err := dial(tok)
	if err != nil {
		t.Fatalf("ticker with the injected query: %v", err)
	}
	c.Close(websocket.StatusNormalClosure, "")
	_, resp, err := dial(&auth.Token{Access: "wrong"})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("ticker with a wrong token: %v %v", resp, err)
	}
	if !b.Rejected(resp, nil) {
		t.Error("ticker 403 not recognised as a rejection")
	}
}

func TestBypass(t *testing.T) {
	b := newEnv(t).broker(t)
	for p, want := range map[string]bool{
		"/session/token":         true,
		"/Session/Refresh_Token": true,
		"//session/token":        true,
		"/session":               false,
		"/user/profile":          false,
		"/x/../session/token":    true,
	} {
		r := &http.Request{URL: &url.URL{Path: p}}
		if got := b.Bypass(r); got != want {
			t.Errorf("Bypass(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestNextReset(t *testing.T) {
	for in, want := range map[time.Time]time.Time{
		time.Date(2026, 3, 10, 5, 59, 0, 0, auth.IST()): time.Date(2026, 3, 10, 6, 0, 0, 0, auth.IST()),
		time.Date(2026, 3, 10, 6, 0, 0, 0, auth.IST()):  time.Date(2026, 3, 11, 6, 0, 0, 0, auth.IST()),
		time.Date(2026, 3, 10, 23, 0, 0, 0, auth.IST()): time.Date(2026, 3, 11, 6, 0, 0, 0, auth.IST()),
		time.Date(2026, 3, 31, 20, 0, 0, 0, time.UTC):   time.Date(2026, 4, 1, 6, 0, 0, 0, auth.IST()),
	} {
		if got := NextReset(in); !got.Equal(want) {
			t.Errorf("NextReset(%s) = %s, want %s", in, got, want)
		}
	}
}
