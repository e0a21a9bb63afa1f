package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authproxy/authproxy/certs"
	"github.com/authproxy/authproxy/internal/fakebroker/tradingo"
)

// This file pins DESIGN.md "Who may get credentials" from the outside: a
// client of another Unix user, browser requests, plain http, TRACE, own
// endpoints under another Host, a login started by another site, a
// renewal through the proxy, a login endpoint that redirects, and a state
// dir someone else could write.

// asUser runs curl as another Unix user (runuser), printing the body then
// the status on a last line.
func asUser(t *testing.T, user string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append([]string{"-u", user, "--", "curl", "-sS", "--max-time", "50", "-w", "\n%{http_code}"}, args...)
	cmd := exec.CommandContext(ctx, "runuser", full...)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	out, err := cmd.Output()
	s := strings.TrimRight(string(out), "\n")
	i := strings.LastIndexByte(s, '\n')
	status := 0
	if i >= 0 {
		for _, c := range s[i+1:] {
			status = status*10 + int(c-'0')
		}
		s = s[:i]
	}
	if err != nil && status == 0 {
		t.Fatalf("runuser curl: %v (%s)", err, out)
	}
	return status, s
}

func errorCode(body string) string {
	var b struct{ Error struct{ Code string } }
	_ = json.Unmarshal([]byte(body), &b)
	return b.Error.Code
}

const pfLoginAccount = `
[brokers.pf]
type = "pocketful"
client_id = "pf-client"
client_secret = "${PF_SECRET}"
`

func TestGuaranteeOnlyTheOwnersProgramsGetCredentials(t *testing.T) {
	t.Parallel()
	guarantee(t, "a loopback client of another Unix user gets 403 forbidden; the owner's needs no set-up")
	guarantee(t, "requests from a web page of another site (Origin, Sec-Fetch-Site) get 403 forbidden; the broker's own origin passes")
	guarantee(t, "plain http:// and TRACE to a broker host are refused")
	guarantee(t, "own endpoints answer only the proxy's Host names; another site cannot start a login")
	w, fake, _ := tradingoWorld(t, tgMPIN)
	w.env["PF_SECRET"] = "pf-secret-0042"
	cfg := w.writeConfig(tgAccount + pfLoginAccount)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)
	post := []string{"-X", "POST", "-H", "Content-Type: application/json", "-d", `{"Uid":"` + tgClientCode + `"}`, orderBookURL}

	// The owner: zero set-up.
	if res := curl(t, env, post...); res.Status != 200 {
		t.Fatalf("owner: %d %s %s\n%s", res.Status, res.Body, res.Err, p.Output())
	}
	seen := len(fake.Requests())

	// Another Unix user, as in the issue: curl -k -x through the proxy.
	if os.Geteuid() != 0 {
		t.Error("this test runs curl as user nobody and needs root: run the integration tests as root")
	} else if _, err := exec.LookPath("runuser"); err != nil {
		t.Error("runuser (util-linux) is needed to run a client as another user")
	} else {
		status, body := asUser(t, "nobody", append([]string{"-k", "-x", "http://" + p.addr}, post...)...)
		if status != http.StatusForbidden || errorCode(body) != "forbidden" || !strings.Contains(body, "65534") {
			t.Errorf("user nobody through CONNECT: %d %s, want 403 forbidden naming uid 65534", status, body)
		}
		status, body = asUser(t, "nobody", "http://"+p.addr+"/status")
		if status != http.StatusForbidden {
			t.Errorf("user nobody on /status: %d %s, want 403", status, body)
		}
	}

	// Web pages of other sites.
	for _, h := range [][]string{
		{"-H", "Origin: https://evil.example"},
		{"-H", "Origin: null"},
		{"-H", "Sec-Fetch-Site: cross-site"},
		{"-H", "Sec-Fetch-Site: same-site", "-H", "Origin: https://" + tgHost},
	} {
		res := curl(t, env, append(h, post...)...)
		if res.Status != http.StatusForbidden || res.Header.Get("X-Authproxy-Error") != "forbidden" {
			t.Errorf("%v: %d %s, want 403 forbidden", h, res.Status, res.Body)
		}
	}
	// A script sending the broker's own origin keeps working.
	if res := curl(t, env, append([]string{"-H", "Origin: https://" + tgHost}, post...)...); res.Status != 200 {
		t.Errorf("broker's own origin: %d %s", res.Status, res.Body)
	}
	seen++

	// Plain http:// and TRACE.
	res := curl(t, env, "-x", "http://"+p.addr, "-X", "POST", "-H", "Content-Type: application/json", "-d", "{}", "http://"+tgHost+"/kb/OrderBook/GetOrderBookList")
	if res.Status != http.StatusForbidden || !strings.Contains(res.Body, "https://"+tgHost) {
		t.Errorf("plain http://: %d %s, want 403 with an https:// hint", res.Status, res.Body)
	}
	if res := curl(t, env, "-X", "TRACE", orderBookURL); res.Status != http.StatusForbidden {
		t.Errorf("TRACE: %d %s, want 403", res.Status, res.Body)
	}
	if n := len(fake.Requests()); n != seen {
		t.Errorf("the broker saw %d requests, want %d: a refused request got through", n, seen)
	}

	// Own endpoints: DNS rebinding and cross-site logins.
	own := "http://" + p.addr
	noProxy := append(append([]string{}, env...), "NO_PROXY=*", "no_proxy=*")
	if res := curl(t, noProxy, "-H", "Host: evil.example:8899", own+"/status"); res.Status != http.StatusForbidden {
		t.Errorf("/status with Host evil.example: %d, want 403", res.Status)
	}
	if res := curl(t, noProxy, own+"/status"); res.Status != 200 {
		t.Errorf("/status: %d %s", res.Status, res.Body)
	}
	if res := curl(t, noProxy, "-H", "Sec-Fetch-Site: cross-site", own+"/login/pf"); res.Status != http.StatusForbidden {
		t.Errorf("/login/pf from another site: %d, want 403", res.Status)
	}
	// The URL the hints print keeps working when opened (top-level
	// navigation: Sec-Fetch-Site none), however often a page tried.
	for range 20 {
		curl(t, noProxy, "-H", "Sec-Fetch-Site: same-origin", own+"/login/pf")
	}
	for _, site := range []string{"none", ""} {
		args := []string{own + "/login/pf"}
		if site != "" {
			args = append([]string{"-H", "Sec-Fetch-Site: " + site}, args...)
		}
		if res := curl(t, noProxy, args...); res.Status != http.StatusFound {
			t.Errorf("/login/pf (Sec-Fetch-Site %q): %d %s, want 302 to the consent page", site, res.Status, res.Body)
		}
	}
}

// A login endpoint that redirects gets its credentials sent once, never to
// the Location; the client sees login_failed naming the Location's host.
func TestGuaranteeLoginNeverFollowsRedirects(t *testing.T) {
	t.Parallel()
	guarantee(t, "the login client never follows a redirect: login_failed naming the Location host")
	w := newWorld(t)
	fake := tradingo.New(tradingo.Options{ClientCode: tgClientCode, MPIN: tgMPIN, TOTPSecret: tgTOTPSecret})
	var stolen atomic.Int64
	w.serve(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case tradingo.LoginPath:
			http.Redirect(rw, r, "https://collector.evil.example/steal", http.StatusTemporaryRedirect)
		case "/steal":
			stolen.Add(1)
		default:
			fake.ServeHTTP(rw, r)
		}
	}), tgHost, "collector.evil.example")
	w.env["TG_CLIENT_CODE"], w.env["TG_MPIN"], w.env["TG_TOTP_SECRET"] = tgClientCode, tgMPIN, tgTOTPSecret
	cfg := w.writeConfig(tgAccount)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)
	res := curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", "{}", orderBookURL)
	if res.Status != http.StatusBadGateway || errorCode(res.Body) != "login_failed" || !strings.Contains(res.Body, "collector.evil.example") {
		t.Errorf("%d %s, want 502 login_failed naming collector.evil.example\n%s", res.Status, res.Body, p.Output())
	}
	if stolen.Load() != 0 {
		t.Error("the login was re-sent to the redirect's Location")
	}
	assertNoSecrets(t, "proxy output", p.Output(), tgMPIN, tgTOTPSecret)
}

// Tradovate's renewal through the proxy is never injected: a client cannot
// get a fresh token for the account.
func TestGuaranteeRenewalIsNotInjected(t *testing.T) {
	t.Parallel()
	guarantee(t, "the brokers' auth endpoints (Tradovate renewaccesstoken) are never injected into")
	w, _ := tradovateWorld(t, tvPassword, nil)
	cfg := w.writeConfig(tvAccount)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)
	if res := curl(t, env, tvREST+"/v1/account/list"); res.Status != 200 {
		t.Fatalf("owner: %d %s\n%s", res.Status, res.Body, p.Output())
	}
	for _, path := range []string{"/v1/auth/renewaccesstoken", "/v1/auth/renewAccessToken"} {
		res := curl(t, env, tvREST+path)
		if res.Status == 200 || strings.Contains(res.Body, "accessToken\":\"e") {
			t.Errorf("GET %s through the proxy: %d %s: a token came back", path, res.Status, res.Body)
		}
	}
}

// runExpectingFailure runs `authproxy run` and expects it to exit non-zero.
func runExpectingFailure(t *testing.T, w *world, cfg string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "run", "--config", cfg)
	cmd.Env = w.procEnv()
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("authproxy run did not refuse to start (err %v):\n%s", err, out)
	}
	return string(out)
}

func TestGuaranteeStateDirAndCAChecks(t *testing.T) {
	t.Parallel()
	guarantee(t, "a state dir writable by others, or a CA without critical name constraints for the configured domains, stops the proxy")
	w, _, cfg := tradingoWorld(t, tgMPIN)
	if err := os.MkdirAll(w.stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(w.stateDir, 0o777); err != nil {
		t.Fatal(err)
	}
	out := runExpectingFailure(t, w, cfg)
	if !strings.Contains(out, "writable by group or others") {
		t.Errorf("world-writable state dir: output lacks the reason:\n%s", out)
	}
	if err := os.Chmod(w.stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// A planted CA with no name constraints.
	ca, err := certs.LoadOrCreate(w.stateDir, certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(ca.BundlePath())
	out = runExpectingFailure(t, w, cfg)
	if !strings.Contains(out, "authproxy ca rotate") {
		t.Errorf("planted CA: output does not point at `authproxy ca rotate`:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(w.stateDir, "bundle.pem")); err == nil {
		t.Error("the planted CA went into bundle.pem")
	}
	// `authproxy ca rotate` fixes it.
	cmd := exec.Command(binary, "ca", "rotate", "--config", cfg)
	cmd.Env = w.procEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ca rotate: %v\n%s", err, out)
	}
	w.start(cfg)
}
