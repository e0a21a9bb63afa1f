package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	tvfake "github.com/authproxy/authproxy/internal/fakebroker/tradovate"
)

const (
	tvUser         = "apiuser"
	tvPassword     = "tv-Pass-98713"
	tvAppID        = "authproxy-it"
	tvAppVersion   = "1.0"
	tvCID          = "8123"
	tvSec          = "tv-sec-7f3e9b2c5d"
	tvDevice       = "0d6f5a3e-1b2c-4d5e-8f90-a1b2c3d4e5f6"
	tvClientID     = "2045"
	tvClientSecret = "tv-client-secret-55aa77"
	// tvOrgHost is an organisation's dedicated REST host that Tradovate
	// may redirect to (brokers.md "Dynamic hosts").
	tvOrgHost = "demo-acme.tradovateapi.com"

	tvREST  = "https://" + tvfake.HostDemo
	tvMD    = "https://" + tvfake.HostMD
	tvLogin = tvREST + "/v1/auth/accesstokenrequest"
)

// tvAccount is a credential account; the margin is small so that tokens
// of a few seconds are renewed well before they expire.
const tvAccount = `[brokers.tv]
type = "tradovate"
environment = "demo"
hosts = ["demo.tradovateapi.com", "md.tradovateapi.com", "md-demo.tradovateapi.com", "` + tvOrgHost + `"]
username = "${TV_USER}"
password = "${TV_PASSWORD}"
app_id = "${TV_APP_ID}"
app_version = "1.0"
cid = "8123"
sec = "${TV_SEC}"
device_id = "` + tvDevice + `"

[limits]
refresh_margin = "1s"
`

// tvOAuthAccount is an OAuth account (default hosts, default redirect_uri).
const tvOAuthAccount = `[brokers.tvo]
type = "tradovate"
environment = "demo"
client_id = "${TVO_CLIENT_ID}"
client_secret = "${TVO_CLIENT_SECRET}"

[limits]
refresh_margin = "1s"
`

// tradovateWorld serves a strict fake Tradovate on every Tradovate host name
// (and the organisation host) and sets the account's variables.
func tradovateWorld(t *testing.T, password string, tune func(*tvfake.Options)) (*world, *tvfake.Fake) {
	w := newWorld(t)
	opts := tvfake.Options{
		Username: tvUser, Password: tvPassword, AppID: tvAppID, AppVersion: tvAppVersion, CID: tvCID,
		Sec: tvSec, DeviceID: tvDevice, ClientID: tvClientID, ClientSecret: tvClientSecret,
	}
	if tune != nil {
		tune(&opts)
	}
	fake := tvfake.New(opts)
	w.serve(fake, append(tvfake.Hosts(), tvOrgHost)...)
	w.env["TV_USER"] = tvUser
	w.env["TV_PASSWORD"] = password
	w.env["TV_APP_ID"] = tvAppID
	w.env["TV_SEC"] = tvSec
	w.env["TVO_CLIENT_ID"] = tvClientID
	w.env["TVO_CLIENT_SECRET"] = tvClientSecret
	return w, fake
}

// tvLast is the fake's latest recorded API call to host.
func tvLast(t *testing.T, fake *tvfake.Fake, host string) tvfake.Recorded {
	t.Helper()
	reqs := fake.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Host == host {
			return reqs[i]
		}
	}
	t.Fatalf("the fake saw no API call to %s", host)
	return tvfake.Recorded{}
}

// tvError decodes the proxy's JSON error.
func tvError(t *testing.T, res curlResult) (code, account, message, hint string) {
	t.Helper()
	var body struct {
		Error struct{ Code, Account, Message, Hint string }
	}
	if err := json.Unmarshal([]byte(res.Body), &body); err != nil {
		t.Fatalf("error body is not JSON (%d): %q", res.Status, res.Body)
	}
	return body.Error.Code, body.Error.Account, body.Error.Message, body.Error.Hint
}

// tvWaitFor polls cond every 100ms for at most d.
func tvWaitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return cond()
}

// TestTradovateLongRun: 50 cold concurrent requests share one login; over
// several token lifetimes the proxy renews and never opens a second session,
// and a restart reuses the saved token and keeps renewing it.
func TestTradovateLongRun(t *testing.T) {
	t.Parallel()
	w, fake := tradovateWorld(t, tvPassword, func(o *tvfake.Options) { o.TokenTTL = 6 * time.Second })
	cfg := w.writeConfig(tvAccount)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)

	out, err := python(t, env, `
import sys, requests
from concurrent.futures import ThreadPoolExecutor
def get(i):
    return requests.get(sys.argv[1], timeout=60).status_code
with ThreadPoolExecutor(max_workers=50) as ex:
    codes = list(ex.map(get, range(50)))
print(sum(1 for c in codes if c == 200), sorted(set(codes)))
`, tvREST+"/v1/account/list")
	if err != nil || strings.TrimSpace(out) != "50 [200]" {
		t.Fatalf("50 concurrent cold requests: %q %v\n%s", out, err, p.Output())
	}
	if c := fake.Counters(); c.Sessions != 1 || c.LoginAttempts != 1 {
		t.Fatalf("after 50 cold requests: %+v, want exactly 1 login", c)
	}

	// About two and a half lifetimes of steady traffic.
	out, err = python(t, env, `
import sys, time, requests
s = requests.Session()
codes, end = [], time.time() + 14
while time.time() < end:
    codes.append(s.get(sys.argv[1], timeout=30).status_code)
    time.sleep(0.5)
print(len(codes), sum(1 for c in codes if c != 200))
`, tvREST+"/v1/user/syncrequest")
	var n, bad int
	if _, serr := fmt.Sscan(out, &n, &bad); err != nil || serr != nil || n < 10 || bad != 0 {
		t.Fatalf("steady traffic: %q %v\n%s", out, err, p.Output())
	}
	c := fake.Counters()
	if c.Sessions != 1 || c.Renewals < 2 || c.APIRejected != 0 {
		t.Fatalf("after 14s of 6s tokens: %+v; want 1 session, >= 2 renewals, no rejected call", c)
	}

	// Restart within the token's life: the saved token is served and renewed.
	p.stop()
	p2 := w.start(cfg)
	env = w.clientEnv(cfg, p2)
	if res := curl(t, env, tvREST+"/v1/account/list"); res.Status != 200 {
		t.Fatalf("after restart: %d %s %s\n%s", res.Status, res.Body, res.Err, p2.Output())
	}
	before := fake.Counters().Renewals
	if !tvWaitFor(8*time.Second, func() bool { return fake.Counters().Renewals > before }) {
		t.Fatalf("no renewal within 8s of the restart: %+v\n%s", fake.Counters(), p2.Output())
	}
	if res := curl(t, env, tvMD+"/v1/md/getChart"); res.Status != 200 {
		t.Fatalf("md call after the restart's renewal: %d %s", res.Status, res.Body)
	}
	if c := fake.Counters(); c.Sessions != 1 || c.LoginAttempts != 1 {
		t.Errorf("after the restart: %+v, want still 1 session from 1 login", c)
	}
	if r := tvLast(t, fake, tvfake.HostMD); r.TokenKind != "md" {
		t.Errorf("md host got a %q token, want md", r.TokenKind)
	}
	assertNoSecrets(t, "proxy output", p.Output()+p2.Output(), tvPassword, tvSec)
}

// TestTradovateInjection: which token goes where, client headers replaced,
// a 307 to an organisation host, the client's own login passed untouched,
// and a session closed elsewhere recovered with one new login.
func TestTradovateInjection(t *testing.T) {
	t.Parallel()
	w, fake := tradovateWorld(t, tvPassword, nil)
	cfg := w.writeConfig(tvAccount)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)

	res := curl(t, env, "-H", "Authorization: Bearer stale-notebook-token", tvREST+"/v1/account/list")
	if res.Status != 200 || !strings.Contains(res.Body, "DEMO4242") {
		t.Fatalf("REST call: %d %s %s\n%s", res.Status, res.Body, res.Err, p.Output())
	}
	if r := tvLast(t, fake, tvfake.HostDemo); r.TokenKind != "access" || strings.Contains(r.Authorization, "stale") || strings.Count(r.Authorization, "Bearer") != 1 {
		t.Errorf("REST call reached the fake with a %q token, Authorization %d bytes", r.TokenKind, len(r.Authorization))
	}
	for _, host := range []string{tvfake.HostMD, tvfake.HostMDDemo} {
		res := curl(t, env, "https://"+host+"/v1/md/getChart")
		if res.Status != 200 {
			t.Fatalf("md call on %s: %d %s", host, res.Status, res.Body)
		}
		if r := tvLast(t, fake, host); r.TokenKind != "md" {
			t.Errorf("%s got a %q token, want the md token", host, r.TokenKind)
		}
	}

	// 307 to the organisation's host: curl -L drops Authorization on a
	// cross-host redirect; the proxy injects again there.
	fake.RedirectHost(tvfake.HostDemo, tvOrgHost)
	res = curl(t, env, "-L", tvREST+"/v1/account/list")
	fake.RedirectHost(tvfake.HostDemo, "")
	if res.Status != 200 || !strings.Contains(res.Body, "DEMO4242") {
		t.Fatalf("after a 307: %d %s %s\n%s", res.Status, res.Body, res.Err, p.Output())
	}
	if r := tvLast(t, fake, tvOrgHost); r.TokenKind != "access" || r.Status != 200 {
		t.Errorf("organisation host saw %+v", r)
	}
	if c := fake.Counters(); c.Redirects != 1 || c.APIRejected != 0 {
		t.Errorf("counters after the redirect: %+v", c)
	}

	// A client's own accesstokenrequest goes through untouched (no token
	// added: the fake refuses a login carrying Authorization).
	body := fmt.Sprintf(`{"name":%q,"password":%q,"appId":%q,"appVersion":%q,"cid":%s,"sec":%q,"deviceId":%q}`,
		tvUser, tvPassword, tvAppID, tvAppVersion, tvCID, tvSec, tvDevice)
	res = curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", body, tvLogin)
	if res.Status != 200 || !strings.Contains(res.Body, `"accessToken"`) {
		t.Fatalf("client's own login through the proxy: %d %s", res.Status, res.Body)
	}
	if c := fake.Counters(); c.Sessions != 2 {
		t.Errorf("sessions = %d, want 2 (the proxy's and the client's)", c.Sessions)
	}

	// Logging in elsewhere closed the proxy's session: Tradovate answers
	// 401, the proxy logs in once and replays.
	fake.CloseAllSessions()
	out, err := python(t, env, `
import sys, requests
r = requests.post(sys.argv[1], json={"accountId": 1001}, headers={"Authorization": "Bearer junk"})
print(r.status_code, r.json().get("path"))
`, tvREST+"/v1/order/liquidateposition")
	if err != nil || strings.TrimSpace(out) != "200 /v1/order/liquidateposition" {
		t.Fatalf("after the session was closed: %q %v\n%s", out, err, p.Output())
	}
	if c := fake.Counters(); c.Sessions != 3 || c.APIRejected != 1 {
		t.Errorf("counters after recovery: %+v, want 3 sessions and 1 rejected call", c)
	}
	assertNoSecrets(t, "proxy output", p.Output(), tvPassword, tvSec)
}

// TestTradovatePenaltyTicket: a penalty ticket is waited out and the login
// resent with it; the client only sees a slower answer.
func TestTradovatePenaltyTicket(t *testing.T) {
	t.Parallel()
	w, fake := tradovateWorld(t, tvPassword, nil)
	fake.QueueLogins(tvfake.Answer{Kind: tvfake.AnswerPenalty, PTime: 2})
	cfg := w.writeConfig(tvAccount)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)

	start := time.Now()
	res := curl(t, env, tvREST+"/v1/account/list")
	if res.Status != 200 {
		t.Fatalf("with a penalty ticket: %d %s %s\n%s", res.Status, res.Body, res.Err, p.Output())
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("answered after %v; the ticket asked for 2s", took)
	}
	if c := fake.Counters(); c.LoginAttempts != 2 || c.Penalties != 1 || c.Sessions != 1 {
		t.Errorf("counters = %+v, want 2 attempts, 1 penalty, 1 session", c)
	}
}

// TestTradovateCaptchaLockout: a captcha stops logins for an hour; every
// client request meanwhile gets 429 rate_limited with Retry-After and no
// login attempt reaches Tradovate.
func TestTradovateCaptchaLockout(t *testing.T) {
	t.Parallel()
	w, fake := tradovateWorld(t, tvPassword, nil)
	fake.QueueLogins(tvfake.Answer{Kind: tvfake.AnswerCaptcha, PTime: 5})
	cfg := w.writeConfig(tvAccount)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)

	for i := range 4 {
		res := curl(t, env, tvREST+"/v1/account/list")
		code, account, msg, _ := tvError(t, res)
		ra, _ := strconv.Atoi(res.Header.Get("Retry-After"))
		if res.Status != http.StatusTooManyRequests || res.Header.Get("X-Authproxy-Error") != "rate_limited" ||
			code != "rate_limited" || account != "tv" || ra < 3000 || ra > 3600 || !strings.Contains(msg, "captcha") {
			t.Fatalf("request %d: %d Retry-After %q %s\n%s", i, res.Status, res.Header.Get("Retry-After"), res.Body, p.Output())
		}
	}
	out, err := python(t, env, `
import sys, requests
r = requests.get(sys.argv[1])
print(r.status_code, r.headers.get("X-Authproxy-Error"), int(r.headers.get("Retry-After", "0")) > 3000)
`, tvMD+"/v1/md/getChart")
	if err != nil || strings.TrimSpace(out) != "429 rate_limited True" {
		t.Fatalf("python during the lockout: %q %v", out, err)
	}
	if c := fake.Counters(); c.LoginAttempts != 1 || c.APICalls != 0 {
		t.Errorf("counters = %+v: want exactly 1 login attempt and nothing forwarded", c)
	}
}

// TestTradovateBadPassword: Tradovate's own words reach the client as
// login_failed, and the password appears nowhere.
func TestTradovateBadPassword(t *testing.T) {
	t.Parallel()
	const wrong = "wrong-Password-4711"
	w, fake := tradovateWorld(t, wrong, nil)
	cfg := w.writeConfig(tvAccount)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)

	res := curl(t, env, tvREST+"/v1/account/list")
	code, account, msg, _ := tvError(t, res)
	if res.Status != http.StatusBadGateway || code != "login_failed" || account != "tv" || !strings.Contains(msg, tvfake.MsgBadCredentials) {
		t.Fatalf("bad password: %d %s\n%s", res.Status, res.Body, p.Output())
	}
	if c := fake.Counters(); c.Sessions != 0 || c.APICalls != 0 || c.LoginAttempts > 2 {
		t.Errorf("counters = %+v", c)
	}
	assertNoSecrets(t, "client answer", res.Body, wrong, tvSec)
	assertNoSecrets(t, "proxy output", p.Output(), wrong, tvSec)
}

// tvBrowser plays a person's browser with python requests: it opens argv[1]
// and follows every redirect with the proxy settings of its environment,
// printing where it ended up.
const tvBrowser = `
import json, sys, requests
r = requests.get(sys.argv[1], timeout=30)
print(json.dumps({"status": r.status_code, "url": r.url, "text": r.text,
                  "history": [h.url for h in r.history]}))
`

// TestTradovateOAuth: the browser login through the proxy, API calls with
// the OAuth token, refreshes that rotate the refresh token (the fake refuses
// any reuse), and a restart that continues from the saved rotated token.
func TestTradovateOAuth(t *testing.T) {
	t.Parallel()
	w, fake := tradovateWorld(t, tvPassword, func(o *tvfake.Options) { o.TokenTTL = 4 * time.Second })
	cfg := w.writeConfig(tvOAuthAccount)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)

	res := curl(t, env, tvREST+"/v1/account/list")
	code, _, _, hint := tvError(t, res)
	if res.Status != http.StatusNetworkAuthenticationRequired || code != "login_required" || !strings.Contains(hint, "http://"+p.addr+"/login/tvo") {
		t.Fatalf("before login: %d %s\n%s", res.Status, res.Body, p.Output())
	}

	// The consent page, trader.tradovate.com, is not an API host: the proxy
	// tunnels it untouched (it never decrypts the page where the person
	// types a password), so the browser checks the page's own certificate.
	// The real page has a public certificate, covered by the system roots
	// in bundle.pem; here the fake's root stands in for the public CA, so
	// the browser's bundle holds bundle.pem plus that root.
	browserEnv := tvWithBundle(t, w, env)
	out, err := python(t, browserEnv, tvBrowser, "http://"+p.addr+"/login/tvo")
	if err != nil {
		t.Fatalf("browser: %v\n%s", err, p.Output())
	}
	var br struct {
		Status  int
		URL     string
		Text    string
		History []string
	}
	if err := json.Unmarshal([]byte(out), &br); err != nil {
		t.Fatalf("browser output %q: %v", out, err)
	}
	if br.Status != 200 || !strings.Contains(br.Text, "Logged in") || !strings.HasPrefix(br.URL, "http://"+p.addr+"/callback/tvo?") ||
		len(br.History) != 2 || !strings.HasPrefix(br.History[1], "https://trader.tradovate.com/oauth?") {
		t.Fatalf("browser login: %+v\n%s", br, p.Output())
	}
	if c := fake.Counters(); c.Consents != 1 || c.OAuthExchanges != 1 {
		t.Fatalf("after the browser login: %+v", c)
	}

	// API calls; OAuth has no md token, so md gets the access token.
	for _, u := range []string{tvREST + "/v1/account/list", tvMD + "/v1/md/getChart"} {
		if res := curl(t, env, u); res.Status != 200 {
			t.Fatalf("%s: %d %s\n%s", u, res.Status, res.Body, p.Output())
		}
	}
	if r := tvLast(t, fake, tvfake.HostMD); r.TokenKind != "oauth" {
		t.Errorf("md host got a %q token", r.TokenKind)
	}

	// Refreshes rotate the refresh token; the fake refuses any reuse, so a
	// single refused refresh would show here.
	if !tvWaitFor(10*time.Second, func() bool {
		return curl(t, env, tvREST+"/v1/user/syncrequest").Status == 200 && fake.Counters().OAuthRefreshes >= 2
	}) {
		t.Fatalf("refreshes: %+v\n%s", fake.Counters(), p.Output())
	}

	// A restart carries on from the saved (rotated) refresh token.
	p.stop()
	p2 := w.start(cfg)
	env = w.clientEnv(cfg, p2)
	before := fake.Counters().OAuthRefreshes
	if !tvWaitFor(10*time.Second, func() bool { return fake.Counters().OAuthRefreshes > before }) {
		t.Fatalf("no refresh after the restart: %+v\n%s", fake.Counters(), p2.Output())
	}
	if res := curl(t, env, tvREST+"/v1/account/list"); res.Status != 200 {
		t.Fatalf("after the restart: %d %s\n%s", res.Status, res.Body, p2.Output())
	}
	c := fake.Counters()
	if c.OAuthRefused != 0 || c.Consents != 1 || c.OAuthExchanges != 1 || c.Sessions != 0 || c.APIRejected != 0 {
		t.Errorf("counters = %+v: want no refused refresh, one consent, no rejected call", c)
	}
	assertNoSecrets(t, "proxy output", p.Output()+p2.Output(), tvClientSecret)
}

// tvWithBundle returns env with the CA bundle variables pointing at
// authproxy's bundle.pem plus the fake's root.
func tvWithBundle(t *testing.T, w *world, env []string) []string {
	t.Helper()
	var bundle string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "REQUESTS_CA_BUNDLE="); ok {
			bundle = v
		}
	}
	a, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatalf("authproxy's bundle: %v", err)
	}
	root, err := os.ReadFile(w.caFile)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "browser-bundle.pem")
	if err := os.WriteFile(path, append(append(a, '\n'), root...), 0o600); err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE":
			kv = k + "=" + path
		}
		out = append(out, kv)
	}
	return out
}
