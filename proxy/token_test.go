package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/auth"
)

func TestTokenEndpoint(t *testing.T) {
	e := newTestEnv(t, func(o *Options) {
		o.Users = map[string]auth.Secret{"alice": "pw", "bob": "pw2"}
		o.UserAccounts = map[string][]string{"bob": {"other"}, "alice": {"acct"}}
	})
	post := func(user, pass string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+e.addr+"/token/acct", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	ok := map[string]string{TokenHeader: "1"}
	resp, body := post("alice", "pw", ok)
	var ans TokenAnswer
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &ans) != nil || ans.Token != "tok-1" || ans.Account != "acct" {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	// The same session: asking again logs in no more.
	post("alice", "pw", ok)
	if n := e.src.logins.Load(); n != 1 {
		t.Fatalf("logins = %d, want 1", n)
	}
	for name, tc := range map[string]struct {
		user, pass string
		hdr        map[string]string
		status     int
	}{
		"no proxy_auth user":   {"", "", ok, 401},
		"wrong password":       {"alice", "x", ok, 401},
		"user of another acct": {"bob", "pw2", ok, 403},
		"no header":            {"alice", "pw", nil, 403},
		"from a web page":      {"alice", "pw", map[string]string{TokenHeader: "1", "Origin": "https://evil.example"}, 403},
		"cross-site fetch":     {"alice", "pw", map[string]string{TokenHeader: "1", "Sec-Fetch-Site": "cross-site"}, 403},
	} {
		resp, body := post(tc.user, tc.pass, tc.hdr)
		if resp.StatusCode != tc.status || strings.Contains(body, "tok-") {
			t.Errorf("%s: status %d body %s, want %d and no token", name, resp.StatusCode, body, tc.status)
		}
	}
}
