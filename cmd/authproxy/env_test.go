package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// envConfig writes a minimal config whose state dir has a quote and a space
// in its name, to exercise every shell's quoting.
func envConfig(t *testing.T) (cfg, stateDir string) {
	t.Helper()
	dir := t.TempDir()
	stateDir = filepath.Join(dir, "it's a dir")
	cfg = filepath.Join(dir, "rules.toml")
	body := "listen = \"127.0.0.1:18899\"\nstate_dir = " + tomlQuote(stateDir) + "\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, stateDir
}

func runEnv(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"env"}, args...), env{
		stdout: &out, stderr: &errb, stdin: strings.NewReader(""),
		getenv: func(string) string { return "" }, lookupEnv: func(string) (string, bool) { return "", false },
	})
	if code != 0 {
		t.Fatalf("authproxy env %v: exit %d\n%s", args, code, errb.String())
	}
	return out.String()
}

// The sh output, evaluated by a real sh, sets every variable exactly.
func TestEnvShEval(t *testing.T) {
	cfg, state := envConfig(t)
	out := runEnv(t, "--config", cfg)
	for _, shell := range []string{"sh", "bash", "zsh"} {
		if _, err := exec.LookPath(shell); err != nil {
			continue // the same output is checked with sh, which is always there
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, shell, "-c", `eval "$AUTHPROXY_ENV_OUT"; printf '%s\n' "$HTTPS_PROXY" "$https_proxy" "$SSL_CERT_FILE" "$REQUESTS_CA_BUNDLE" "$CURL_CA_BUNDLE" "$NODE_EXTRA_CA_CERTS" "$NO_PROXY"`)
		cmd.Env = []string{"AUTHPROXY_ENV_OUT=" + out, "PATH=" + os.Getenv("PATH")}
		got, err := cmd.Output()
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", shell, err)
		}
		want := strings.Join([]string{"http://127.0.0.1:18899", "http://127.0.0.1:18899",
			filepath.Join(state, "bundle.pem"), filepath.Join(state, "bundle.pem"), filepath.Join(state, "bundle.pem"),
			filepath.Join(state, "ca.pem"), "127.0.0.1,localhost,::1"}, "\n") + "\n"
		if string(got) != want {
			t.Errorf("%s got\n%s\nwant\n%s", shell, got, want)
		}
	}
}

func TestEnvFishAndPowerShellQuoting(t *testing.T) {
	cfg, state := envConfig(t)
	fish := runEnv(t, "--config", cfg, "--shell", "fish")
	wantFish := `set -gx SSL_CERT_FILE '` + strings.ReplaceAll(filepath.Join(state, "bundle.pem"), "'", `\'`) + `';`
	if !strings.Contains(fish, wantFish) || !strings.Contains(fish, "set -gx HTTPS_PROXY 'http://127.0.0.1:18899';") {
		t.Errorf("fish output lacks %q:\n%s", wantFish, fish)
	}
	ps := runEnv(t, "--config", cfg, "--shell", "powershell")
	wantPS := `$env:SSL_CERT_FILE = '` + strings.ReplaceAll(filepath.Join(state, "bundle.pem"), "'", "''") + `'`
	if !strings.Contains(ps, wantPS) || !strings.Contains(ps, "$env:HTTPS_PROXY = 'http://127.0.0.1:18899'") {
		t.Errorf("powershell output lacks %q:\n%s", wantPS, ps)
	}
	if got := fishQuote(`a\b'c`); got != `'a\\b\'c'` {
		t.Errorf("fishQuote = %s", got)
	}
	if _, err := exec.LookPath("fish"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "fish", "--no-config", "-c", `printf '%s' "$AUTHPROXY_ENV_OUT" | source; printf '%s' $SSL_CERT_FILE`)
		cmd.Env = []string{"AUTHPROXY_ENV_OUT=" + fish, "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		got, err := cmd.Output()
		if err != nil || string(got) != filepath.Join(state, "bundle.pem") {
			t.Errorf("fish sourced SSL_CERT_FILE = %q (%v)", got, err)
		}
	}
	var errb bytes.Buffer
	code := run(context.Background(), []string{"env", "--config", cfg, "--shell", "tcsh"}, env{
		stdout: &bytes.Buffer{}, stderr: &errb, getenv: func(string) string { return "" },
		lookupEnv: func(string) (string, bool) { return "", false }})
	if code != 2 {
		t.Errorf("--shell tcsh: exit %d, want 2 (usage)", code)
	}
}

// The --python output, exec'd by python3 as the README's notebook cell
// does, sets the variables in os.environ.
func TestEnvPythonExec(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed for this test: %v", err)
	}
	cfg, state := envConfig(t)
	out := runEnv(t, "--config", cfg, "--python")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-c", `import os, sys
exec(os.environ["AUTHPROXY_ENV_OUT"])
for k in ("HTTPS_PROXY", "https_proxy", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "no_proxy"):
    print(os.environ[k])
`)
	cmd.Env = []string{"AUTHPROXY_ENV_OUT=" + out, "PATH=" + os.Getenv("PATH")}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v\n%s\n%s", err, stderr.String(), out)
	}
	want := strings.Join([]string{"http://127.0.0.1:18899", "http://127.0.0.1:18899", filepath.Join(state, "bundle.pem"),
		filepath.Join(state, "bundle.pem"), filepath.Join(state, "ca.pem"), "127.0.0.1,localhost,::1"}, "\n") + "\n"
	if string(got) != want {
		t.Errorf("python got\n%s\nwant\n%s", got, want)
	}
}

func runEnvWith(t *testing.T, vars map[string]string, args ...string) (stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	look := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	code := run(context.Background(), append([]string{"env"}, args...), env{
		stdout: &out, stderr: &errb, stdin: strings.NewReader(""),
		getenv: func(k string) string { return vars[k] }, lookupEnv: look,
	})
	if code != 0 {
		t.Fatalf("authproxy env %v: exit %d\n%s", args, code, errb.String())
	}
	return out.String(), errb.String()
}

// The user's NO_PROXY survives `eval "$(authproxy env)"`, merged with the
// proxy's loopback entries; an entry that would bypass a broker host is
// left out with a warning.
func TestEnvMergesNoProxy(t *testing.T) {
	cfg, _ := envConfig(t)
	body, _ := os.ReadFile(cfg)
	body = append(body, []byte("\n[brokers.tg]\ntype = \"tradingo\"\nclient_code = \"X\"\nmpin = \"1\"\ntotp_secret = \"JBSWY3DPEHPK3PXP\"\n")...)
	if err := os.WriteFile(cfg, body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut := runEnvWith(t, map[string]string{"NO_PROXY": "corp.internal,10.0.0.0/8,swastika.co.in", "no_proxy": "localhost,build.lan"}, "--config", cfg)
	want := "export NO_PROXY='127.0.0.1,localhost,::1,corp.internal,10.0.0.0/8,build.lan'"
	if !strings.Contains(out, want+"\n") || !strings.Contains(out, strings.Replace(want, "NO_PROXY", "no_proxy", 1)+"\n") {
		t.Errorf("env output lacks %s:\n%s", want, out)
	}
	if !strings.Contains(errOut, `left "swastika.co.in" out of NO_PROXY`) {
		t.Errorf("no warning for the bypassing entry:\n%s", errOut)
	}
}

// HTTP_PROXY is exported only with --http.
func TestEnvHTTPProxyOnlyWhenAsked(t *testing.T) {
	cfg, _ := envConfig(t)
	out, _ := runEnvWith(t, nil, "--config", cfg)
	if strings.Contains(out, "HTTP_PROXY") || strings.Contains(out, "http_proxy") {
		t.Errorf("env without --http exports HTTP_PROXY:\n%s", out)
	}
	for _, args := range [][]string{{"--http"}, {"--http", "--python"}, {"--http", "--shell", "fish"}} {
		out, _ = runEnvWith(t, nil, append([]string{"--config", cfg}, args...)...)
		if !strings.Contains(out, "HTTP_PROXY") || !strings.Contains(out, "http_proxy") {
			t.Errorf("env %v lacks HTTP_PROXY and http_proxy:\n%s", args, out)
		}
	}
}

// env warns on stderr (and still exits 0) when nothing listens at the
// address, and when something that is not this state dir's proxy does.
func TestEnvWarnsWithoutProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // now nothing listens there
	dir := t.TempDir()
	cfg := filepath.Join(dir, "rules.toml")
	body := "listen = \"" + addr + "\"\nstate_dir = " + tomlQuote(filepath.Join(dir, "state")) + "\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut := runEnvWith(t, nil, "--config", cfg)
	if !strings.Contains(errOut, "nothing answers at "+addr) {
		t.Errorf("no warning with nothing listening:\n%s", errOut)
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("could not rebind %s: %v", addr, err)
	}
	defer ln.Close()
	_, errOut = runEnvWith(t, nil, "--config", cfg)
	if !strings.Contains(errOut, "is not the authproxy of state dir") {
		t.Errorf("no warning for a stranger at the address:\n%s", errOut)
	}
	if err := writeRuntime(filepath.Join(dir, "state"), addr); err != nil {
		t.Fatal(err)
	}
	_, errOut = runEnvWith(t, nil, "--config", cfg)
	if errOut != "" {
		t.Errorf("warning although this state dir's proxy listens there:\n%s", errOut)
	}
}
