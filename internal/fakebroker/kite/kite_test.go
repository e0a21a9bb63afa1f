package kite

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth/authtest"
	"github.com/authproxy/authproxy/internal/brokertest"
)

func newFake() *Fake {
	now := time.Date(2026, 3, 10, 4, 0, 0, 0, time.UTC)
	return New(Options{APIKey: "key1", APISecret: "secret1", RedirectURL: "http://127.0.0.1/cb", Now: func() time.Time { return now }})
}

func TestLoginPageStrict(t *testing.T) {
	f := newFake()
	for name, q := range map[string]string{"no v": "api_key=key1", "bad key": "v=3&api_key=nope"} {
		if w := brokertest.Do(f, "GET", "https://kite.zerodha.com/connect/login?"+q, "", nil); w.Code != 400 {
			t.Errorf("%s: %d", name, w.Code)
		}
	}
	w := brokertest.Do(f, "GET", "https://kite.zerodha.com/connect/login?v=3&api_key=key1&redirect_params="+url.QueryEscape("state=abc"), "", nil)
	loc, _ := url.Parse(w.Header().Get("Location"))
	if w.Code != 302 || loc.Query().Get("state") != "abc" || loc.Query().Get("request_token") == "" || loc.Query().Get("status") != "success" {
		t.Fatalf("login redirect %d %s", w.Code, loc)
	}
}

func TestSessionStrict(t *testing.T) {
	f := newFake()
	rt := f.IssueRequestToken()
	form := func(sum string) string {
		return url.Values{"api_key": {"key1"}, "request_token": {rt}, "checksum": {sum}}.Encode()
	}
	ct := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-Kite-Version": "3"}
	if w := brokertest.Do(f, "POST", "https://api.kite.trade/session/token", form("00"), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); w.Code != 400 {
		t.Errorf("without X-Kite-Version: %d", w.Code)
	}
	if w := brokertest.Do(f, "POST", "https://api.kite.trade/session/token", form(strings.Repeat("0", 64)), ct); w.Code != 403 || !strings.Contains(w.Body.String(), "checksum") {
		t.Errorf("wrong checksum: %d %s", w.Code, w.Body)
	}
	good := checksum("key1", rt, "secret1")
	if w := brokertest.Do(f, "POST", "https://api.kite.trade/session/token", form(good), ct); w.Code != 200 {
		t.Fatalf("good session: %d %s", w.Code, w.Body)
	}
	if w := brokertest.Do(f, "POST", "https://api.kite.trade/session/token", form(good), ct); w.Code != 403 || !strings.Contains(w.Body.String(), "TokenException") {
		t.Errorf("reused request token: %d %s", w.Code, w.Body)
	}
	if w := brokertest.Do(f, "GET", "https://api.kite.trade/user/profile", "", map[string]string{"X-Kite-Version": "3"}); w.Code != 403 {
		t.Errorf("no Authorization: %d", w.Code)
	}
	if c := f.Counts(); c.Sessions != 1 || c.SessionFailures != 3 {
		t.Errorf("counts %+v", c)
	}
	if n := len(f.Requests()); n != 5 {
		t.Errorf("recorded %d requests", n)
	}
}

func TestOrderRateLimit(t *testing.T) {
	clk := authtest.Fixed(time.Date(2026, 3, 10, 4, 0, 0, 0, time.UTC))
	f := New(Options{APIKey: "key1", APISecret: "secret1", RedirectURL: "http://127.0.0.1/cb", MaxOrdersPerSecond: 2, Now: clk.Now})
	rt := f.IssueRequestToken()
	form := url.Values{"api_key": {"key1"}, "request_token": {rt}, "checksum": {checksum("key1", rt, "secret1")}}.Encode()
	w := brokertest.Do(f, "POST", "https://api.kite.trade/session/token", form, map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-Kite-Version": "3"})
	var ans struct {
		Data struct {
			AccessToken string `json:"access_token"`
		} `json:"data"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil || ans.Data.AccessToken == "" {
		t.Fatalf("session: %s", w.Body)
	}
	h := map[string]string{"X-Kite-Version": "3", "Authorization": "token key1:" + ans.Data.AccessToken}
	codes := []int{}
	for range 3 {
		codes = append(codes, brokertest.Do(f, "POST", "https://api.kite.trade/orders/regular", "", h).Code)
	}
	clk.Advance(time.Second)
	codes = append(codes, brokertest.Do(f, "POST", "https://api.kite.trade/orders/regular", "", h).Code)
	if fmt.Sprint(codes) != "[200 200 429 200]" {
		t.Errorf("order answers %v, want [200 200 429 200]", codes)
	}
	if n := len(f.Orders()); n != 3 {
		t.Errorf("%d orders recorded", n)
	}
}
