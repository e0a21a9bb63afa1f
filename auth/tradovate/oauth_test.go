package tradovate_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/tradovate"
	fake "github.com/authproxy/authproxy/internal/fakebroker/tradovate"
)

const testRedirect = "http://127.0.0.1:8899/callback/tvo"

func (w *world) oauthBroker(t *testing.T, now func() time.Time) *tradovate.OAuthBroker {
	t.Helper()
	b, err := tradovate.NewOAuth(tradovate.OAuthConfig{Account: "tvo", ClientID: testClientID, ClientSecret: testClientSc},
		w.client, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// consent plays the browser: it opens AuthURL at the fake and returns the
// callback query the consent page redirects to.
func (w *world) consent(t *testing.T, b auth.Interactive, state string) url.Values {
	t.Helper()
	resp, err := w.hc.Get(b.AuthURL(state, testRedirect))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("consent page: HTTP %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != testRedirect {
		t.Fatalf("consent redirected to %s, want %s", got, testRedirect)
	}
	return loc.Query()
}

func TestOAuthAuthURL(t *testing.T) {
	w := startWorld(t, fakeOptions(nil))
	b := w.oauthBroker(t, nil)
	if !b.NeedsBrowser() {
		t.Error("NeedsBrowser = false")
	}
	u, err := url.Parse(b.AuthURL("st4te", testRedirect))
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != "https://trader.tradovate.com/oauth" {
		t.Errorf("consent page = %s", got)
	}
	q := u.Query()
	want := url.Values{"response_type": {"code"}, "client_id": {testClientID}, "redirect_uri": {testRedirect}, "state": {"st4te"}}
	if q.Encode() != want.Encode() {
		t.Errorf("query = %s, want %s", q.Encode(), want.Encode())
	}
	if strings.Contains(u.String(), testClientSc) {
		t.Error("AuthURL carries the client secret")
	}
}

func TestOAuthFlow(t *testing.T) {
	clk := newClock()
	w := startWorld(t, fakeOptions(clk.Now))
	b := w.oauthBroker(t, clk.Now)

	if _, err := b.Login(t.Context()); !errors.Is(err, auth.ErrLoginRequired) {
		t.Fatalf("Login before consent = %v, want ErrLoginRequired", err)
	}
	cb := w.consent(t, b, "s1")
	if cb.Get("state") != "s1" || cb.Get("code") == "" {
		t.Fatalf("callback query = %v", cb)
	}
	tok, err := b.Exchange(t.Context(), testRedirect, cb)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Access == "" || tok.Refresh == "" || len(tok.Aux) != 0 {
		t.Fatalf("token: access %v refresh %v aux %d; want both and no md token", tok.Access != "", tok.Refresh != "", len(tok.Aux))
	}
	if want := clk.Now().Add(90 * time.Minute); !tok.Expiry.Equal(want) {
		t.Errorf("expiry = %v, want %v (expires_in against the injected clock)", tok.Expiry, want)
	}
	if want := clk.Now().Add(26 * time.Hour).UTC().Format(time.RFC3339); tok.Meta["refresh_expires"] != want {
		t.Errorf("refresh_expires = %q, want %q", tok.Meta["refresh_expires"], want)
	}
	for _, host := range []string{fake.HostLive, fake.HostDemo, fake.HostMD} {
		if resp := w.call(t, b, tok, host, "/v1/account/list"); resp.StatusCode != http.StatusOK {
			t.Errorf("API call on %s: HTTP %d", host, resp.StatusCode)
		}
	}
	// The code is single-use.
	if _, err := b.Exchange(t.Context(), testRedirect, cb); err == nil {
		t.Error("a used code was accepted")
	} else {
		var le *auth.LoginError
		if !errors.As(err, &le) || !strings.Contains(le.Message, "invalid_grant") {
			t.Errorf("reused code: %v, want a LoginError with invalid_grant", err)
		}
	}

	// Refresh rotates the refresh token; the old one is refused.
	clk.Advance(80 * time.Minute)
	tok2, err := b.Refresh(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if tok2.Refresh == tok.Refresh || tok2.Access == tok.Access {
		t.Error("refresh did not rotate the tokens")
	}
	if want := clk.Now().Add(90 * time.Minute); !tok2.Expiry.Equal(want) {
		t.Errorf("refreshed expiry = %v, want %v", tok2.Expiry, want)
	}
	_, err = b.Refresh(t.Context(), tok)
	if !errors.Is(err, auth.ErrRefreshImpossible) || !strings.Contains(err.Error(), "invalid_token") {
		t.Errorf("refresh with a used token = %v, want ErrRefreshImpossible (invalid_token)", err)
	}
	if strings.Contains(err.Error(), tok.Refresh.Reveal()) || strings.Contains(err.Error(), testClientSc) {
		t.Errorf("error carries a secret: %v", err)
	}
	if _, err := b.Refresh(t.Context(), tok2); err != nil {
		t.Errorf("refresh with the rotated token: %v", err)
	}
	if c := w.fake.Counters(); c.Consents != 1 || c.OAuthExchanges != 1 || c.OAuthRefreshes != 2 || c.Sessions != 0 {
		t.Errorf("counters = %+v", c)
	}

	// An expired refresh token is not even sent.
	old := *tok2
	old.Meta = map[string]string{"refresh_expires": clk.Now().Add(-time.Minute).Format(time.RFC3339)}
	refused := w.fake.Counters().OAuthRefused
	if _, err := b.Refresh(t.Context(), &old); !errors.Is(err, auth.ErrRefreshImpossible) {
		t.Errorf("refresh with an expired refresh token = %v", err)
	}
	if _, err := b.Refresh(t.Context(), &auth.Token{Access: "x"}); !errors.Is(err, auth.ErrRefreshImpossible) {
		t.Errorf("refresh without a refresh token = %v", err)
	}
	if c := w.fake.Counters(); c.OAuthRefused != refused {
		t.Errorf("refused = %d, want %d: a hopeless refresh reached the server", c.OAuthRefused, refused)
	}
}

func TestOAuthExchangeRefused(t *testing.T) {
	w := startWorld(t, fakeOptions(nil))
	b := w.oauthBroker(t, nil)
	tests := []struct {
		name string
		cb   url.Values
		want string
	}{
		{"no code", url.Values{"state": {"x"}}, "no authorization code"},
		{"unknown code", url.Values{"code": {"nope"}}, "invalid_grant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.Exchange(t.Context(), testRedirect, tc.cb)
			var le *auth.LoginError
			if !errors.As(err, &le) || !strings.Contains(le.Message, tc.want) {
				t.Errorf("Exchange = %v, want a LoginError mentioning %q", err, tc.want)
			}
		})
	}
	// A code issued for another redirect URI does not match.
	cb := w.consent(t, b, "")
	if _, err := b.Exchange(t.Context(), "http://127.0.0.1:1/other", cb); err == nil {
		t.Error("exchange with a different redirect_uri succeeded")
	}

	bad, err := tradovate.NewOAuth(tradovate.OAuthConfig{Account: "tvo", ClientID: testClientID, ClientSecret: "wrong-secret-000"},
		w.client, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Exchange(t.Context(), testRedirect, w.consent(t, bad, ""))
	var le *auth.LoginError
	if !errors.As(err, &le) || !strings.Contains(le.Message, "invalid_client") || strings.Contains(err.Error(), "wrong-secret-000") {
		t.Errorf("exchange with a wrong secret = %v", err)
	}
}

// TestOAuthOddAnswers pins x/oauth2's handling of Tradovate's HTTP 200
// error answers: an "error" or an empty access_token is never a token.
func TestOAuthOddAnswers(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		body        string
		wantLogin   bool // Exchange: *auth.LoginError
		wantRefresh bool // Refresh: wraps ErrRefreshImpossible
	}{
		{"200 error", 200, `{"error":"invalid_token","error_description":"token used"}`, true, true},
		{"200 empty access_token", 200, `{"access_token":"","refresh_token":"r1","expires_in":5400}`, true, false},
		{"200 no fields", 200, `{}`, true, false},
		{"200 bad access_token", 200, `{"access_token":"a b\r\nX: y","expires_in":5400}`, true, false},
		{"400 invalid_grant", 400, `{"error":"invalid_grant"}`, true, true},
		{"503", 503, `oops`, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			client, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				if r.Host != "live.tradovateapi.com" || r.URL.Path != "/auth/oauthtoken" {
					t.Errorf("token call went to %s%s", r.Host, r.URL.Path)
				}
				if err := r.ParseForm(); err != nil || r.PostForm.Get("client_secret") != testClientSc {
					t.Errorf("token call without the form-encoded client secret: %v", err)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			b, err := tradovate.NewOAuth(tradovate.OAuthConfig{Account: "tvo", ClientID: testClientID, ClientSecret: testClientSc},
				client, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := b.Exchange(t.Context(), testRedirect, url.Values{"code": {"c"}})
			var le *auth.LoginError
			if tok != nil || err == nil || errors.As(err, &le) != tc.wantLogin {
				t.Errorf("Exchange = %v, %v; want LoginError=%v", tok, err, tc.wantLogin)
			}
			tok, err = b.Refresh(t.Context(), &auth.Token{Access: "a", Refresh: "r0"})
			if tok != nil || err == nil || errors.Is(err, auth.ErrRefreshImpossible) != tc.wantRefresh {
				t.Errorf("Refresh = %v, %v; want ErrRefreshImpossible=%v", tok, err, tc.wantRefresh)
			}
			want := int32(2) // never retried
			if tc.status == 503 {
				want = 8 // a gateway's 503: the endpoint never saw it; 1 + 3 retries each
			}
			if n := calls.Load(); n != want {
				t.Errorf("token endpoint called %d times, want %d", n, want)
			}
		})
	}
}

// TestOAuthCache: before consent the cache asks for a browser; after Set it
// serves the token and refreshes it; a refused refresh leads back to the
// browser.
func TestOAuthCache(t *testing.T) {
	w := startWorld(t, fakeOptions(nil))
	w.fake.SetTokenTTL(2 * time.Second)
	b := w.oauthBroker(t, nil)
	c := auth.NewCache("tvo", b, nil, auth.CacheOptions{Margin: time.Second})

	if _, err := c.Token(t.Context()); !errors.Is(err, auth.ErrLoginRequired) {
		t.Fatalf("Token before consent = %v, want ErrLoginRequired", err)
	}
	tok, err := b.Exchange(t.Context(), testRedirect, w.consent(t, b, "s"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := ctxTimeoutCancel(t, 15*time.Second)
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	deadline := time.Now().Add(8 * time.Second)
	for w.fake.Counters().OAuthRefreshes < 2 && time.Now().Before(deadline) {
		cur, err := c.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if resp := w.call(t, b, cur, fake.HostDemo, "/v1/account/list"); resp.StatusCode != http.StatusOK {
			t.Fatalf("API call: HTTP %d", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	<-done
	if cnt := w.fake.Counters(); cnt.OAuthRefreshes < 2 || cnt.OAuthRefused != 0 {
		t.Fatalf("counters = %+v, want >= 2 refreshes and none refused", cnt)
	}

	// The user's refresh token is revoked elsewhere (here: redeemed by
	// someone else); once the access token dies, the browser is needed.
	cur, err := c.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Refresh(t.Context(), cur); err != nil {
		t.Fatal(err)
	}
	c.Invalidate(cur)
	if _, err := c.Token(t.Context()); !errors.Is(err, auth.ErrLoginRequired) {
		t.Errorf("Token after a refused refresh = %v, want ErrLoginRequired", err)
	}
}

func TestInject(t *testing.T) {
	b, err := tradovate.New(credConfig(), auth.NewHTTPClient(nil, nil, auth.RetryOptions{}), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	withMD := &auth.Token{Access: "ACC", Aux: map[string]auth.Secret{tradovate.AuxMD: "MD"}}
	noMD := &auth.Token{Access: "ACC"}
	tests := []struct {
		url  string
		tok  *auth.Token
		want string
	}{
		{"https://demo.tradovateapi.com/v1/account/list", withMD, "Bearer ACC"},
		{"https://live.tradovateapi.com/v1/account/list", withMD, "Bearer ACC"},
		{"https://md.tradovateapi.com/v1/websocket", withMD, "Bearer MD"},
		{"https://MD-Demo.tradovateapi.com:443/v1/x", withMD, "Bearer MD"},
		{"https://md.tradovateapi.com/v1/x", noMD, "Bearer ACC"},
		{"https://rpt-demo.tradovateapi.com/v1/x", withMD, "Bearer ACC"},
		{"https://mdx.tradovateapi.com/v1/x", withMD, "Bearer ACC"},
	}
	for _, tc := range tests {
		req, err := http.NewRequest(http.MethodGet, tc.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Add("Authorization", "Bearer one")
		req.Header.Add("Authorization", "Basic two")
		if err := b.Inject(req, tc.tok); err != nil {
			t.Fatal(err)
		}
		if got := req.Header.Values("Authorization"); len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s: Authorization = %q, want [%q]", tc.url, got, tc.want)
		}
	}
	if err := b.Inject(&http.Request{Header: http.Header{}}, &auth.Token{}); err == nil {
		t.Error("Inject with an empty token succeeded")
	}
}

func TestBypass(t *testing.T) {
	b, err := tradovate.NewOAuth(tradovate.OAuthConfig{Account: "tvo", ClientID: "1", ClientSecret: "s"},
		auth.NewHTTPClient(nil, nil, auth.RetryOptions{}), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]bool{
		"/v1/auth/accesstokenrequest":   true,
		"/v1/auth/accessTokenRequest":   true,
		"/auth/accesstokenrequest":      true,
		"/V1/AUTH/OAUTHTOKEN":           true,
		"/auth/oauthtoken":              true,
		"/v1/auth/./oauthtoken":         true,
		"/v1/auth/renewaccesstoken":     true,
		"/v1/auth/renewAccessToken":     true,
		"/auth/renewaccesstoken":        true,
		"/v1/auth/me":                   false,
		"/v1/account/list":              false,
		"/v1/auth/accesstokenrequestx":  false,
		"/x/v1/auth/accesstokenrequest": false,
		"/":                             false,
	}
	for p, want := range tests {
		r := &http.Request{URL: &url.URL{Path: p}}
		if got := b.Bypass(r); got != want {
			t.Errorf("Bypass(%s) = %v, want %v", p, got, want)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	client := auth.NewHTTPClient(nil, nil, auth.RetryOptions{})
	bad := credConfig()
	bad.Environment = "staging"
	if _, err := tradovate.New(bad, client, nil, nil); err == nil {
		t.Error("environment staging accepted")
	}
	bad = credConfig()
	bad.Password, bad.Sec = "", ""
	_, err := tradovate.New(bad, client, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "password, sec") {
		t.Errorf("missing secrets: %v", err)
	}
	if _, err := tradovate.New(credConfig(), nil, nil, nil); err == nil {
		t.Error("nil client accepted")
	}
	if _, err := tradovate.NewOAuth(tradovate.OAuthConfig{Account: "x", ClientID: "1"}, client, nil, nil); err == nil {
		t.Error("missing client_secret accepted")
	}
}
