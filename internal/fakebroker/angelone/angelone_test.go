package angelone

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/authproxy/authproxy/auth/authtest"
	"github.com/authproxy/authproxy/internal/brokertest"
)

const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

func TestLoginStrict(t *testing.T) {
	now := time.Date(2026, 3, 10, 4, 0, 0, 0, time.UTC)
	f := New(Options{APIKey: "k", ClientCode: "A1", PIN: "1234", TOTPSecret: secret, Now: func() time.Time { return now }})
	code, err := totp.GenerateCodeCustom(secret, now, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"clientcode":"A1","password":"1234","totp":"` + code + `"}`
	hdr := map[string]string{"X-PrivateKey": "k", "X-UserType": "USER", "X-SourceID": "WEB", "Content-Type": "application/json"}
	without := func(k string) map[string]string {
		m := map[string]string{}
		for kk, v := range hdr {
			if kk != k {
				m[kk] = v
			}
		}
		return m
	}
	if w := brokertest.Do(f, "POST", "https://"+APIHost+LoginPath, body, without("X-PrivateKey")); w.Code != 403 || !strings.Contains(w.Body.String(), "Invalid API Key") {
		t.Errorf("no X-PrivateKey: %d %s", w.Code, w.Body)
	}
	if w := brokertest.Do(f, "POST", "https://"+APIHost+LoginPath, body, without("X-UserType")); !strings.Contains(w.Body.String(), "AB1005") {
		t.Errorf("no X-UserType: %d %s", w.Code, w.Body)
	}
	w := brokertest.Do(f, "POST", "https://"+APIHost+LoginPath, body, hdr)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"jwtToken"`) {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	if w := brokertest.Do(f, "POST", "https://"+APIHost+LoginPath, body, hdr); !strings.Contains(w.Body.String(), "AB1050") {
		t.Errorf("reused TOTP step: %d %s", w.Code, w.Body)
	}
	if w := brokertest.Do(f, "GET", "https://"+APIHost+"/rest/secure/angelbroking/user/v1/getProfile", "", map[string]string{"X-PrivateKey": "k"}); w.Code != 200 || !strings.Contains(w.Body.String(), "AG8003") {
		t.Errorf("no token: %d %s", w.Code, w.Body)
	}
	if w := brokertest.Do(f, "GET", "https://"+StreamHost+StreamPath, "", map[string]string{"x-api-key": "k"}); w.Code != 401 {
		t.Errorf("stream without headers: %d", w.Code)
	}
	if c := f.Counts(); c.Logins != 1 || c.LoginFailures != 2 {
		t.Errorf("counts %+v", c)
	}
}

func TestOrderRateLimit(t *testing.T) {
	clk := authtest.Fixed(time.Date(2026, 3, 10, 4, 0, 0, 0, time.UTC))
	f := New(Options{APIKey: "k", ClientCode: "A1", PIN: "1234", TOTPSecret: secret, MaxOrdersPerSecond: 1, Now: clk.Now})
	code, _ := totp.GenerateCodeCustom(secret, clk.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	hdr := map[string]string{"X-PrivateKey": "k", "X-UserType": "USER", "X-SourceID": "WEB"}
	w := brokertest.Do(f, "POST", "https://"+APIHost+LoginPath, `{"clientcode":"A1","password":"1234","totp":"`+code+`"}`, hdr)
	var ans struct {
		Data struct {
			JWT string `json:"jwtToken"`
		} `json:"data"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil || ans.Data.JWT == "" {
		t.Fatalf("login: %s", w.Body)
	}
	hdr["Authorization"] = "Bearer " + ans.Data.JWT
	place := "https://" + APIHost + "/rest/secure/angelbroking/order/v1/placeOrder"
	a := brokertest.Do(f, "POST", place, `{"tradingsymbol":"SBIN-EQ"}`, hdr)
	b := brokertest.Do(f, "POST", place, `{"tradingsymbol":"SBIN-EQ"}`, hdr)
	clk.Advance(1001 * time.Millisecond)
	c := brokertest.Do(f, "POST", place, `{"tradingsymbol":"SBIN-EQ"}`, hdr)
	if a.Code != 200 || b.Code != 403 || !strings.Contains(b.Body.String(), "exceeding access rate") || c.Code != 200 {
		t.Errorf("order answers %d %d(%s) %d", a.Code, b.Code, b.Body, c.Code)
	}
}
