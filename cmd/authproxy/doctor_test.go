package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNoProxyMatch(t *testing.T) {
	const host = "openapi.5paisa.com"
	tests := []struct {
		noProxy string
		hit     bool
		entry   string
	}{
		{"", false, ""},
		{"127.0.0.1,localhost,::1", false, ""},
		{"*", true, "*"},
		{"localhost, *", true, "*"},
		{"openapi.5paisa.com", true, "openapi.5paisa.com"},
		{"OpenAPI.5paisa.COM", true, "OpenAPI.5paisa.COM"},
		{".5paisa.com", true, ".5paisa.com"},
		{"*.5paisa.com", true, "*.5paisa.com"},
		{"5paisa.com", true, "5paisa.com"},
		{"paisa.com", true, "paisa.com"}, // Python requests: plain suffix
		{"openapi.5paisa.com:443", true, "openapi.5paisa.com:443"},
		{"openapi.5paisa.com:8443", false, ""},
		{"dev-openapi.5paisa.com", false, ""},
		{"10.0.0.0/8,192.168.1.1", false, ""},
		{"example.com other.org", false, ""},
		{"example.com other.org 5paisa.com", true, "5paisa.com"},
	}
	for _, tc := range tests {
		entry, why, hit := noProxyMatch(tc.noProxy, host)
		if hit != tc.hit || entry != tc.entry {
			t.Errorf("noProxyMatch(%q) = %q, %v (%s); want %q, %v", tc.noProxy, entry, hit, why, tc.entry, tc.hit)
		}
	}
}

func TestSameAddrAndProxyURL(t *testing.T) {
	tests := []struct {
		value, addr string
		same        bool
	}{
		{"http://127.0.0.1:8899", "127.0.0.1:8899", true},
		{"http://localhost:8899/", "127.0.0.1:8899", true},
		{"127.0.0.1:8899", "127.0.0.1:8899", true},
		{"http://user:pw@127.0.0.1:8899", "127.0.0.1:8899", true},
		{"http://127.0.0.1:8898", "127.0.0.1:8899", false},
		{"http://proxy.corp:3128", "127.0.0.1:8899", false},
	}
	for _, tc := range tests {
		_, addr, err := proxyURLAddr(tc.value)
		if err != nil {
			t.Fatalf("%q: %v", tc.value, err)
		}
		if got := sameAddr(addr, tc.addr); got != tc.same {
			t.Errorf("%q vs %s: same = %v, want %v", tc.value, tc.addr, got, tc.same)
		}
	}
	if got := redactURL("http://alice:s3cret@127.0.0.1:8899"); strings.Contains(got, "s3cret") {
		t.Errorf("redactURL kept the password: %s", got)
	}
}

// doctorRun runs `authproxy doctor` in-process with the given environment.
func doctorRun(t *testing.T, cfg string, vars map[string]string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	code := run(context.Background(), []string{"doctor", "--config", cfg, "--timeout", "2s"}, env{
		stdout: &out, stderr: &errb, stdin: strings.NewReader(""),
		getenv: func(k string) string { return vars[k] }, lookupEnv: lookup,
	})
	return code, out.String() + errb.String()
}

func TestDoctorWithoutProxy(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "rules.toml")
	body := "listen = \"127.0.0.1:1\"\nstate_dir = " + tomlQuote(filepath.Join(dir, "state")) + `
[upstream]
resolve = { "tradingorestapi.swastika.co.in:443" = "127.0.0.1:1" }
[brokers.tg]
type = "tradingo"
client_code = "${DOC_TG_CLIENT}"
mpin = "${DOC_TG_MPIN}"
totp_secret = "${DOC_TG_TOTP}"
`
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := doctorRun(t, cfg, map[string]string{"NO_PROXY": ".swastika.co.in", "HOME": dir})
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{
		"fail  proxy     nothing answers at 127.0.0.1:1",
		"fix: start it: authproxy run --config " + cfg,
		"fail  ca ",
		"fail  env       HTTPS_PROXY is not set",
		`fail  no_proxy  NO_PROXY entry ".swastika.co.in" sends tradingorestapi.swastika.co.in around the proxy`,
		"warn  clock     could not reach tradingorestapi.swastika.co.in",
		"warn  account   tg (tradingo): unconfigured: unset DOC_TG_CLIENT, DOC_TG_MPIN, DOC_TG_TOTP",
		"failures",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	// Every warn/fail line is followed by its fix.
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if (strings.HasPrefix(l, "fail") || strings.HasPrefix(l, "warn")) && !strings.Contains(l, "skipped") {
			if i+1 >= len(lines) || !strings.Contains(lines[i+1], "fix: ") {
				t.Errorf("no fix after %q", l)
			}
		}
	}
}

func TestDoctorBadConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "rules.toml")
	if err := os.WriteFile(cfg, []byte("listen = 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := doctorRun(t, cfg, map[string]string{})
	if code != 1 || !strings.Contains(out, "fail  config") || !strings.Contains(out, "fix: ") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func tomlQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
