package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fake5p "github.com/authproxy/authproxy/internal/fakebroker/fivepaisa"
)

const (
	fpAppKey  = "FpAppKeyR4nd0mQ"
	fpUserID  = "FpUser7731"
	fpEncKey  = "FpEncKeyW9xT2k"
	fpClient  = "50012322"
	fpPIN     = "739184"
	fpSecret  = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	fpService = "https://openapi.5paisa.com/VendorsAPI/Service1.svc/"
)

// fpTOTPAccount is a TOTP-login account; [limits] max_body is small so the
// 413 case needs no large upload.
const fpTOTPAccount = `[limits]
max_body = 4096

[brokers.fp]
type = "fivepaisa"
app_key = "${FP_APP_KEY}"
user_id = "${FP_USER_ID}"
encryption_key = "${FP_ENC_KEY}"
client_code = "${FP_CLIENT}"
pin = "${FP_PIN}"
totp_secret = "${FP_TOTP_SECRET}"
`

// fpBrowserAccount logs in on the vendor page. Its hosts list the vendor
// login host so that a browser that uses the proxy reaches it through the
// MITM (forwarded untouched: the broker bypasses that whole host); a browser
// that does not use the proxy goes there directly.
const fpBrowserAccount = `[brokers.fpweb]
type = "fivepaisa"
hosts = ["openapi.5paisa.com", "dev-openapi.5paisa.com"]
app_key = "${FP_APP_KEY}"
user_id = "${FP_USER_ID}"
encryption_key = "${FP_ENC_KEY}"
`

func fivepaisaWorld(t *testing.T, pin, account string) (*world, *fake5p.Fake, string) {
	w := newWorld(t)
	fake := fake5p.New(fake5p.Options{AppKey: fpAppKey, UserID: fpUserID, EncryptionKey: fpEncKey,
		ClientCode: fpClient, PIN: fpPIN, TOTPSecret: fpSecret})
	w.serve(fake, fake5p.Hosts()...)
	w.env["FP_APP_KEY"] = fpAppKey
	w.env["FP_USER_ID"] = fpUserID
	w.env["FP_ENC_KEY"] = fpEncKey
	w.env["FP_CLIENT"] = fpClient
	w.env["FP_PIN"] = pin
	w.env["FP_TOTP_SECRET"] = fpSecret
	return w, fake, w.writeConfig(account)
}

// fpSecrets lists every secret of the world plus the tokens the fake saw.
func fpSecrets(fake *fake5p.Fake) []string {
	s := []string{fpAppKey, fpEncKey, fpPIN, fpSecret}
	for _, r := range fake.Requests() {
		if _, tok, ok := strings.Cut(r.Authorization, " "); ok && len(tok) > 20 {
			s = append(s, tok)
		}
	}
	return s
}

func fpLastRequest(t *testing.T, fake *fake5p.Fake) fake5p.Recorded {
	t.Helper()
	reqs := fake.Requests()
	if len(reqs) == 0 {
		t.Fatal("the fake saw no API request")
	}
	return reqs[len(reqs)-1]
}

// checkInjected asserts the fake got the three parts of 5paisa's auth.
func fpCheckInjected(t *testing.T, what string, r fake5p.Recorded) {
	t.Helper()
	if !strings.HasPrefix(r.Authorization, "bearer ey") || strings.Contains(r.Authorization, ",") {
		t.Errorf("%s: fake saw Authorization %q", what, r.Authorization)
	}
	if len(r.HeadKeys) != 1 || r.HeadKeys[0] != "key" || r.HeadKey != fpAppKey {
		t.Errorf("%s: fake saw head keys %v (value ok: %v)", what, r.HeadKeys, r.HeadKey == fpAppKey)
	}
	if r.ClientCode != fpClient {
		t.Errorf("%s: fake saw body.ClientCode %q", what, r.ClientCode)
	}
	if r.Outcome != "ok" {
		t.Errorf("%s: fake answered %s", what, r.Outcome)
	}
}

func TestFivepaisaTOTP(t *testing.T) {
	t.Parallel()
	w, fake, cfg := fivepaisaWorld(t, fpPIN, fpTOTPAccount)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)

	// curl with an empty head and an empty ClientCode: both are filled in.
	res := curl(t, env, "-X", "POST", "-H", "Content-Type: application/json",
		"-d", `{"head":{},"body":{"ClientCode":""}}`, fpService+"V3/OrderBook")
	if res.Status != 200 || !strings.Contains(res.Body, `"OrderBookDetail"`) {
		t.Fatalf("curl: status %d err %s body %s\n%s", res.Status, res.Err, res.Body, p.Output())
	}
	fpCheckInjected(t, "curl order book", fpLastRequest(t, fake))
	if fake.Logins() != 1 || fake.TOTPAttempts() != 1 {
		t.Fatalf("logins %d, TOTP attempts %d; want 1, 1", fake.Logins(), fake.TOTPAttempts())
	}

	// Python requests: {"body":{}}, a client's own stale head.Key and
	// Authorization, no body at all, and a GET.
	out, err := python(t, env, `
import json, requests, sys
base = sys.argv[1]
r = requests.post(base + "V1/PlaceOrderRequest", json={"body": {"OrderType": "B", "Exchange": "N", "ExchangeType": "C", "ScripCode": 1660, "Qty": 1, "Price": 0}})
print("order", r.status_code, r.json()["body"]["Status"])
r = requests.post(base + "V4/Margin", json={"body": {}})
print("margin", r.status_code, r.json()["body"]["Status"])
r = requests.post(base + "V3/OrderBook", json={"head": {"Key": "stale-key", "KEY": "x"}, "body": {"ClientCode": "someone-else"}},
                  headers={"Authorization": "Bearer stale-token-from-notebook"})
print("stale", r.status_code, r.json()["body"]["Status"], len(r.json()["body"]["OrderBookDetail"]))
r = requests.post(base + "V3/OrderBook")
print("nobody", r.status_code, r.json()["head"]["status"])
r = requests.get("https://openapi.5paisa.com/V2/historical/N/C/1660/1m?from=2024-01-31&end=2024-01-31")
print("historical", r.status_code, len(r.json()["data"]["candles"]))
`, fpService)
	want := "order 200 0\nmargin 200 0\nstale 200 0 2\nnobody 200 2\nhistorical 200 3"
	if err != nil || strings.TrimSpace(out) != want {
		t.Fatalf("python requests:\n%s\nwant\n%s\nerr %v\n%s", out, want, err, p.Output())
	}
	reqs := fake.Requests()
	if len(reqs) != 6 {
		t.Fatalf("fake saw %d API requests, want 6", len(reqs))
	}
	for i, what := range []string{"order", "margin", "stale head"} {
		fpCheckInjected(t, "python "+what, reqs[1+i])
	}
	if nb := reqs[4]; len(nb.Body) != 0 || !strings.HasPrefix(nb.Authorization, "bearer ey") {
		t.Errorf("bodiless request: fake saw body %q, Authorization %q", nb.Body, nb.Authorization)
	}
	if hist := reqs[5]; hist.Method != "GET" || !strings.HasPrefix(hist.Authorization, "bearer ey") || hist.Outcome != "ok" {
		t.Errorf("historical GET: %+v", hist)
	}

	// A text/plain body is forwarded as is, with the header only.
	plain := `plain text {"head":{}} stays`
	res = curl(t, env, "-X", "POST", "-H", "Content-Type: text/plain", "--data-binary", plain, fpService+"V3/OrderBook")
	last := fpLastRequest(t, fake)
	if res.Status != 200 || string(last.Body) != plain || !strings.HasPrefix(last.Authorization, "bearer ey") {
		t.Errorf("text/plain: status %d, fake saw body %q Authorization %q", res.Status, last.Body, last.Authorization)
	}

	// A body labelled JSON that is not JSON: 400, nothing forwarded.
	before := len(fake.Requests())
	res = curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", "not json", fpService+"V3/OrderBook")
	if res.Status != 400 || res.Header.Get("X-Authproxy-Error") == "" {
		t.Errorf("not-JSON body: status %d header %q body %s", res.Status, res.Header.Get("X-Authproxy-Error"), res.Body)
	}
	// A body over [limits] max_body: 413, nothing forwarded.
	big := filepath.Join(t.TempDir(), "big.json")
	if err := os.WriteFile(big, []byte(`{"body":{"pad":"`+strings.Repeat("x", 8192)+`"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	res = curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "@"+big, fpService+"V3/OrderBook")
	if res.Status != 413 {
		t.Errorf("over-cap body: status %d body %s", res.Status, res.Body)
	}
	if n := len(fake.Requests()); n != before {
		t.Errorf("the fake saw %d requests from refused bodies", n-before)
	}

	// The client may call 5paisa's login endpoints itself: untouched.
	calls := len(fake.AuthCalls())
	own := `{"head":{"Key":"client-own-key"},"body":{"Email_ID":"x","TOTP":"000000","PIN":"1"}}`
	res = curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", own, fpService+"TOTPLogin")
	ac := fake.AuthCalls()
	if res.Status != 200 || len(ac) != calls+1 || string(ac[calls].Body) != own || ac[calls].Authorization != "" {
		t.Errorf("bypassed TOTPLogin: status %d, fake saw %d new calls", res.Status, len(ac)-calls)
	}

	// Revocation: Invalid Session in a 200, one new login, a transparent
	// replay (the TOTP step guard may make the new login wait up to 30 s).
	// A client waits at most [upstream] timeout (10s) for the login: past it
	// it gets `timeout` and retries, as a script would.
	fake.RevokeAll()
	start := time.Now()
	for range 4 {
		res = curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"body":{}}`, fpService+"V3/OrderBook")
		if res.Status != 504 || res.Header.Get("X-Authproxy-Error") != "timeout" || res.Header.Get("Retry-After") == "" {
			break
		}
	}
	if res.Status != 200 || !strings.Contains(res.Body, `"OrderBookDetail"`) || strings.Contains(res.Body, "Invalid Session") {
		t.Fatalf("after revocation: status %d body %s\n%s", res.Status, res.Body, p.Output())
	}
	if fake.Logins() != 2 {
		t.Fatalf("after revocation logins = %d, want 2", fake.Logins())
	}
	reqs = fake.Requests()
	if r := reqs[len(reqs)-2]; r.Outcome != "invalid_session" {
		t.Errorf("the first attempt after revocation was %s, want invalid_session", r.Outcome)
	}
	fpCheckInjected(t, "replay", reqs[len(reqs)-1])
	t.Logf("re-login and replay took %v", time.Since(start).Round(time.Millisecond))

	assertNoSecrets(t, "proxy output", p.Output(), fpSecrets(fake)...)
}

func TestFivepaisaWrongPIN(t *testing.T) {
	t.Parallel()
	w, fake, cfg := fivepaisaWorld(t, "111111", fpTOTPAccount)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)
	res := curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"body":{}}`, fpService+"V3/OrderBook")
	if res.Status != 502 || res.Header.Get("X-Authproxy-Error") != "login_failed" {
		t.Fatalf("wrong PIN: status %d header %q body %s", res.Status, res.Header.Get("X-Authproxy-Error"), res.Body)
	}
	var e struct {
		Error struct{ Code, Account, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(res.Body), &e); err != nil {
		t.Fatalf("error body %q: %v", res.Body, err)
	}
	if e.Error.Code != "login_failed" || e.Error.Account != "fp" || !strings.Contains(e.Error.Message, fake5p.MsgInvalidLogin) {
		t.Errorf("error = %+v, want login_failed for fp with %q", e.Error, fake5p.MsgInvalidLogin)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("the fake saw %d API requests", n)
	}
	if n := fake.TOTPAttempts(); n < 1 || n > 2 {
		t.Errorf("TOTP attempts %d, want 1 or 2", n)
	}
	if fake.AccessTokenCalls() != 0 {
		t.Error("GetAccessToken called after a refused TOTPLogin")
	}
	assertNoSecrets(t, "error body", res.Body, fpAppKey, fpEncKey, fpSecret, "111111")
	assertNoSecrets(t, "proxy output", p.Output(), fpAppKey, fpEncKey, fpSecret, "111111")
}

func TestFivepaisaBrowserLogin(t *testing.T) {
	t.Parallel()
	w, fake, cfg := fivepaisaWorld(t, fpPIN, fpBrowserAccount)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)

	// Before any login: 511 with the login URL.
	res := curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"body":{}}`, fpService+"V3/OrderBook")
	if res.Status != 511 || res.Header.Get("X-Authproxy-Error") != "login_required" || !strings.Contains(res.Body, "/login/fpweb") {
		t.Fatalf("before login: status %d body %s", res.Status, res.Body)
	}

	// A browser: /login/NAME on the proxy (direct, NO_PROXY), the vendor page
	// on dev-openapi.5paisa.com (through the proxy), back to /callback/NAME.
	out, err := python(t, env, `
import requests, sys
from urllib.parse import urlsplit
r = requests.get("http://" + sys.argv[1] + "/login/fpweb")
hops = [urlsplit(h.url).hostname + urlsplit(h.url).path for h in r.history]
print(r.status_code, "Logged in" in r.text)
print(" ".join(hops))
print(urlsplit(r.url).path)
`, p.addr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || len(lines) != 3 || lines[0] != "200 True" ||
		lines[1] != "127.0.0.1/login/fpweb dev-openapi.5paisa.com/WebVendorLogin/VLogin/Index" || lines[2] != "/callback/fpweb" {
		t.Fatalf("browser login:\n%s\nerr %v\n%s", out, err, p.Output())
	}
	if fake.VendorLogins() != 1 || fake.Logins() != 1 || fake.TOTPAttempts() != 0 {
		t.Fatalf("fake: vendor logins %d, logins %d, TOTP attempts %d", fake.VendorLogins(), fake.Logins(), fake.TOTPAttempts())
	}

	// Now the API works; the client code came from GetAccessToken.
	out, err = python(t, env, `
import requests, sys
r = requests.post(sys.argv[1] + "V3/OrderBook", json={"head": {}, "body": {"ClientCode": ""}})
print(r.status_code, r.json()["body"]["Status"])
`, fpService)
	if err != nil || strings.TrimSpace(out) != "200 0" {
		t.Fatalf("after browser login: %q %v\n%s", out, err, p.Output())
	}
	fpCheckInjected(t, "after browser login", fpLastRequest(t, fake))
	assertNoSecrets(t, "proxy output", p.Output(), fpSecrets(fake)...)
}
