package pocketful

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth/authtest"
)

const (
	appID    = "app123"
	secret   = "s3cret/with+chars"
	redirect = "http://127.0.0.1:8000/cb"
)

func newFake() (*Fake, *authtest.Clock) {
	clk := authtest.Fixed(time.Date(2026, 3, 10, 4, 30, 0, 0, time.UTC)) // 10:00 IST
	return New(Options{AppID: appID, AppSecret: secret, RedirectURI: redirect, ClientID: "YA0002", Now: clk.Now}), clk
}

func do(f *Fake, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	f.ServeHTTP(w, r)
	return w
}

// login runs the consent page and the token exchange and returns the code
// and the token.
func login(t *testing.T, f *Fake) (string, string) {
	t.Helper()
	q := url.Values{"client_id": {appID}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"orders holdings"}, "state": {"abcdefgh"}}
	w := do(f, httptest.NewRequest(http.MethodGet, AuthPath+"?"+q.Encode(), nil))
	loc, err := url.Parse(w.Header().Get("Location"))
	if w.Code != http.StatusFound || err != nil || loc.Query().Get("state") != "abcdefgh" {
		t.Fatalf("consent: %d %s", w.Code, w.Header().Get("Location"))
	}
	code := loc.Query().Get("code")
	w = exchange(f, code, redirect, appID, secret)
	if w.Code != http.StatusOK {
		t.Fatalf("token: %d %s", w.Code, w.Body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		TokenType   string `json:"token_type"`
		Scope       string `json:"scope"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &tok); err != nil || tok.ExpiresIn != 86399 || tok.TokenType != "bearer" || tok.Scope != "orders holdings" {
		t.Fatalf("token answer %s (%v)", w.Body, err)
	}
	return code, tok.AccessToken
}

func exchange(f *Fake, code, redirectURI, user, pass string) *httptest.ResponseRecorder {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}
	r := httptest.NewRequest(http.MethodPost, TokenPath, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	return do(f, r)
}

func api(f *Fake, method, target, token string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return do(f, r)
}

func errorType(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct {
		Status    string `json:"status"`
		ErrorType string `json:"error_type"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Status != "error" {
		t.Fatalf("not an error body: %s", w.Body)
	}
	return e.ErrorType
}

func TestAPIChecks(t *testing.T) {
	f, clk := newFake()
	_, tok := login(t, f)

	if w := api(f, "GET", "/api/v1/holdings?client_id=YA0002", tok); w.Code != 200 {
		t.Fatalf("holdings: %d %s", w.Code, w.Body)
	}
	if w := api(f, "GET", "/api/v1/holdings", tok); w.Code != 400 || errorType(t, w) != InputException {
		t.Errorf("no client_id: %d %s", w.Code, w.Body)
	}
	if w := api(f, "GET", "/api/v1/order/OMS1/history?client_id=ZZ9", tok); w.Code != 403 || errorType(t, w) != PermissionException {
		t.Errorf("other client_id: %d %s", w.Code, w.Body)
	}
	if w := api(f, "GET", "/api/v1/search?key=infy", tok); w.Code != 200 {
		t.Errorf("search needs no client_id: %d %s", w.Code, w.Body)
	}
	if w := api(f, "GET", "/api/v1/holdings?client_id=YA0002", ""); w.Code != 401 || errorType(t, w) != TokenException {
		t.Errorf("no token: %d %s", w.Code, w.Body)
	}
	r := httptest.NewRequest("GET", "/api/v1/holdings?client_id=YA0002", nil)
	r.Header.Add("Authorization", "Bearer "+tok)
	r.Header.Add("Authorization", "Bearer "+tok)
	if w := do(f, r); w.Code != 400 {
		t.Errorf("two Authorization headers: %d", w.Code)
	}
	if c := f.Counts(); c.APICalls != 2 || c.TokenRejections != 1 || c.Exchanges != 1 {
		t.Errorf("counts = %+v", c)
	}

	// Midnight IST ends the token (14h after 10:00 IST).
	clk.Advance(14*time.Hour - time.Second)
	if !f.ValidToken(tok) {
		t.Error("token dead before midnight")
	}
	clk.Advance(time.Second)
	if w := api(f, "GET", "/api/v1/search?key=x", tok); w.Code != 403 || errorType(t, w) != TokenException {
		t.Errorf("after midnight: %d %s", w.Code, w.Body)
	}
}

func TestExpireRevokeAndCodeReplay(t *testing.T) {
	f, _ := newFake()
	_, tok := login(t, f)
	f.Expire()
	if w := api(f, "GET", "/api/v1/search?key=x", tok); w.Code != 403 || errorType(t, w) != TokenException {
		t.Errorf("expired: %d %s", w.Code, w.Body)
	}
	_, tok = login(t, f)
	f.RevokeAll()
	if f.ValidToken(tok) {
		t.Error("revoked token still valid")
	}
	code, tok := login(t, f)
	if w := exchange(f, code, redirect, appID, secret); w.Code != 400 || !strings.Contains(w.Body.String(), "invalid_grant") {
		t.Errorf("replayed code: %d %s", w.Code, w.Body)
	}
	if f.ValidToken(tok) {
		t.Error("a replayed code did not revoke its token")
	}
	if w := exchange(f, "nope", redirect, appID, "wrong"); w.Code != 401 || !strings.Contains(w.Body.String(), "invalid_client") {
		t.Errorf("wrong secret: %d %s", w.Code, w.Body)
	}
	f.SetRedirectURI("http://127.0.0.1:9/other")
	q := url.Values{"client_id": {appID}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"orders"}, "state": {"abcdefgh"}}
	if w := do(f, httptest.NewRequest(http.MethodGet, AuthPath+"?"+q.Encode(), nil)); w.Code != 400 {
		t.Errorf("unregistered redirect_uri: %d", w.Code)
	}
}
