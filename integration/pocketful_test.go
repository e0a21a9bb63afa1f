package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/fakebroker/pocketful"
)

const (
	pfHost      = "trade.pocketful.in"
	pfAppID     = "Ybg3ab2VXM"
	pfAppSecret = "gB2sxoP9C3XHoA17oyVkinj3KxkOXBwUBdH"
	pfClientID  = "YA0002"
	pfAPI       = "https://" + pfHost
)

const pfAccount = `[brokers.pf]
type = "pocketful"
client_id = "${PF_APP_ID}"
client_secret = "${PF_APP_SECRET}"
`

// pfBrowser plays a person's browser with python requests: it opens
// argv[1] and follows every redirect, using the proxy settings of its
// environment, and prints where it ended up as JSON.
const pfBrowser = `
import json, sys, requests
r = requests.get(sys.argv[1], timeout=30)
print(json.dumps({"status": r.status_code, "url": r.url, "text": r.text,
                  "history": [h.url for h in r.history]}))
`

type browserResult struct {
	Status  int      `json:"status"`
	URL     string   `json:"url"`
	Text    string   `json:"text"`
	History []string `json:"history"`
}

func pocketfulWorld(t *testing.T) (*world, *pocketful.Fake) {
	w := newWorld(t)
	fake := pocketful.New(pocketful.Options{AppID: pfAppID, AppSecret: pfAppSecret, ClientID: pfClientID})
	w.serve(fake, pfHost)
	w.env["PF_APP_ID"] = pfAppID
	w.env["PF_APP_SECRET"] = pfAppSecret
	return w, fake
}

// pfStatus reads the running proxy's /status entry for account pf.
func pfStatus(t *testing.T, p *proc) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/status", nil)
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep struct {
		Accounts []map[string]any `json:"accounts"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	for _, a := range rep.Accounts {
		if a["name"] == "pf" {
			return a
		}
	}
	t.Fatalf("no account pf in /status: %v", rep)
	return nil
}

// lastRequest is the fake's latest request to path.
func lastRequest(t *testing.T, fake *pocketful.Fake, path string) pocketful.Recorded {
	t.Helper()
	reqs := fake.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Path == path {
			return reqs[i]
		}
	}
	t.Fatalf("the fake saw no request to %s", path)
	return pocketful.Recorded{}
}

func want511(t *testing.T, p *proc, res curlResult) {
	t.Helper()
	var body struct {
		Error struct{ Code, Account, Hint string }
	}
	_ = json.Unmarshal([]byte(res.Body), &body)
	loginURL := "http://" + p.addr + "/login/pf"
	if res.Status != http.StatusNetworkAuthenticationRequired || res.Header.Get("X-Authproxy-Error") != "login_required" ||
		body.Error.Code != "login_required" || body.Error.Account != "pf" || !strings.Contains(body.Error.Hint, loginURL) {
		t.Fatalf("want 511 login_required with hint %s; got %d %s (%s)\nproxy output:\n%s", loginURL, res.Status, res.Body, res.Err, p.Output())
	}
}

func TestPocketfulBrowserLogin(t *testing.T) {
	w, fake := pocketfulWorld(t)
	cfg := w.writeConfig(pfAccount)
	p := w.start(cfg)
	// The app is registered with the proxy's own callback (default redirect_uri).
	fake.SetRedirectURI("http://" + p.addr + "/callback/pf")
	env := w.clientEnv(cfg, p)

	// Before any login: 511 with the /login/NAME hint, nothing forwarded.
	want511(t, p, curl(t, env, pfAPI+"/api/v1/holdings"))
	if st := pfStatus(t, p); st["state"] != "needs login" || st["interactive"] != true {
		t.Errorf("status before login = %v", st)
	}
	if c := fake.Counts(); c.APICalls != 0 || c.TokenRejections != 0 {
		t.Fatalf("a request reached the fake unauthenticated: %+v", c)
	}

	// The browser login: /login/pf on the proxy, the consent page on
	// trade.pocketful.in through the proxy (MITM'd, bypassed untouched),
	// then straight back to the proxy's /callback/pf.
	out, err := python(t, env, pfBrowser, "http://"+p.addr+"/login/pf")
	if err != nil {
		t.Fatalf("browser: %v\n%s", err, p.Output())
	}
	var br browserResult
	if err := json.Unmarshal([]byte(out), &br); err != nil {
		t.Fatalf("browser output %q: %v", out, err)
	}
	if br.Status != 200 || !strings.Contains(br.Text, "Logged in") || !strings.HasPrefix(br.URL, "http://"+p.addr+"/callback/pf?") ||
		len(br.History) != 2 || !strings.HasPrefix(br.History[1], pfAPI+"/oauth2/auth?") {
		t.Fatalf("browser login: %+v\nproxy output:\n%s", br, p.Output())
	}
	consent := lastRequest(t, fake, "/oauth2/auth")
	if consent.Authorization != "" || consent.Host != pfHost {
		t.Errorf("the consent page request was altered: Authorization %q Host %q", consent.Authorization, consent.Host)
	}
	if c := fake.Counts(); c.Authorizations != 1 || c.Exchanges != 1 || c.TradingInfo != 1 {
		t.Fatalf("fake counts after login = %+v", c)
	}
	if st := pfStatus(t, p); st["state"] != "ready" {
		t.Errorf("status after login = %v", st)
	}

	// curl: the token is injected (replacing the client's) and client_id
	// is filled in where the route needs it and the client left it out.
	res := curl(t, env, "-H", "Authorization: Bearer notebook-leftover", pfAPI+"/api/v1/holdings")
	if res.Status != 200 || !strings.Contains(res.Body, `"status":"success"`) {
		t.Fatalf("curl holdings: %d %s %s\n%s", res.Status, res.Body, res.Err, p.Output())
	}
	got := lastRequest(t, fake, "/api/v1/holdings")
	token := strings.TrimPrefix(got.Authorization, "Bearer ")
	if got.RawQuery != "client_id="+pfClientID || !fake.ValidToken(token) {
		t.Errorf("holdings reached the fake with query %q and Authorization %q", got.RawQuery, got.Authorization)
	}

	// python requests: GETs with and without client_id, an order POST.
	out, err = python(t, env, `
import requests, sys
base = sys.argv[1]
a = requests.get(base + "/api/v1/orders", params={"type": "pending"})
b = requests.get(base + "/api/v1/positions", params={"client_id": sys.argv[2], "type": "live"})
c = requests.get(base + "/api/v1/search", params={"key": "INFY"})
d = requests.post(base + "/api/v1/orders", json={"client_id": sys.argv[2], "exchange": "NSE", "quantity": 1})
print(a.status_code, b.status_code, c.status_code, d.status_code, d.json()["data"]["oms_order_id"])
`, pfAPI, pfClientID)
	if err != nil || strings.TrimSpace(out) != "200 200 200 200 OMS000001" {
		t.Fatalf("python requests: %q %v\n%s", out, err, p.Output())
	}
	for path, query := range map[string]string{
		"/api/v1/orders":    "", // the POST: left alone
		"/api/v1/positions": "client_id=" + pfClientID + "&type=live",
		"/api/v1/search":    "key=INFY",
	} {
		if r := lastRequest(t, fake, path); r.RawQuery != query {
			t.Errorf("%s %s reached the fake with query %q, want %q", r.Method, path, r.RawQuery, query)
		}
	}
	var pending bool
	for _, r := range fake.Requests() {
		pending = pending || (r.Path == "/api/v1/orders" && r.RawQuery == "type=pending&client_id="+pfClientID)
	}
	if !pending {
		t.Error("GET /api/v1/orders?type=pending did not get client_id")
	}

	// A replayed callback (state already used) and a forged state are
	// refused with an HTML page, and no code exchange happens.
	direct := w.procEnv()
	for name, u := range map[string]string{
		"replayed": br.URL,
		"forged":   "http://" + p.addr + "/callback/pf?code=forged.code&state=forgedstate12345",
	} {
		res := curl(t, direct, u)
		if res.Status != http.StatusBadRequest || !strings.Contains(res.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(res.Body, "unknown or used state") {
			t.Errorf("%s callback: %d %s", name, res.Status, res.Body)
		}
	}
	if c := fake.Counts(); c.Exchanges != 1 || c.ExchangeFailures != 0 {
		t.Errorf("a refused callback reached the token endpoint: %+v", c)
	}

	// The token dies (midnight, revocation): Pocketful answers 403
	// TokenException and the client gets 511, not the broker's error.
	fake.Expire()
	want511(t, p, curl(t, env, pfAPI+"/api/v1/holdings"))
	if c := fake.Counts(); c.TokenRejections != 1 {
		t.Errorf("token rejections = %d, want 1", c.TokenRejections)
	}
	if st := pfStatus(t, p); st["state"] != "needs login" {
		t.Errorf("status after expiry = %v", st)
	}

	// `authproxy login pf` against the running proxy; $BROWSER is a
	// script that runs the python browser with the client environment.
	dir := t.TempDir()
	script := filepath.Join(dir, "browser.sh")
	browserOut := filepath.Join(dir, "browser.out")
	if err := os.WriteFile(filepath.Join(dir, "browser.py"), []byte(pfBrowser), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec python3 "+filepath.Join(dir, "browser.py")+" \"$1\" >"+browserOut+" 2>&1\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	loginEnv := append(append([]string{}, env...), "BROWSER="+script, "PF_APP_ID="+pfAppID, "PF_APP_SECRET="+pfAppSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "login", "pf", "--config", cfg, "--timeout", "45s")
	cmd.Env = loginEnv
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		b, _ := os.ReadFile(browserOut)
		t.Fatalf("authproxy login: %v\nstdout:\n%s\nstderr:\n%s\nbrowser:\n%s\nproxy:\n%s", err, stdout, stderr.String(), b, p.Output())
	}
	if !strings.Contains(string(stdout), "http://"+p.addr+"/login/pf") || !strings.Contains(string(stdout), "Logged in") ||
		!strings.Contains(stderr.String(), "waiting for the browser login") {
		t.Errorf("authproxy login output:\n%s\n%s", stdout, stderr.String())
	}
	if c := fake.Counts(); c.Exchanges != 2 {
		t.Errorf("exchanges after `authproxy login` = %d, want 2", c.Exchanges)
	}
	res = curl(t, env, pfAPI+"/api/v1/trades")
	if res.Status != 200 {
		t.Fatalf("after `authproxy login`: %d %s", res.Status, res.Body)
	}

	// Nothing printed anywhere holds a secret.
	var secrets []string
	for _, r := range fake.Requests() {
		if strings.HasPrefix(r.Authorization, "Bearer ") {
			secrets = append(secrets, strings.TrimPrefix(r.Authorization, "Bearer "))
		}
		if r.Path == "/oauth2/token" {
			secrets = append(secrets, extractForm(string(r.Body), "code"))
		}
	}
	secrets = append(secrets, pfAppSecret)
	assertNoSecrets(t, "proxy output", p.Output(), secrets...)
	assertNoSecrets(t, "authproxy login output", string(stdout)+stderr.String(), secrets...)
	assertNoSecrets(t, "authproxy status", runCLI(t, w, "status", "--config", cfg, "--json"), secrets...)
}

func extractForm(body, key string) string {
	for _, kv := range strings.Split(body, "&") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

var loginURLRE = regexp.MustCompile(`http://127\.0\.0\.1:\d+/login/pf`)

// TestPocketfulLoginWithoutProxy: `authproxy login` with no proxy running
// serves the login on the account's loopback redirect_uri itself; the
// proxy started afterwards uses the saved token.
func TestPocketfulLoginWithoutProxy(t *testing.T) {
	w, fake := pocketfulWorld(t)
	redirect := "http://127.0.0.1:" + freePort(t) + "/oauth/pocketful"
	fake.SetRedirectURI(redirect)
	cfg := w.writeConfig(pfAccount + "redirect_uri = \"" + redirect + "\"\n")

	// Usage errors exit 2.
	for _, args := range [][]string{{"login", "--config", cfg}, {"login", "nosuch", "--config", cfg}, {"login", "pf", "extra", "--config", cfg}} {
		cmd := exec.Command(binary, args...)
		cmd.Env = w.procEnv()
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("authproxy %v: %v, want exit 2\n%s", args, err, out)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "login", "pf", "--config", cfg, "--timeout", "45s")
	cmd.Env = w.procEnv() // no DISPLAY, no BROWSER: the URL is printed
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var printed strings.Builder
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			printed.WriteString(sc.Text() + "\n")
			if m := loginURLRE.FindString(sc.Text()); m != "" {
				select {
				case found <- m:
				default:
				}
			}
		}
		close(found)
	}()
	loginURL, ok := <-found
	if !ok {
		_ = cmd.Wait()
		t.Fatalf("authproxy login printed no URL:\n%s", stderr.String())
	}

	// The "browser" reaches the real host name through --connect-to (no
	// proxy is running) and follows the redirects back to the login's
	// temporary callback server.
	srvAddr := w.resolve[pfHost+":443"]
	res := curl(t, w.procEnv(), "-L", "--max-redirs", "5", "--cacert", w.caFile,
		"--connect-to", pfHost+":443:"+srvAddr, loginURL)
	if res.Status != 200 || !strings.Contains(res.Body, "Logged in") {
		t.Fatalf("browser: %d %s %s\n%s", res.Status, res.Body, res.Err, stderr.String())
	}
	// The output ends when the command exits; only then Wait.
	eof := time.After(20 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-found:
		case <-eof:
			t.Fatalf("authproxy login did not exit after the login\n%s", stderr.String())
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("authproxy login: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(printed.String(), "Logged in") {
		t.Errorf("authproxy login output:\n%s", printed.String())
	}
	info, err := os.Stat(filepath.Join(w.stateDir, "tokens.json"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("tokens.json: %v", err)
	}

	// The proxy starts with the saved token: no new login.
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)
	res = curl(t, env, pfAPI+"/api/v2/funds/view?type=all")
	if res.Status != 200 {
		t.Fatalf("proxy after `authproxy login`: %d %s\n%s", res.Status, res.Body, p.Output())
	}
	if r := lastRequest(t, fake, "/api/v2/funds/view"); r.RawQuery != "type=all&client_id="+pfClientID {
		t.Errorf("funds query = %q", r.RawQuery)
	}
	if c := fake.Counts(); c.Exchanges != 1 || c.Authorizations != 1 {
		t.Errorf("fake counts = %+v", c)
	}
}
