package fivepaisa

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth/authtest"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

type clock = authtest.Clock

const (
	secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	appKey = "AppKeyQ7x9Lm2Vw4"
)

func newFake() (*Fake, *clock) {
	c := &clock{}
	return New(Options{AppKey: appKey, UserID: "uid", EncryptionKey: "enc", ClientCode: "50012322",
		PIN: "482913", TOTPSecret: secret, Now: c.Now}), c
}

func do(t *testing.T, f *Fake, method, host, path, auth, body string) (int, http.Header, string) {
	t.Helper()
	r := httptest.NewRequest(method, "https://"+host+path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	f.ServeHTTP(w, r)
	return w.Code, w.Header(), w.Body.String()
}

func code(t *testing.T, now time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, now, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func field(t *testing.T, body, name string) any {
	t.Helper()
	var v struct {
		Body map[string]any `json:"body"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return v.Body[name]
}

func login(t *testing.T, f *Fake, c *clock) string {
	t.Helper()
	_, _, b := do(t, f, "POST", APIHost, TOTPLoginPath, "",
		`{"head":{"Key":"`+appKey+`"},"body":{"Email_ID":"50012322","TOTP":"`+code(t, c.Now())+`","PIN":"482913"}}`)
	rt, _ := field(t, b, "RequestToken").(string)
	if rt == "" {
		t.Fatalf("TOTPLogin: %s", b)
	}
	return rt
}

func exchange(t *testing.T, f *Fake, rt string) string {
	t.Helper()
	_, _, b := do(t, f, "POST", APIHost, AccessTokenPath, "",
		`{"head":{"Key":"`+appKey+`"},"body":{"RequestToken":"`+rt+`","EncryKey":"enc","UserId":"uid"}}`)
	s, _ := field(t, b, "AccessToken").(string)
	if s == "" {
		t.Logf("GetAccessToken: %s", b)
	}
	return s
}

func TestLoginFlow(t *testing.T) {
	f, c := newFake()
	rt := login(t, f, c)
	tok := exchange(t, f, rt)
	if tok == "" {
		t.Fatal("no access token")
	}
	if exchange(t, f, rt) != "" {
		t.Error("request token worked twice")
	}
	// The same TOTP code again is refused.
	_, _, b := do(t, f, "POST", APIHost, TOTPLoginPath, "",
		`{"head":{"Key":"`+appKey+`"},"body":{"Email_ID":"50012322","TOTP":"`+code(t, c.Now())+`","PIN":"482913"}}`)
	if field(t, b, "Message") != MsgTOTPUsed || field(t, b, "Status") != float64(1) {
		t.Errorf("reused code: %s", b)
	}
	// A request token older than 30 s is refused.
	c.Advance(30 * time.Second)
	rt = login(t, f, c)
	c.Advance(31 * time.Second)
	if exchange(t, f, rt) != "" {
		t.Error("stale request token worked")
	}
	if f.Logins() != 1 || f.TOTPAttempts() != 3 || f.AccessTokenCalls() != 3 {
		t.Errorf("counters: logins %d totp %d gat %d", f.Logins(), f.TOTPAttempts(), f.AccessTokenCalls())
	}
}

func TestAPIShapes(t *testing.T) {
	f, c := newFake()
	tok := exchange(t, f, login(t, f, c))
	path := ServicePrefix + "V3/OrderBook"
	good := `{"head":{"key":"` + appKey + `"},"body":{"ClientCode":"50012322"}}`
	tests := []struct {
		name, auth, body, want string
	}{
		{"ok", "bearer " + tok, good, `"OrderBookDetail"`},
		{"Bearer ok", "Bearer " + tok, good, `"OrderBookDetail"`},
		{"no key", "bearer " + tok, `{"head":{},"body":{"ClientCode":"50012322"}}`,
			`{"head":{"status":"2","statusDescription":"Invalid head parameters."},"body":null}`},
		{"Key spelling", "bearer " + tok, `{"head":{"Key":"` + appKey + `"},"body":{"ClientCode":"50012322"}}`,
			`{"head":{"status":"2","statusDescription":"Invalid head parameters."},"body":null}`},
		{"two keys", "bearer " + tok, `{"head":{"key":"` + appKey + `","KEY":"x"},"body":{"ClientCode":"50012322"}}`,
			`{"head":{"status":"2","statusDescription":"Invalid head parameters."},"body":null}`},
		{"no token", "", good, `"body":{"Message":"Invalid Session","Status":9}}`},
		{"wrong client", "bearer " + tok, `{"head":{"key":"` + appKey + `"},"body":{"ClientCode":"1"}}`,
			`"body":{"Message":"Invalid Input Parameters.","Status":2}}`},
	}
	for _, tc := range tests {
		st, _, b := do(t, f, "POST", APIHost, path, tc.auth, tc.body)
		if st != 200 || !strings.Contains(b, tc.want) {
			t.Errorf("%s: HTTP %d %s, want %s", tc.name, st, b, tc.want)
		}
	}
	f.RevokeAll()
	if _, _, b := do(t, f, "POST", APIHost, path, "bearer "+tok, good); !strings.Contains(b, `"status":"0"`) || !strings.Contains(b, `{"Message":"Invalid Session","Status":9}`) {
		t.Errorf("revoked: %s", b)
	}
	reqs := f.Requests()
	if len(reqs) != len(tests)+1 || reqs[0].HeadKey != appKey || reqs[0].ClientCode != "50012322" || reqs[0].Outcome != "ok" {
		t.Errorf("recorded %d requests; first %+v", len(reqs), reqs[0])
	}
	if st, _, _ := do(t, f, "POST", VendorHost, path, "bearer "+tok, good); st != 404 {
		t.Errorf("API on the vendor host: HTTP %d", st)
	}
}

func TestExpiryAtCutoff(t *testing.T) {
	f, c := newFake()
	tok := exchange(t, f, login(t, f, c))
	good := `{"head":{"key":"` + appKey + `"},"body":{"ClientCode":"50012322"}}`
	c.Advance(Cutoff(c.Now()).Sub(c.Now()) + time.Second)
	if _, _, b := do(t, f, "POST", APIHost, ServicePrefix+"V3/OrderBook", "bearer "+tok, good); !strings.Contains(b, MsgInvalidSess) {
		t.Errorf("after 23:59:59 IST: %s", b)
	}
}

func TestVendorLogin(t *testing.T) {
	f, _ := newFake()
	q := url.Values{"VendorKey": {appKey}, "ResponseURL": {"http://127.0.0.1:8899/callback/fp"}, "State": {"abc"}}
	st, h, _ := do(t, f, "GET", VendorHost, VendorLoginPath+"?"+q.Encode(), "", "")
	if st != http.StatusFound {
		t.Fatalf("HTTP %d", st)
	}
	loc, err := url.Parse(h.Get("Location"))
	if err != nil || loc.Host != "127.0.0.1:8899" || loc.Query().Get("state") != "abc" {
		t.Fatalf("Location %q", h.Get("Location"))
	}
	if exchange(t, f, loc.Query().Get("RequestToken")) == "" {
		t.Error("vendor request token not accepted")
	}
	q.Set("VendorKey", "wrong")
	if st, _, _ := do(t, f, "GET", VendorHost, VendorLoginPath+"?"+q.Encode(), "", ""); st != http.StatusBadRequest {
		t.Errorf("wrong VendorKey: HTTP %d", st)
	}
	if st, _, _ := do(t, f, "GET", APIHost, VendorLoginPath, "", ""); st != http.StatusNotFound {
		t.Errorf("vendor page on the API host: HTTP %d", st)
	}
}
