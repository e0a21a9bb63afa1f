package integration

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/fakebroker/fakeca"
	"github.com/authproxy/authproxy/internal/fakebroker/tradingo"
)

const (
	tgHost       = "tradingorestapi.swastika.co.in"
	tgClientCode = "GO11240"
	tgMPIN       = "4821"
	tgTOTPSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
)

const tgAccount = `[brokers.tg]
type = "tradingo"
client_code = "${TG_CLIENT_CODE}"
mpin = "${TG_MPIN}"
totp_secret = "${TG_TOTP_SECRET}"
`

// tradingoWorld starts a strict fake Tradingo and returns the config path.
func tradingoWorld(t *testing.T, mpin string) (*world, *tradingo.Fake, string) {
	w := newWorld(t)
	fake := tradingo.New(tradingo.Options{ClientCode: tgClientCode, MPIN: tgMPIN, TOTPSecret: tgTOTPSecret})
	w.serve(fake, tgHost)
	w.env["TG_CLIENT_CODE"] = tgClientCode
	w.env["TG_MPIN"] = mpin
	w.env["TG_TOTP_SECRET"] = tgTOTPSecret
	return w, fake, w.writeConfig(tgAccount)
}

const orderBookURL = "https://" + tgHost + "/kb/OrderBook/GetOrderBookList"

func TestTradingoEndToEnd(t *testing.T) {
	w, fake, cfg := tradingoWorld(t, tgMPIN)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)

	// curl with no credentials and no flags: only what `authproxy env` set.
	res := curl(t, env, "-X", "POST", "-H", "Content-Type: application/json",
		"-d", `{"Uid":"`+tgClientCode+`"}`, orderBookURL)
	if res.Status != 200 || !strings.Contains(res.Body, `"IsError":false`) {
		t.Fatalf("curl through the proxy: status %d err %s body %s\nproxy output:\n%s", res.Status, res.Err, res.Body, p.Output())
	}
	reqs := fake.Requests()
	if len(reqs) != 1 || !strings.HasPrefix(reqs[0].Authorization, "Bearer ey") {
		t.Fatalf("fake saw %d requests, Authorization %q", len(reqs), reqs[len(reqs)-1].Authorization)
	}

	// HTTP/2 from the client is served on the decrypted connection.
	h2 := curl(t, env, "--http2", "-X", "POST", "-H", "Content-Type: application/json",
		"-d", `{"Uid":"`+tgClientCode+`"}`, orderBookURL)
	if h2.Status != 200 || !strings.HasPrefix(h2.Proto, "HTTP/2") {
		t.Fatalf("curl --http2: status %d proto %q err %s", h2.Status, h2.Proto, h2.Err)
	}

	// A client that sends its own (stale) Authorization has it replaced.
	res = curl(t, env, "-X", "POST", "-H", "Authorization: Bearer stale-token-from-notebook",
		"-H", "Content-Type: application/json", "-d", `{"Uid":"`+tgClientCode+`"}`, orderBookURL)
	if res.Status != 200 {
		t.Fatalf("with a stale client header: status %d body %s", res.Status, res.Body)
	}
	last := fake.Requests()[len(fake.Requests())-1]
	if strings.Contains(last.Authorization, "stale") || strings.Count(last.Authorization, "Bearer") != 1 {
		t.Fatalf("client Authorization survived: %q", last.Authorization)
	}

	// Python requests, configured only by the environment.
	out, err := python(t, env, `
import requests, sys
r = requests.post(sys.argv[1], json={"Uid": sys.argv[2]})
print(r.status_code, r.json()["IsError"])
`, orderBookURL, tgClientCode)
	if err != nil || strings.TrimSpace(out) != "200 False" {
		t.Fatalf("python requests: %q %v\n%s", out, err, p.Output())
	}
	if n := fake.Logins(); n != 1 {
		t.Fatalf("logins = %d, want 1 for three requests", n)
	}

	// Restart: the saved token is reused, no new login.
	p.stop()
	p2 := w.start(cfg)
	env = w.clientEnv(cfg, p2)
	res = curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"Uid":"`+tgClientCode+`"}`, orderBookURL)
	if res.Status != 200 {
		t.Fatalf("after restart: status %d body %s", res.Status, res.Body)
	}
	if n := fake.Logins(); n != 1 {
		t.Fatalf("after restart logins = %d, want 1 (saved token reused)", n)
	}
	info, err := os.Stat(filepath.Join(w.stateDir, "tokens.json"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("tokens.json: %v mode %v", err, info.Mode())
	}

	// The broker rejects the token: one re-login and a transparent replay.
	// The new login may wait for a fresh TOTP step (up to 30s); a client
	// waits at most [upstream] timeout (10s), then gets `timeout` and retries.
	fake.RevokeAll()
	for range 4 {
		res = curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"Uid":"`+tgClientCode+`"}`, orderBookURL)
		if res.Status != 504 || res.Header.Get("X-Authproxy-Error") != "timeout" {
			break
		}
	}
	if res.Status != 200 || !strings.Contains(res.Body, `"IsError":false`) {
		t.Fatalf("after revocation: status %d body %s\n%s", res.Status, res.Body, p2.Output())
	}
	if n := fake.Logins(); n != 2 {
		t.Fatalf("after revocation logins = %d, want 2", n)
	}

	// Secrets never appear in anything the proxy printed.
	var tokens []string
	for _, r := range fake.Requests() {
		tokens = append(tokens, strings.TrimPrefix(r.Authorization, "Bearer "))
	}
	all := p.Output() + p2.Output()
	assertNoSecrets(t, "proxy output", all, append(tokens, tgMPIN, tgTOTPSecret)...)
	status := runCLI(t, w, "status", "--config", cfg, "--json")
	assertNoSecrets(t, "authproxy status", status, append(tokens, tgMPIN, tgTOTPSecret)...)
	if !strings.Contains(status, `"ready"`) {
		t.Errorf("status does not show the account ready:\n%s", status)
	}
}

func TestTradingoConcurrentColdStart(t *testing.T) {
	w, fake, cfg := tradingoWorld(t, tgMPIN)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)
	out, err := python(t, env, `
import requests, sys
from concurrent.futures import ThreadPoolExecutor
def one(i):
    return requests.post(sys.argv[1], json={"Uid": sys.argv[2]}, timeout=60).status_code
with ThreadPoolExecutor(max_workers=50) as ex:
    codes = list(ex.map(one, range(50)))
print(sum(1 for c in codes if c == 200))
`, orderBookURL, tgClientCode)
	if err != nil {
		t.Fatalf("%v\n%s", err, p.Output())
	}
	if strings.TrimSpace(out) != "50" {
		t.Fatalf("successful requests = %s, want 50\n%s", out, p.Output())
	}
	if n := fake.Logins(); n != 1 {
		t.Fatalf("50 concurrent cold requests caused %d logins, want 1", n)
	}
	if n := fake.LoginAttempts(); n != 1 {
		t.Fatalf("login attempts = %d, want 1", n)
	}
}

func TestTradingoWrongMPIN(t *testing.T) {
	w, fake, cfg := tradingoWorld(t, "0000")
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)
	res := curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"Uid":"`+tgClientCode+`"}`, orderBookURL)
	if res.Status != 502 || res.Header.Get("X-Authproxy-Error") != "login_failed" {
		t.Fatalf("wrong MPIN: status %d header %q body %s", res.Status, res.Header.Get("X-Authproxy-Error"), res.Body)
	}
	var body struct {
		Error struct{ Code, Account, Message, Hint string }
	}
	if err := json.Unmarshal([]byte(res.Body), &body); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, res.Body)
	}
	if body.Error.Code != "login_failed" || body.Error.Account != "tg" || !strings.Contains(body.Error.Message, "Invalid MPIN") {
		t.Fatalf("error body = %+v", body.Error)
	}
	if len(fake.Requests()) != 0 {
		t.Fatalf("the API saw %d requests; nothing may be forwarded unauthenticated", len(fake.Requests()))
	}
	assertNoSecrets(t, "proxy output", p.Output(), "0000", tgTOTPSecret)
}

func TestTradingoUntrustedUpstream(t *testing.T) {
	w := newWorld(t)
	fake := tradingo.New(tradingo.Options{ClientCode: tgClientCode, MPIN: tgMPIN, TOTPSecret: tgTOTPSecret})
	// Served by a CA the proxy does not trust (not in ca_file).
	other, err := fakeca.New()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := other.Serve(fake, tgHost)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	w.resolve[tgHost+":443"] = srv.Addr
	w.env["TG_CLIENT_CODE"], w.env["TG_MPIN"], w.env["TG_TOTP_SECRET"] = tgClientCode, tgMPIN, tgTOTPSecret
	cfg := w.writeConfig(tgAccount)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)
	res := curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"Uid":"x"}`, orderBookURL)
	if res.Status != 502 || res.Header.Get("X-Authproxy-Error") != "upstream_tls" {
		t.Fatalf("untrusted upstream: status %d header %q body %s", res.Status, res.Header.Get("X-Authproxy-Error"), res.Body)
	}
	if fake.LoginAttempts() != 0 || len(fake.Requests()) != 0 {
		t.Fatalf("untrusted server received %d logins and %d requests; want none", fake.LoginAttempts(), len(fake.Requests()))
	}
}

func TestTunnelNonBrokerHost(t *testing.T) {
	w, _, cfg := tradingoWorld(t, tgMPIN)
	var gotAuth []string
	origin := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		gotAuth = append(gotAuth, r.Header.Get("Authorization"))
		_, _ = rw.Write([]byte("hello from the origin"))
	}))
	defer origin.Close()
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)
	// NO_PROXY from `authproxy env` covers 127.0.0.1; force the proxy here.
	env = append(env, "NO_PROXY=", "no_proxy=")
	certFile := filepath.Join(w.dir, "origin.pem")
	if err := os.WriteFile(certFile, pemCert(origin.Certificate().Raw), 0o600); err != nil {
		t.Fatal(err)
	}
	// Trusting only the origin's own certificate proves the tunnel is not MITM'd.
	res := curl(t, env, "--cacert", certFile, origin.URL+"/")
	if res.Status != 200 || res.Body != "hello from the origin" {
		t.Fatalf("tunnel: status %d err %s body %q\n%s", res.Status, res.Err, res.Body, p.Output())
	}
	if len(gotAuth) != 1 || gotAuth[0] != "" {
		t.Fatalf("origin saw Authorization %q; a tunnel must not inject", gotAuth)
	}
}

func TestUnconfiguredAccount(t *testing.T) {
	w := newWorld(t)
	fake := tradingo.New(tradingo.Options{ClientCode: tgClientCode, MPIN: tgMPIN, TOTPSecret: tgTOTPSecret})
	w.serve(fake, tgHost)
	cfg := w.writeConfig(tgAccount) // no TG_* variables set
	p := w.start(cfg)
	if !strings.Contains(p.Output(), "TG_MPIN") {
		t.Errorf("startup does not name the missing variables:\n%s", p.Output())
	}
	env := w.clientEnv(cfg, p)
	res := curl(t, env, "-X", "POST", "-d", `{}`, orderBookURL)
	if res.Status != 502 || res.Header.Get("X-Authproxy-Error") != "not_configured" || !strings.Contains(res.Body, "TG_TOTP_SECRET") {
		t.Fatalf("unconfigured: status %d header %q body %s", res.Status, res.Header.Get("X-Authproxy-Error"), res.Body)
	}
	if fake.LoginAttempts() != 0 || len(fake.Requests()) != 0 {
		t.Fatal("an unconfigured account reached the broker")
	}
	// A client logging in by itself still reaches Tradingo's login endpoint
	// untouched: it needs no token.
	res = curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"Totp":"000000"}`,
		"https://"+tgHost+"/auth/TOTP/VerifyTotp")
	if res.Header.Get("X-Authproxy-Error") != "" || fake.LoginAttempts() != 1 || !strings.Contains(res.Body, "IsError") {
		t.Fatalf("client's own login: status %d header %q attempts %d body %s", res.Status,
			res.Header.Get("X-Authproxy-Error"), fake.LoginAttempts(), res.Body)
	}
}

func TestCheckAndEnvCommands(t *testing.T) {
	w := newWorld(t)
	good := w.writeConfig(tgAccount)
	if out := runCLI(t, w, "check", "--config", good); !strings.Contains(out, "ok") {
		t.Errorf("check on a good file: %s", out)
	}
	bad := filepath.Join(w.dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("listen = \"127.0.0.1:8899\"\n[brokers.x]\ntype = \"tradingo\"\nclient_code = \"a\"\nmpin = 1234\nbogus = \"y\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "check", "--config", bad)
	cmd.Env = w.procEnv()
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("check on a bad file: err %v, want exit 1\n%s", err, out)
	}
	for _, want := range []string{bad + ":5:", "mpin", bad + ":6:", "bogus"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	// run on an invalid file exits non-zero at once.
	cmd = exec.Command(binary, "run", "--config", bad)
	cmd.Env = w.procEnv()
	start := time.Now()
	if err := cmd.Run(); err == nil {
		t.Fatal("run on an invalid config exited 0")
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("run on an invalid config did not exit at once")
	}
	// Usage errors exit 2.
	cmd = exec.Command(binary, "frobnicate")
	if err := cmd.Run(); err == nil || err.(*exec.ExitError).ExitCode() != 2 {
		t.Fatalf("unknown command: %v, want exit 2", err)
	}
	envOut := runCLI(t, w, "env", "--config", good)
	for _, want := range []string{"export HTTPS_PROXY=", "export NO_PROXY=", "export SSL_CERT_FILE=",
		"export REQUESTS_CA_BUNDLE=", "export CURL_CA_BUNDLE=", "export NODE_EXTRA_CA_CERTS="} {
		if !strings.Contains(envOut, want) {
			t.Errorf("env output lacks %q:\n%s", want, envOut)
		}
	}
	// Plain-http traffic goes through the proxy only when asked (--http).
	if strings.Contains(strings.ToUpper(envOut), "HTTP_PROXY=") {
		t.Errorf("env without --http exports HTTP_PROXY:\n%s", envOut)
	}
	if out := runCLI(t, w, "env", "--config", good, "--http"); !strings.Contains(out, "export HTTP_PROXY=") || !strings.Contains(out, "export http_proxy=") {
		t.Errorf("env --http lacks HTTP_PROXY/http_proxy:\n%s", out)
	}
	for _, sh := range []string{"fish", "powershell"} {
		if out := runCLI(t, w, "env", "--config", good, "--shell", sh); !strings.Contains(out, "HTTPS_PROXY") {
			t.Errorf("env --shell %s: %s", sh, out)
		}
	}
}

// runCLI runs an authproxy subcommand that must exit 0 and returns stdout.
func runCLI(t *testing.T, w *world, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = w.procEnv()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("authproxy %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}
