package tradovate

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

func newTestFake() (*Fake, *authtest.Clock) {
	clk := authtest.Fixed(time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC))
	return New(Options{Username: "u", Password: "p", AppID: "app", AppVersion: "1.0", CID: "7", Sec: "s",
		ClientID: "cid", ClientSecret: "csec", Now: clk.Now}), clk
}

const goodLogin = `{"name":"u","password":"p","appId":"app","appVersion":"1.0","cid":7,"sec":"s"}`

func do(f *Fake, method, target, body string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" && hdr["Content-Type"] == "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.ServeHTTP(w, r)
	return w
}

func decode(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("answer is not JSON (HTTP %d): %q", w.Code, w.Body.String())
	}
	return m
}

func TestLoginStrictness(t *testing.T) {
	const url = "https://demo.tradovateapi.com/v1/auth/accesstokenrequest"
	tests := []struct {
		name      string
		body      string
		hdr       map[string]string
		status    int
		wantError string
	}{
		{"ok, cid number", goodLogin, nil, 200, ""},
		{"ok, cid string", strings.Replace(goodLogin, `"cid":7`, `"cid":"7"`, 1), nil, 200, ""},
		{"authorization header", goodLogin, map[string]string{"Authorization": "Bearer x"}, 400, MsgAuthHeader},
		{"form body", goodLogin, map[string]string{"Content-Type": "text/plain"}, 415, MsgContentType},
		{"unknown field", strings.Replace(goodLogin, `"sec"`, `"secret"`, 1), nil, 400, "unknown field"},
		{"cid bool", strings.Replace(goodLogin, `"cid":7`, `"cid":true`, 1), nil, 400, "cid"},
		{"bad password", strings.Replace(goodLogin, `"p"`, `"P"`, 1), nil, 200, MsgBadCredentials},
		{"bad sec", strings.Replace(goodLogin, `"sec":"s"`, `"sec":"x"`, 1), nil, 200, MsgBadApp},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := newTestFake()
			w := do(f, http.MethodPost, url, tc.body, tc.hdr)
			if w.Code != tc.status {
				t.Fatalf("HTTP %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			m := decode(t, w)
			got, _ := m["errorText"].(string)
			if tc.wantError == "" {
				if got != "" || m["accessToken"] == "" || m["mdAccessToken"] == "" || m["expirationTime"] == "" {
					t.Errorf("login answer = %v", m)
				}
				if c := f.Counters(); c.Sessions != 1 {
					t.Errorf("sessions = %d", c.Sessions)
				}
				return
			}
			if !strings.Contains(got, tc.wantError) {
				t.Errorf("errorText = %q, want %q", got, tc.wantError)
			}
			if c := f.Counters(); c.Sessions != 0 || c.LoginAttempts != 1 {
				t.Errorf("counters = %+v", c)
			}
		})
	}
}

func TestPenaltyTickets(t *testing.T) {
	f, clk := newTestFake()
	const url = "https://live.tradovateapi.com/auth/accessTokenRequest"
	f.QueueLogins(Answer{Kind: AnswerPenalty, PTime: 10}, Answer{Kind: AnswerCaptcha, PTime: 1})

	m := decode(t, do(f, http.MethodPost, url, goodLogin, nil))
	ticket, _ := m["p-ticket"].(string)
	if ticket == "" || m["p-time"] != float64(10) || m["accessToken"] != nil {
		t.Fatalf("penalty answer = %v", m)
	}
	withTicket := strings.Replace(goodLogin, "{", `{"p-ticket":"`+ticket+`",`, 1)
	clk.Advance(4 * time.Second)
	if m := decode(t, do(f, http.MethodPost, url, withTicket, nil)); m["p-ticket"] != ticket || m["p-time"] != float64(6) {
		t.Errorf("early resend = %v, want the same ticket with 6s left", m)
	}
	clk.Advance(6 * time.Second)
	// The matured ticket passes; the queued captcha answers this attempt.
	m = decode(t, do(f, http.MethodPost, url, withTicket, nil))
	captcha, _ := m["p-ticket"].(string)
	if m["p-captcha"] != true || captcha == "" {
		t.Fatalf("second answer = %v, want a captcha", m)
	}
	clk.Advance(time.Minute)
	withCaptcha := strings.Replace(goodLogin, "{", `{"p-ticket":"`+captcha+`",`, 1)
	if m := decode(t, do(f, http.MethodPost, url, withCaptcha, nil)); m["p-captcha"] != true {
		t.Errorf("captcha ticket resent: %v, want the captcha again", m)
	}
	if m := decode(t, do(f, http.MethodPost, url, withTicket, nil)); m["errorText"] != MsgBadTicket {
		t.Errorf("used ticket resent: %v", m)
	}
	if m := decode(t, do(f, http.MethodPost, url, goodLogin, nil)); m["accessToken"] == nil {
		t.Errorf("plain login after the queue: %v", m)
	}
	f.QueueLogins(Answer{Kind: AnswerTooMany, RetryAfter: 30}, Answer{Kind: AnswerLocked})
	if w := do(f, http.MethodPost, url, goodLogin, nil); w.Code != 429 || w.Header().Get("Retry-After") != "30" || w.Body.Len() != 0 {
		t.Errorf("429 answer: HTTP %d, Retry-After %q, body %q", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if w := do(f, http.MethodPost, url, goodLogin, nil); w.Code != 423 {
		t.Errorf("423 answer: HTTP %d", w.Code)
	}
	if c := f.Counters(); c.LoginAttempts != 8 || c.Sessions != 1 || c.Penalties != 4 {
		t.Errorf("counters = %+v", c)
	}
}

func TestAPIAndRenew(t *testing.T) {
	f, clk := newTestFake()
	m := decode(t, do(f, http.MethodPost, "https://demo.tradovateapi.com/v1/auth/accesstokenrequest", goodLogin, nil))
	access, md := m["accessToken"].(string), m["mdAccessToken"].(string)
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

	tests := []struct {
		target string
		hdr    map[string]string
		status int
	}{
		{"https://demo.tradovateapi.com/v1/account/list", bearer(access), 200},
		{"https://demo.tradovateapi.com/v1/account/list", bearer(md), 401},
		{"https://md.tradovateapi.com/v1/md/getChart", bearer(md), 200},
		{"https://md-demo.tradovateapi.com/v1/md/getChart", bearer(access), 401},
		{"https://demo.tradovateapi.com/v1/account/list", nil, 401},
		{"https://demo.tradovateapi.com/v1/account/list", map[string]string{"Authorization": "Bearer " + access + ", Bearer x"}, 401},
		{"https://demo.tradovateapi.com/nope", bearer(access), 404},
		{"https://trader.tradovate.com/v1/account/list", bearer(access), 404},
	}
	for _, tc := range tests {
		if w := do(f, http.MethodGet, tc.target, "", tc.hdr); w.Code != tc.status {
			t.Errorf("GET %s: HTTP %d, want %d", tc.target, w.Code, tc.status)
		}
	}

	if w := do(f, http.MethodGet, "https://demo.tradovateapi.com/v1/auth/renewaccesstoken", "", bearer(md)); w.Code != 401 {
		t.Errorf("renew with the md token: HTTP %d, want 401", w.Code)
	}
	clk.Advance(80 * time.Minute)
	w := do(f, http.MethodGet, "https://demo.tradovateapi.com/v1/auth/renewAccessToken", "", bearer(access))
	renewed := decode(t, w)
	if w.Code != 200 || renewed["accessToken"] == "" || renewed["accessToken"] == access {
		t.Fatalf("renew: HTTP %d %v", w.Code, renewed)
	}
	clk.Advance(11 * time.Minute)
	if w := do(f, http.MethodGet, "https://demo.tradovateapi.com/v1/auth/renewaccesstoken", "", bearer(access)); w.Code != 401 || decode(t, w)["errorText"] != MsgExpired {
		t.Errorf("renew with an expired token: HTTP %d %s", w.Code, w.Body)
	}
	if w := do(f, http.MethodGet, "https://live.tradovateapi.com/v1/user/syncrequest", "", bearer(renewed["accessToken"].(string))); w.Code != 200 {
		t.Errorf("renewed token: HTTP %d", w.Code)
	}

	f.RedirectHost("live.tradovateapi.com", "acme-live.tradovateapi.com")
	w = do(f, http.MethodGet, "https://live.tradovateapi.com/v1/account/list?x=1", "", nil)
	if w.Code != 307 || w.Header().Get("Location") != "https://acme-live.tradovateapi.com/v1/account/list?x=1" {
		t.Errorf("redirect: HTTP %d to %q", w.Code, w.Header().Get("Location"))
	}
	if c := f.Counters(); c.Renewals != 1 || c.RenewalsRefused != 2 || c.Redirects != 1 {
		t.Errorf("counters = %+v", c)
	}
}

func TestOAuth(t *testing.T) {
	f, _ := newTestFake()
	consent := "https://trader.tradovate.com/oauth?" + url.Values{
		"response_type": {"code"}, "client_id": {"cid"}, "redirect_uri": {"http://127.0.0.1:9/cb"}, "state": {"st"},
	}.Encode()
	w := do(f, http.MethodGet, consent, "", nil)
	loc, err := url.Parse(w.Header().Get("Location"))
	if w.Code != 302 || err != nil || loc.Host != "127.0.0.1:9" || loc.Query().Get("state") != "st" {
		t.Fatalf("consent: HTTP %d to %q", w.Code, w.Header().Get("Location"))
	}
	if w := do(f, http.MethodGet, "https://demo.tradovateapi.com/oauth?client_id=cid", "", nil); w.Code != 404 {
		t.Errorf("consent on the API host: HTTP %d, want 404", w.Code)
	}

	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	token := func(v url.Values) map[string]any {
		v.Set("client_id", "cid")
		v.Set("client_secret", "csec")
		return decode(t, do(f, http.MethodPost, "https://live.tradovateapi.com/auth/oauthtoken", v.Encode(), form))
	}
	m := token(url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {"http://127.0.0.1:9/cb"}})
	r1, _ := m["refresh_token"].(string)
	if m["access_token"] == nil || r1 == "" || m["expires_in"] != float64(5400) {
		t.Fatalf("exchange = %v", m)
	}
	m = token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r1}})
	r2, _ := m["refresh_token"].(string)
	if r2 == "" || r2 == r1 {
		t.Fatalf("refresh = %v", m)
	}
	if m := token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r1}}); m["error"] != "invalid_token" {
		t.Errorf("reused refresh token: %v", m)
	}
	if c := f.Counters(); c.Consents != 1 || c.OAuthExchanges != 1 || c.OAuthRefreshes != 1 || c.OAuthRefused != 1 {
		t.Errorf("counters = %+v", c)
	}
}
