package upstox

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
	fakeup "github.com/authproxy/authproxy/internal/fakebroker/upstox"
)

const (
	testClientID = "a1b2c3d4-e5f6-7890-abcd-ef0123456789"
	testSecret   = "up5ecretup5ecret"
	testUser     = "7XAB12"
	testRedirect = "http://127.0.0.1:8899/callback/ux"
)

type env struct {
	brokertest.Env
	fake *fakeup.Fake
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clk := authtest.Fixed(time.Date(2026, 3, 10, 10, 0, 0, 0, auth.IST()))
	fake := fakeup.New(fakeup.Options{ClientID: testClientID, ClientSecret: testSecret, RedirectURI: testRedirect, UserID: testUser, Now: clk.Now})
	return &env{Env: brokertest.Serve(t, clk, fake, APIHost, OrderHost), fake: fake}
}

func (e *env) broker(t *testing.T, secret auth.Secret) *Broker {
	t.Helper()
	if secret == "" {
		secret = testSecret
	}
	b, err := New(Config{Account: "ux", ClientID: testClientID, ClientSecret: secret}, e.Client, e.Clock.Now, e.Logger)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// authorize plays the browser on the dialog and returns the callback query
// (or the dialog's error status).
func (e *env) authorize(t *testing.T, b *Broker, state, redirect string) (url.Values, int) {
	t.Helper()
	c := &http.Client{Transport: e.Tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, b.AuthURL(state, redirect), nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return nil, resp.StatusCode
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query(), resp.StatusCode
}

func (e *env) login(t *testing.T, b *Broker) *auth.Token {
	t.Helper()
	cb, st := e.authorize(t, b, "st4te-1234", testRedirect)
	if cb == nil {
		t.Fatalf("dialog answered %d", st)
	}
	tok, err := b.Exchange(t.Context(), testRedirect, cb)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (e *env) call(t *testing.T, b *Broker, tok *auth.Token, method, target string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, target, nil)
	req.Header.Set("Authorization", "Bearer ")
	if err := b.Inject(req, tok); err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: e.Tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(raw)
}

func TestNew(t *testing.T) {
	e := newEnv(t)
	for name, cfg := range map[string]Config{
		"no account": {ClientID: testClientID, ClientSecret: testSecret},
		"no id":      {Account: "ux", ClientSecret: testSecret},
		"no secret":  {Account: "ux", ClientID: testClientID},
	} {
		if _, err := New(cfg, e.Client, nil, nil); err == nil {
			t.Errorf("%s: New succeeded", name)
		} else if strings.Contains(err.Error(), testSecret) {
			t.Errorf("%s: error leaks the secret", name)
		}
	}
	if _, err := New(Config{Account: "ux", ClientID: testClientID, ClientSecret: testSecret}, nil, nil, nil); err == nil {
		t.Error("New without a client succeeded")
	}
}

func TestLoginNeedsBrowser(t *testing.T) {
	e := newEnv(t)
	b := e.broker(t, "")
	if !b.NeedsBrowser() {
		t.Error("NeedsBrowser() = false")
	}
	if tok, err := b.Login(t.Context()); tok != nil || !errors.Is(err, auth.ErrLoginRequired) || !strings.Contains(err.Error(), `"ux"`) {
		t.Fatalf("Login = %v, %v", tok, err)
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("Login sent %d requests", n)
	}
}

func TestAuthURL(t *testing.T) {
	b := newEnv(t).broker(t, "")
	u, err := url.Parse(b.AuthURL("st4te-1234", testRedirect))
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme+"://"+u.Host+u.Path != BaseURL+AuthPath {
		t.Errorf("AuthURL base %s", u)
	}
	q := u.Query()
	if q.Get("client_id") != testClientID || q.Get("redirect_uri") != testRedirect || q.Get("response_type") != "code" || q.Get("state") != "st4te-1234" {
		t.Errorf("AuthURL query %v", q)
	}
}

func TestExchangeAndUse(t *testing.T) {
	e := newEnv(t)
	b := e.broker(t, "")
	cb, _ := e.authorize(t, b, "st4te-1234", testRedirect)
	if cb.Get("state") != "st4te-1234" {
		t.Fatalf("callback %v", cb)
	}
	tok, err := b.Exchange(t.Context(), testRedirect, cb)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 3, 11, 3, 30, 0, 0, auth.IST()); !tok.Expiry.Equal(want) {
		t.Errorf("expiry %s, want %s", tok.Expiry, want)
	}
	if tok.Meta[MetaUserID] != testUser {
		t.Errorf("meta %v", tok.Meta)
	}
	reqs := e.fake.Requests()
	last := reqs[len(reqs)-1]
	form, _ := url.ParseQuery(string(last.Body))
	if last.Path != TokenPath || last.Header.Get("Api-Version") != APIVersion || last.Header.Get("Accept") != "application/json" ||
		form.Get("client_secret") != testSecret || form.Get("grant_type") != "authorization_code" || form.Get("redirect_uri") != testRedirect {
		t.Errorf("token request %s %v %v", last.Path, last.Header, form)
	}
	for _, target := range []string{"https://" + APIHost + "/v2/user/profile", "https://" + APIHost + "/v3/feed/market-data-feed/authorize"} {
		resp, body := e.call(t, b, tok, http.MethodGet, target)
		if resp.StatusCode != 200 || b.Rejected(resp, nil) {
			t.Errorf("%s: %d %s", target, resp.StatusCode, body)
		}
	}
	if strings.Contains(e.Logs.String(), tok.Access.Reveal()) || strings.Contains(e.Logs.String(), testSecret) || strings.Contains(e.Logs.String(), cb.Get("code")) {
		t.Error("logs leak a secret")
	}

	// The code is single-use.
	_, err = b.Exchange(t.Context(), testRedirect, cb)
	var le *auth.LoginError
	if !errors.As(err, &le) || le.StatusCode != 400 || !strings.Contains(le.Message, "UDAPI100057") {
		t.Errorf("reused code: %v", err)
	}
}

func TestExchangeRefusals(t *testing.T) {
	e := newEnv(t)
	b := e.broker(t, "")
	if _, st := e.authorize(t, b, "st4te-1234", "http://127.0.0.1:9999/elsewhere"); st != http.StatusBadRequest {
		t.Errorf("dialog with a wrong redirect_uri answered %d", st)
	}
	cb, _ := e.authorize(t, b, "st4te-1234", testRedirect)
	_, err := b.Exchange(t.Context(), "http://127.0.0.1:9999/elsewhere", cb)
	var le *auth.LoginError
	if !errors.As(err, &le) || !strings.Contains(le.Message, "UDAPI100069") || le.Account != "ux" {
		t.Errorf("exchange with another redirect_uri: %v", err)
	}
	cb, _ = e.authorize(t, b, "st4te-1234", testRedirect)
	_, err = e.broker(t, "wrong-secret").Exchange(t.Context(), testRedirect, cb)
	if !errors.As(err, &le) || le.StatusCode != 401 || strings.Contains(err.Error(), "wrong-secret") {
		t.Errorf("exchange with a wrong secret: %v", err)
	}
	for name, cb := range map[string]url.Values{
		"denied":  {"error": {"access_denied"}, "error_description": {"the person said no"}},
		"no code": {"state": {"x"}},
	} {
		if _, err := b.Exchange(t.Context(), testRedirect, cb); !errors.As(err, &le) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if c := e.fake.Counts(); c.Exchanges != 0 || c.ExchangeFailures != 2 {
		t.Errorf("counts %+v", c)
	}
}

func TestExpiredCode(t *testing.T) {
	e := newEnv(t)
	b := e.broker(t, "")
	cb, _ := e.authorize(t, b, "st4te-1234", testRedirect)
	e.Clock.Advance(fakeup.DefaultCodeLifetime + time.Second)
	if _, err := b.Exchange(t.Context(), testRedirect, cb); err == nil {
		t.Fatal("an expired code was exchanged")
	}
}

func TestRevokedTokenIsRejected(t *testing.T) {
	e := newEnv(t)
	b := e.broker(t, "")
	tok := e.login(t, b)
	e.fake.RevokeAll()
	resp, body := e.call(t, b, tok, http.MethodGet, "https://"+APIHost+"/v2/user/profile")
	if resp.StatusCode != 401 || !b.Rejected(resp, nil) || ParseError([]byte(body)) == "" {
		t.Fatalf("revoked token: %d %s", resp.StatusCode, body)
	}
}

func TestOrdersOnTheHFTHost(t *testing.T) {
	e := newEnv(t)
	b := e.broker(t, "")
	tok := e.login(t, b)
	resp, body := e.call(t, b, tok, http.MethodPost, "https://"+OrderHost+"/v3/order/place")
	if resp.StatusCode != 200 || !strings.Contains(body, "order_ids") {
		t.Fatalf("place: %d %s", resp.StatusCode, body)
	}
	if o := e.fake.Orders(); len(o) != 1 || o[0].Path != "/v3/order/place" || !o[0].Time.Equal(e.Clock.Now()) {
		t.Errorf("orders %+v", o)
	}
	r, _ := http.NewRequest(http.MethodPost, "https://"+OrderHost+"/v3/order/place", nil)
	if !auth.IsOrder(b, r) {
		t.Error("the order just placed is not one of the broker's orders")
	}
}

func TestFeed(t *testing.T) {
	e := newEnv(t)
	b := e.broker(t, "")
	tok := e.login(t, b)
	dial := func(tk *auth.Token) (*http.Response, error) {
		r, _ := http.NewRequest(http.MethodGet, "https://"+APIHost+"/v3/feed/market-data-feed", nil)
		r.Header.Set("Authorization", "Bearer ")
		if err := b.Inject(r, tk); err != nil {
			t.Fatal(err)
		}
		c, resp, err := websocket.Dial(t.Context(), "wss://"+APIHost+"/v3/feed/market-data-feed",
			&websocket.DialOptions{HTTPClient: &http.Client{Transport: e.Tr}, HTTPHeader: r.Header})
		if err == nil {
			c.Close(websocket.StatusNormalClosure, "")
		}
		return resp, err
	}
	if _, err := dial(tok); err != nil {
		t.Fatalf("feed with the injected Bearer: %v", err)
	}
	resp, err := dial(&auth.Token{Access: "wrong"})
	if err == nil || resp == nil || !b.Rejected(resp, nil) {
		t.Fatalf("feed with a wrong token: %v %v", resp, err)
	}
}

func TestInject(t *testing.T) {
	b := newEnv(t).broker(t, "")
	r, _ := http.NewRequest(http.MethodGet, "https://api.upstox.com/v2/user/profile", nil)
	r.Header.Add("Authorization", "Bearer ")
	if err := b.Inject(r, &auth.Token{Access: "tok"}); err != nil {
		t.Fatal(err)
	}
	if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer tok" || brokertest.AuthKeys(r.Header) != 1 {
		t.Errorf("Authorization %v", r.Header)
	}
	if err := b.Inject(r, nil); err == nil {
		t.Error("Inject without a token succeeded")
	}
}

func TestBypass(t *testing.T) {
	b := newEnv(t).broker(t, "")
	for p, want := range map[string]bool{
		AuthPath: true, TokenPath: true, "/V2/Login/authorization/token": true, "/v3/login/auth/token/request/x": true,
		"/v2/login": false, "/v2/user/profile": false, "/v2/logout": false,
	} {
		if got := b.Bypass(&http.Request{URL: &url.URL{Path: p}}); got != want {
			t.Errorf("Bypass(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestNextReset(t *testing.T) {
	for in, want := range map[time.Time]time.Time{
		time.Date(2026, 3, 10, 3, 29, 0, 0, auth.IST()): time.Date(2026, 3, 10, 3, 30, 0, 0, auth.IST()),
		time.Date(2026, 3, 10, 3, 30, 0, 0, auth.IST()): time.Date(2026, 3, 11, 3, 30, 0, 0, auth.IST()),
		time.Date(2026, 3, 10, 23, 0, 0, 0, auth.IST()): time.Date(2026, 3, 11, 3, 30, 0, 0, auth.IST()),
		time.Date(2026, 3, 9, 22, 0, 0, 0, time.UTC):    time.Date(2026, 3, 11, 3, 30, 0, 0, auth.IST()),
	} {
		if got := NextReset(in); !got.Equal(want) {
			t.Errorf("NextReset(%s) = %s, want %s", in, got, want)
		}
	}
}

// scrub redacts before it shortens: a secret where a long broker message is
// cut leaves no prefix of itself behind.
func TestScrubLongMessage(t *testing.T) {
	b := newEnv(t).broker(t, "")
	const code = "c0deC0DEc0de"
	for _, pad := range []int{auth.MaxMessageLen - 8, auth.MaxMessageLen - 2} {
		for _, secret := range []string{testSecret, code} {
			got := b.scrub(strings.Repeat("x", pad)+secret+" tail", code)
			if strings.Contains(got, secret[:2]) {
				t.Errorf("pad %d: %q keeps part of a secret", pad, got)
			}
			if len(got) > auth.MaxMessageLen+len("…") {
				t.Errorf("pad %d: %d bytes", pad, len(got))
			}
		}
	}
}
