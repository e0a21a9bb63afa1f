package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/fakebroker/tradingo"
)

// The README's first command: `authproxy demo` runs with no setup, shows
// each broker's injected credential redacted, and prints no secret.
func TestDemoOnce(t *testing.T) {
	w := newWorld(t) // for a clean environment only
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "demo", "--once", "--listen", "127.0.0.1:0")
	cmd.Env = w.procEnv()
	out, err := cmd.CombinedOutput()
	text := string(out)
	if err != nil {
		t.Fatalf("authproxy demo --once: %v\n%s", err, text)
	}
	for _, re := range []string{
		`(?s)Tradingo .*?-> 200 OK.*?the proxy added: Authorization: Bearer eyJh…\(redacted, \d+ chars\)`,
		`(?s)Tradovate .*?-> 200 OK.*?the proxy added: Authorization: Bearer …\(redacted, \d+ chars\)`,
		`(?s)5paisa .*?-> 200 OK.*?the proxy added: Authorization: bearer eyJh…\(redacted, \d+ chars\)\s+body.head.key = …\(redacted, 17 chars\).*?body.body.ClientCode = "55501234"`,
		`(?s)Pocketful .*?/login/pocketful -> trade.pocketful.in/oauth2/auth -> 127.0.0.1:\d+/callback/pocketful.*?Logged in.*?-> 200 OK.*?Authorization: Bearer …\(redacted, \d+ chars\)\s+\?client_id=DEMO02`,
		`(?s)Zerodha Kite .*?/login/kite -> kite.zerodha.com/connect/login -> 127.0.0.1:\d+/callback/kite.*?Logged in.*?-> 200 OK.*?Authorization: token …\(redacted, \d+ chars\).*?X-Kite-Version: 3`,
		`(?s)Angel One SmartAPI .*?-> 200 OK.*?Authorization: Bearer eyJh…\(redacted, \d+ chars\)\s+X-PrivateKey: …\(redacted, 14 chars\)`,
		`(?s)Upstox .*?/login/upstox -> api.upstox.com/v2/login/authorization/dialog -> 127.0.0.1:\d+/callback/upstox.*?Logged in.*?-> 200 OK.*?Authorization: Bearer …\(redacted, \d+ chars\)`,
		`Dashboard:  http://127\.0\.0\.1:\d+/`,
		`eval "\$\(.*env --config \S+/rules\.toml\)"`,
	} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("demo output does not match %s", re)
		}
	}
	// The demo's made-up credentials (cmd/authproxy/demo.go) and every
	// token shape stay out of the output.
	assertNoSecrets(t, "demo output", text, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "demo-Pass-2026", "demo-sec-8c1f2e7a9b",
		"DemoAppKeyQ7s9L2v", "DemoEncKeyZ3x8W1", "260408", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "demo-pf-secret-4b7c9d1e",
		"demo-kite-secret-5e2a9c", "DemoSmartKey01", `"1357"`, "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U", "demo-ux-secret-7f3b1d")
	for _, re := range []string{`eyJ[A-Za-z0-9_-]{8,}`, `[A-Za-z0-9_-]{30,}\.[A-Za-z0-9_-]{20,}`, `(?i)bearer [A-Za-z0-9_.-]{5,}`} {
		if m := regexp.MustCompile(re).FindString(text); m != "" {
			t.Errorf("demo output holds something token-like: %q", m)
		}
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", text)
	}
}

// usWorld is a Tradingo world whose proxy listens on a fixed free port, so
// that `authproxy env` prints the real address (as it does for a user).
func usWorld(t *testing.T) (*world, *tradingo.Fake, string) {
	t.Helper()
	w, fake, cfg := tradingoWorld(t, tgMPIN)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte(`listen = "127.0.0.1:0"`), []byte(`listen = "`+addr+`"`), 1)
	if err := os.WriteFile(cfg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return w, fake, cfg
}

// cleanEnv is the test's environment without proxy or CA variables.
func cleanEnv(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
			"NODE_EXTRA_CA_CERTS", "AUTHPROXY_CONFIG":
			continue
		}
		out = append(out, kv)
	}
	return append(out, extra...)
}

func withoutVars(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || k == n
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// runBinary runs authproxy with env and returns its exit code and output.
func runBinary(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		t.Fatalf("authproxy %v: %v", args, err)
	}
	return 0, string(out)
}

// nodeClient sends a POST through the proxy the way any Node program does
// without a proxy library: CONNECT, then TLS trusting only the default roots
// plus NODE_EXTRA_CA_CERTS.
const nodeClient = `
const http = require("http"), tls = require("tls");
const proxy = new URL(process.env.HTTPS_PROXY);
const [host, path, body] = process.argv.slice(-3);
const req = http.request({ host: proxy.hostname, port: proxy.port, method: "CONNECT", path: host + ":443" });
req.on("connect", (res, socket) => {
  if (res.statusCode !== 200) { console.log("CONNECT " + res.statusCode); process.exit(1); }
  const s = tls.connect({ socket, servername: host }, () => {
    s.write("POST " + path + " HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/json\r\n" +
      "Content-Length: " + Buffer.byteLength(body) + "\r\nConnection: close\r\n\r\n" + body);
  });
  let data = "";
  s.on("data", (c) => { data += c; });
  s.on("end", () => { console.log(data.split("\r\n")[0] + " " + (data.includes('"IsError":false') ? "IsError=false" : "?")); });
  s.on("error", (e) => { console.log("TLS " + e.code); process.exit(1); });
});
req.on("error", (e) => { console.log("proxy " + e.code); process.exit(1); });
req.end();
`

func TestUserSide(t *testing.T) {
	w, _, cfg := usWorld(t)
	p := startFixed(t, w, cfg, "--log-format", "json")
	env := w.clientEnv(cfg, &proc{addr: p.addr})
	orderBody := `{"Uid":"` + tgClientCode + `"}`

	// The README's notebook cell, word for word, in a Python that has only
	// authproxy on its PATH and the config in AUTHPROXY_CONFIG.
	nbEnv := cleanEnv("PATH="+filepath.Dir(binary)+string(os.PathListSeparator)+os.Getenv("PATH"), "AUTHPROXY_CONFIG="+cfg)
	out, err := python(t, nbEnv, `
import os, subprocess
exec(subprocess.check_output(["authproxy", "env", "--python"], text=True))

import requests, sys
r = requests.post(sys.argv[1], json={"Uid": sys.argv[2]})
print(r.status_code, r.json()["IsError"], os.environ["HTTPS_PROXY"] == "http://" + sys.argv[3])
`, orderBookURL, tgClientCode, p.addr)
	if err != nil || strings.TrimSpace(out) != "200 False True" {
		t.Fatalf("notebook cell: %q %v\n%s", out, err, p.Output())
	}

	// Python's standard library (as aiohttp and httpx do) trusts the proxy
	// through SSL_CERT_FILE, and finds it through https_proxy.
	out, err = python(t, env, `
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=json.dumps({"Uid": sys.argv[2]}).encode(), headers={"Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=30) as r:
    print(r.status, json.load(r)["IsError"])
`, orderBookURL, tgClientCode)
	if err != nil || strings.TrimSpace(out) != "200 False" {
		t.Fatalf("python urllib with SSL_CERT_FILE: %q %v", out, err)
	}

	// Node trusts the proxy's certificates through NODE_EXTRA_CA_CERTS.
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is required for this test: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	node := exec.CommandContext(ctx, "node", "-e", nodeClient, tgHost, "/kb/OrderBook/GetOrderBookList", orderBody)
	node.Env = env
	nout, err := node.CombinedOutput()
	cancel()
	if err != nil || strings.TrimSpace(string(nout)) != "HTTP/1.1 200 OK IsError=false" {
		t.Fatalf("node with NODE_EXTRA_CA_CERTS: %q %v\n%s", nout, err, p.Output())
	}
	// Without it, Node refuses the proxy's certificate.
	ctx, cancel = context.WithTimeout(context.Background(), 60*time.Second)
	node = exec.CommandContext(ctx, "node", "-e", nodeClient, tgHost, "/kb/OrderBook/GetOrderBookList", orderBody)
	node.Env = withoutVars(env, "NODE_EXTRA_CA_CERTS")
	nout, _ = node.CombinedOutput()
	cancel()
	if !strings.HasPrefix(strings.TrimSpace(string(nout)), "TLS ") {
		t.Fatalf("node without NODE_EXTRA_CA_CERTS: %q, want a TLS error", nout)
	}

	// A query string never reaches the log.
	if res := curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", orderBody,
		orderBookURL+"?note=do-not-log-me"); res.Status != 200 {
		t.Fatalf("curl: %d %s", res.Status, res.Body)
	}

	// JSON logs: one line per proxied request.
	var lines []map[string]any
	for _, l := range strings.Split(p.Output(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 4 {
		t.Fatalf("%d request log lines for 4 requests:\n%s", len(lines), p.Output())
	}
	for _, m := range lines {
		if m["account"] != "tg" || m["method"] != "POST" || m["path"] != "/kb/OrderBook/GetOrderBookList" ||
			m["status"] != float64(200) || m["outcome"] != "ok" || m["injected"] != true || m["replayed"] != false || m["dur"] == nil {
			t.Errorf("request log line %v", m)
		}
	}
	if n := strings.Count(p.Output(), "client TLS handshake failed"); n != 1 {
		t.Errorf("node's refused handshake logged %d times, want 1:\n%s", n, p.Output())
	}
	if strings.Contains(p.Output(), "do-not-log-me") {
		t.Errorf("the query string was logged")
	}

	// (Replays after a rejection are counted in authproxy_replays_total;
	// proxy's unit tests cover that: a second TOTP login here would wait
	// for the next 30-second code.)
	// /metrics after those requests.
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}).Get("http://" + p.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`authproxy_requests_total{account="tg",outcome="ok"} 4`,
		`authproxy_logins_total{account="tg",kind="login"} 1`,
		`authproxy_token_expiry_seconds{account="tg"} `,
		`authproxy_upstream_duration_seconds_count{account="tg"} 4`,
		`authproxy_open_tunnels `,
		"authproxy_client_tls_failures_total 1", // node without NODE_EXTRA_CA_CERTS
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, metrics)
		}
	}

	// `authproxy status`: a table, and JSON.
	table := runCLI(t, w, "status", "--config", cfg)
	if !regexp.MustCompile(`(?m)^ACCOUNT\s+TYPE\s+STATE\s+EXPIRES\s+REQUESTS`).MatchString(table) ||
		!regexp.MustCompile(`(?m)^tg\s+tradingo\s+ready\s+in (7h5\dm|8h00m)\s+4\s*$`).MatchString(table) ||
		!strings.Contains(table, "authproxy is running on "+p.addr) {
		t.Errorf("status table:\n%s", table)
	}
	var st struct {
		Running  bool `json:"running"`
		Accounts []struct{ Name, State string }
	}
	if err := json.Unmarshal([]byte(runCLI(t, w, "status", "--config", cfg, "--json")), &st); err != nil ||
		!st.Running || len(st.Accounts) != 1 || st.Accounts[0].State != "ready" {
		t.Errorf("status --json: %+v %v", st, err)
	}

	// doctor: all good with the env a user gets from `authproxy env`...
	code, dout := runBinary(t, env, "doctor", "--config", cfg)
	if code != 0 || !strings.Contains(dout, "0 failures") ||
		!strings.Contains(dout, "ok    curl") || !strings.Contains(dout, "verifies against it") ||
		!strings.Contains(dout, "ok    clock") || !strings.Contains(dout, "ok    account   tg (tradingo): ready") {
		t.Errorf("doctor with the right env: exit %d\n%s", code, dout)
	}
	// Its Python check is a real handshake through the proxy.
	if !strings.Contains(dout, "ok    python    python3 completed a TLS handshake with "+tgHost+" through the proxy: requests with CA bundle") {
		t.Errorf("doctor's python handshake:\n%s", dout)
	}
	code, dout = runBinary(t, append(withoutVars(env, "REQUESTS_CA_BUNDLE"), "REQUESTS_CA_BUNDLE="+w.caFile), "doctor", "--config", cfg)
	if code != 1 || !strings.Contains(dout, "fail  python    python3 could not complete a TLS handshake with "+tgHost+" through the proxy") ||
		!strings.Contains(dout, "CERTIFICATE_VERIFY_FAILED") {
		t.Errorf("doctor with a requests bundle lacking the CA: exit %d\n%s", code, dout)
	}
	// ...and a failure, with its fix, when HTTPS_PROXY is unset.
	code, dout = runBinary(t, withoutVars(env, "HTTPS_PROXY", "https_proxy"), "doctor", "--config", cfg)
	if code != 1 || !strings.Contains(dout, "fail  env       HTTPS_PROXY is not set") || !strings.Contains(dout, `fix: run eval "$(authproxy env --config`) {
		t.Errorf("doctor without HTTPS_PROXY: exit %d\n%s", code, dout)
	}
	// A NO_PROXY that swallows the broker host is a failure too.
	code, dout = runBinary(t, append(withoutVars(env, "NO_PROXY", "no_proxy"), "NO_PROXY=localhost,.swastika.co.in"), "doctor", "--config", cfg)
	if code != 1 || !strings.Contains(dout, `NO_PROXY entry ".swastika.co.in" sends `+tgHost+` around the proxy`) {
		t.Errorf("doctor with a bad NO_PROXY: exit %d\n%s", code, dout)
	}
	// A CA bundle without authproxy's CA: curl would fail, and doctor says so.
	code, dout = runBinary(t, append(withoutVars(env, "CURL_CA_BUNDLE"), "CURL_CA_BUNDLE="+w.caFile), "doctor", "--config", cfg)
	if code != 1 || !strings.Contains(dout, "fail  curl      $CURL_CA_BUNDLE ("+w.caFile+") does not contain the authproxy CA") {
		t.Errorf("doctor with a bundle lacking the CA: exit %d\n%s", code, dout)
	}
	assertNoSecrets(t, "doctor output", dout, tgMPIN, tgTOTPSecret)
}

// Text logs are the default; --quiet keeps only warnings and errors.
func TestLogFormats(t *testing.T) {
	w, _, cfg := usWorld(t)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)
	if res := curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"Uid":"`+tgClientCode+`"}`, orderBookURL); res.Status != 200 {
		t.Fatalf("curl: %d %s", res.Status, res.Body)
	}
	if !regexp.MustCompile(`level=INFO msg=request account=tg method=POST path=/kb/OrderBook/GetOrderBookList status=200 outcome=ok dur=\S+ injected=true replayed=false`).MatchString(p.Output()) {
		t.Errorf("no text request line:\n%s", p.Output())
	}
	p.stop()

	// --quiet also hides the "listening" line.
	q := startFixed(t, w, cfg, "--quiet")
	env = w.clientEnv(cfg, &proc{addr: q.addr})
	if res := curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"Uid":"`+tgClientCode+`"}`, orderBookURL); res.Status != 200 {
		t.Fatalf("curl: %d %s", res.Status, res.Body)
	}
	q.stop()
	if out := q.Output(); strings.Contains(out, "level=INFO") {
		t.Errorf("--quiet printed info lines:\n%s", out)
	}
}

// fixedProc is an authproxy started on its config's fixed listen address
// and found through /healthz (whatever its log format or level).
type fixedProc struct {
	t       *testing.T
	addr    string
	cmd     *exec.Cmd
	mu      sync.Mutex
	out     bytes.Buffer
	last    time.Time // when out last grew
	done    chan struct{}
	stopped bool
}

func (f *fixedProc) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = time.Now()
	return f.out.Write(b)
}

// Output is everything the proxy printed so far, once settled.
func (f *fixedProc) Output() string {
	return settled(&f.mu, &f.last, func() string { return f.out.String() })
}

func (f *fixedProc) stop() {
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		return
	}
	f.stopped = true
	f.mu.Unlock()
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		_ = f.cmd.Process.Kill()
		<-f.done
		f.t.Errorf("authproxy did not stop within 10s of SIGTERM")
	}
}

func startFixed(t *testing.T, w *world, cfg string, args ...string) *fixedProc {
	t.Helper()
	f := &fixedProc{t: t, addr: listenAddr(t, cfg), done: make(chan struct{})}
	f.cmd = exec.Command(binary, append([]string{"run", "--config", cfg}, args...)...)
	f.cmd.Env = w.procEnv()
	f.cmd.Stdout, f.cmd.Stderr = f, f
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = f.cmd.Wait(); close(f.done) }()
	t.Cleanup(f.stop)
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get("http://" + f.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return f
			}
		}
		select {
		case <-f.done:
			t.Fatalf("authproxy exited:\n%s", f.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("authproxy did not answer /healthz in 30s:\n%s", f.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// listenAddr reads the listen address from a config the test wrote.
func listenAddr(t *testing.T, cfg string) string {
	t.Helper()
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^listen = "([^"]+)"`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("no listen in %s", cfg)
	}
	return string(m[1])
}
