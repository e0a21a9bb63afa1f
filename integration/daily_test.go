package integration

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/fakebroker/tradingo"
)

// waitOutput waits (bounded) until the proxy has printed want.
func waitOutput(t *testing.T, p *proc, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.Output(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("proxy did not print %q in 20s:\n%s", want, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Daily use against one running proxy: `run --reload` picks up a new
// account on SIGHUP while the unchanged one keeps its token; /ca.pem serves
// the CA; `ca rotate` refuses while the proxy runs; --version and --help
// work on the built binary.
func TestDailyUse(t *testing.T) {
	w, _ := tradovateWorld(t, tvPassword, nil)
	fake := tradingo.New(tradingo.Options{ClientCode: tgClientCode, MPIN: tgMPIN, TOTPSecret: tgTOTPSecret})
	w.serve(fake, tgHost)
	w.env["TG_CLIENT_CODE"] = tgClientCode
	w.env["TG_MPIN"] = tgMPIN
	w.env["TG_TOTP_SECRET"] = tgTOTPSecret
	cfg := w.writeConfig(tgAccount)
	p := w.start(cfg, "--reload")
	env := w.clientEnv(cfg, p)
	order := func(host string) curlResult {
		return curl(t, env, "-X", "POST", "-H", "Content-Type: application/json",
			"-d", `{"Uid":"`+tgClientCode+`"}`, "https://"+host+"/kb/OrderBook/GetOrderBookList")
	}
	if res := order(tgHost); res.Status != 200 {
		t.Fatalf("before reload: %d %s %s\n%s", res.Status, res.Err, res.Body, p.Output())
	}
	if n := fake.Logins(); n != 1 {
		t.Fatalf("%d logins before reload, want 1", n)
	}

	// A Tradovate account appears in rules.toml; SIGHUP.
	tvOnly, _, _ := strings.Cut(tvAccount, "[limits]")
	w.writeConfig(tgAccount + "\n" + tvOnly)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, p, "reloaded the config")
	accounts := func() curlResult { return curl(t, env, tvREST+"/v1/account/list") }
	if res := accounts(); res.Status != 200 {
		t.Fatalf("new account after reload: %d %s %s\n%s", res.Status, res.Err, res.Body, p.Output())
	}
	if res := order(tgHost); res.Status != 200 {
		t.Fatalf("old account after reload: %d %s %s", res.Status, res.Err, res.Body)
	}
	if n := fake.Logins(); n != 1 {
		t.Errorf("%d Tradingo logins after reload, want 1 (tg keeps its token)", n)
	}
	// A broken config on SIGHUP changes nothing.
	if err := os.WriteFile(cfg, []byte("listen = 12\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, p, "reload failed")
	if res := accounts(); res.Status != 200 {
		t.Fatalf("after a failed reload: %d %s %s", res.Status, res.Err, res.Body)
	}

	// GET /ca.pem is the state dir's ca.pem.
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + p.addr + "/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want, _ := os.ReadFile(filepath.Join(w.stateDir, "ca.pem"))
	if resp.StatusCode != 200 || !bytes.Equal(body, want) {
		t.Errorf("/ca.pem: %d\n%s", resp.StatusCode, body)
	}

	// ca rotate under the running proxy is refused and changes nothing.
	good := w.writeConfig(tgAccount)
	code, out := runBinary(t, w.procEnv(), "ca", "rotate", "--config", good)
	if code != 1 || !strings.Contains(out, "ca rotate refused") {
		t.Errorf("ca rotate under a running proxy: exit %d\n%s", code, out)
	}
	if after, _ := os.ReadFile(filepath.Join(w.stateDir, "ca.pem")); !bytes.Equal(after, want) {
		t.Error("ca rotate changed the CA under a running proxy")
	}
	if res := order(tgHost); res.Status != 200 {
		t.Errorf("after a refused rotate: %d %s", res.Status, res.Err)
	}

	// The built binary's --version and --help.
	code, out = runBinary(t, w.procEnv(), "--version")
	if code != 0 || !strings.HasPrefix(out, "authproxy ") || !strings.Contains(out, "go: go1.") {
		t.Errorf("--version: exit %d\n%s", code, out)
	}
	code, out = runBinary(t, w.procEnv(), "--help")
	for _, c := range []string{"run", "env", "login", "status", "token", "check", "demo", "doctor", "ca", "version", "help"} {
		if !strings.Contains(out, "\n  "+c+" ") {
			t.Errorf("--help lacks %s (exit %d)", c, code)
		}
	}
}
