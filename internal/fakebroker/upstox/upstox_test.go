package upstox

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth/authtest"
	"github.com/authproxy/authproxy/internal/brokertest"
)

func TestTokenStrict(t *testing.T) {
	now := time.Date(2026, 3, 10, 4, 0, 0, 0, time.UTC)
	f := New(Options{ClientID: "cid", ClientSecret: "sec", RedirectURI: "http://127.0.0.1/cb", Now: func() time.Time { return now }})
	w := brokertest.Do(f, "GET", "https://"+APIHost+DialogPath+"?response_type=code&client_id=cid&redirect_uri="+url.QueryEscape("http://127.0.0.1/cb")+"&state=s", "", nil)
	loc, _ := url.Parse(w.Header().Get("Location"))
	code := loc.Query().Get("code")
	if w.Code != 302 || code == "" || loc.Query().Get("state") != "s" {
		t.Fatalf("dialog %d %s", w.Code, loc)
	}
	form := url.Values{"code": {code}, "client_id": {"cid"}, "client_secret": {"sec"}, "redirect_uri": {"http://127.0.0.1/cb"}, "grant_type": {"authorization_code"}}
	if w := brokertest.Do(f, "POST", "https://"+APIHost+TokenPath, `{"code":"`+code+`"}`, map[string]string{"Content-Type": "application/json"}); w.Code != 400 {
		t.Errorf("JSON token request: %d", w.Code)
	}
	ct := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	w = brokertest.Do(f, "POST", "https://"+APIHost+TokenPath, form.Encode(), ct)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "access_token") {
		t.Fatalf("exchange %d %s", w.Code, w.Body)
	}
	if w := brokertest.Do(f, "POST", "https://"+APIHost+TokenPath, form.Encode(), ct); w.Code != 400 || !strings.Contains(w.Body.String(), "UDAPI100057") {
		t.Errorf("reused code: %d %s", w.Code, w.Body)
	}
	if w := brokertest.Do(f, "GET", "https://"+APIHost+"/v2/user/profile", "", map[string]string{"Authorization": "Bearer nope"}); w.Code != 401 || !strings.Contains(w.Body.String(), "UDAPI100050") {
		t.Errorf("unknown token: %d %s", w.Code, w.Body)
	}
}

func TestOrderRateLimit(t *testing.T) {
	clk := authtest.Fixed(time.Date(2026, 3, 10, 4, 0, 0, 0, time.UTC))
	f := New(Options{ClientID: "cid", ClientSecret: "sec", RedirectURI: "http://127.0.0.1/cb", MaxOrdersPerSecond: 1, Now: clk.Now})
	w := brokertest.Do(f, "GET", "https://"+APIHost+DialogPath+"?response_type=code&client_id=cid&redirect_uri="+url.QueryEscape("http://127.0.0.1/cb"), "", nil)
	loc, _ := url.Parse(w.Header().Get("Location"))
	form := url.Values{"code": {loc.Query().Get("code")}, "client_id": {"cid"}, "client_secret": {"sec"}, "redirect_uri": {"http://127.0.0.1/cb"}, "grant_type": {"authorization_code"}}
	w = brokertest.Do(f, "POST", "https://"+APIHost+TokenPath, form.Encode(), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	var ans struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil || ans.AccessToken == "" {
		t.Fatalf("exchange: %s", w.Body)
	}
	h := map[string]string{"Authorization": "Bearer " + ans.AccessToken}
	a := brokertest.Do(f, "POST", "https://"+OrderHost+"/v3/order/place", "{}", h).Code
	b := brokertest.Do(f, "POST", "https://"+OrderHost+"/v2/order/place", "{}", h).Code
	clk.Advance(1001 * time.Millisecond)
	c := brokertest.Do(f, "POST", "https://"+OrderHost+"/v2/order/place", "{}", h).Code
	if a != 200 || b != 429 || c != 200 {
		t.Errorf("order answers %d %d %d, want 200 429 200", a, b, c)
	}
}
