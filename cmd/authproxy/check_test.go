package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCheck(t *testing.T, body string, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "rules.toml")
	body = "listen = \"127.0.0.1:18899\"\nstate_dir = " + tomlQuote(filepath.Join(dir, "state")) + "\n" + body
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	look := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	environ := func() []string {
		var kv []string
		for k, v := range vars {
			kv = append(kv, k+"="+v)
		}
		return kv
	}
	code := run(context.Background(), append([]string{"check", "--config", cfg}, args...), env{
		stdout: &out, stderr: &errb, stdin: strings.NewReader(""),
		getenv: func(k string) string { return vars[k] }, lookupEnv: look, environ: environ,
	})
	return code, out.String(), errb.String()
}

const tgMisspelt = `
[brokers.tg]
type = "tradingo"
client_code = "GO1"
mpin = "${TRADINGO_MPN}"
totp_secret = "JBSWY3DPEHPK3PXP"
`

// ${TRADINGO_MPN} unset while TRADINGO_MPIN is set: a hint, exit 0; with
// --strict, exit 1.
func TestCheckSuggestsVariable(t *testing.T) {
	vars := map[string]string{"TRADINGO_MPIN": "1234", "HOME": "/nowhere"}
	code, out, errOut := runCheck(t, tgMisspelt, vars)
	if code != 0 {
		t.Errorf("exit %d without --strict\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "TRADINGO_MPN (did you mean TRADINGO_MPIN? it is set)") {
		t.Errorf("no suggestion:\n%s", out)
	}
	if code, _, errOut := runCheck(t, tgMisspelt, vars, "--strict"); code != 1 || !strings.Contains(errOut, "near miss") {
		t.Errorf("--strict: exit %d, want 1\n%s", code, errOut)
	}
	// Nothing close is set: no suggestion, --strict passes.
	code, out, _ = runCheck(t, tgMisspelt, map[string]string{"OTHER": "x"}, "--strict")
	if code != 0 || strings.Contains(out, "did you mean") {
		t.Errorf("no near miss: exit %d\n%s", code, out)
	}
}

// A misspelt key gets "did you mean".
func TestCheckSuggestsKey(t *testing.T) {
	body := "[brokers.tg]\ntype = \"tradingo\"\nclient_code = \"GO1\"\nmpn = \"1\"\ntotp_secret = \"JBSWY3DPEHPK3PXP\"\n\n[upstream]\ntimout = \"5s\"\n"
	code, _, errOut := runCheck(t, body, nil)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{"brokers.tg.mpn: unknown key (did you mean mpin?)", "upstream.timout: unknown key (did you mean timeout?)"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("lacks %q:\n%s", want, errOut)
		}
	}
}

// A browser-login account whose redirect_uri the proxy does not serve is
// flagged.
func TestCheckFlagsRedirect(t *testing.T) {
	body := "[brokers.pf]\ntype = \"pocketful\"\nclient_id = \"YA1\"\nclient_secret = \"s\"\nredirect_uri = \"http://203.0.113.9:8899/callback/pf\"\n"
	code, out, errOut := runCheck(t, body, nil, "--strict")
	if code != 1 || !strings.Contains(out, "redirect_uri http://203.0.113.9:8899/callback/pf is not this proxy's address 127.0.0.1:18899") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
	body = "[brokers.pf]\ntype = \"pocketful\"\nclient_id = \"YA1\"\nclient_secret = \"s\"\n"
	if code, out, errOut := runCheck(t, body, nil, "--strict"); code != 0 || strings.Contains(out, "warning") {
		t.Errorf("default redirect flagged: exit %d\n%s%s", code, out, errOut)
	}
}

func TestNearMiss(t *testing.T) {
	names := []string{"TRADINGO_MPIN", "HOME", "PATH", "TRADINGO_TOTP_SECRET"}
	for in, want := range map[string]string{"TRADINGO_MPN": "TRADINGO_MPIN", "tradingo_mpin": "TRADINGO_MPIN",
		"TRADINGO_TOTP_SECRT": "TRADINGO_TOTP_SECRET", "FIVEPAISA_PIN": "", "HOM": "HOME", "XY": ""} {
		if got := nearMiss(in, names); got != want {
			t.Errorf("nearMiss(%q) = %q, want %q", in, got, want)
		}
	}
}
