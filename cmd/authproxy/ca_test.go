package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runWithEnv(t *testing.T, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, env{
		stdout: &out, stderr: &errb, stdin: strings.NewReader(""),
		getenv: func(k string) string { return vars[k] }, lookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
	})
	return code, out.String(), errb.String()
}

// ca install writes the CA into the Debian-style anchors directory and runs
// update-ca-certificates; ca uninstall removes it and runs it again. The
// store lives under a temporary root: the machine's store is not touched.
func TestCAInstallUninstall(t *testing.T) {
	cfg, state := envConfig(t)
	root := t.TempDir()
	anchors := filepath.Join(root, "usr/local/share/ca-certificates")
	if err := os.MkdirAll(anchors, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	calls := filepath.Join(bin, "calls")
	script := "#!/bin/sh\necho \"$0 $*\" >> " + shQuote(calls) + "\n"
	if err := os.WriteFile(filepath.Join(bin, "update-ca-certificates"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	vars := map[string]string{"AUTHPROXY_CA_STORE_ROOT": root}

	code, out, errOut := runWithEnv(t, vars, "ca", "install", "--config", cfg)
	if code != 0 {
		t.Fatalf("ca install: exit %d\n%s%s", code, out, errOut)
	}
	dst := filepath.Join(anchors, anchorName(state)+".crt")
	got, err := os.ReadFile(dst)
	want, _ := os.ReadFile(filepath.Join(state, "ca.pem"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("anchor %s: %v\n%s", dst, err, got)
	}
	if !strings.Contains(out, "Debian/Ubuntu") || !strings.Contains(out, "authproxy ca uninstall") {
		t.Errorf("install output:\n%s", out)
	}
	code, out, errOut = runWithEnv(t, vars, "ca", "uninstall", "--config", cfg)
	if code != 0 {
		t.Fatalf("ca uninstall: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("anchor still there after uninstall: %v", err)
	}
	log, _ := os.ReadFile(calls)
	if n := strings.Count(string(log), "update-ca-certificates"); n != 2 {
		t.Errorf("update-ca-certificates ran %d times, want 2:\n%s", n, log)
	}
}

// Where no store is known, ca install prints the manual step and fails.
func TestCAInstallNoStore(t *testing.T) {
	cfg, state := envConfig(t)
	code, _, errOut := runWithEnv(t, map[string]string{"AUTHPROXY_CA_STORE_ROOT": t.TempDir()}, "ca", "install", "--config", cfg)
	if code != 1 || !strings.Contains(errOut, filepath.Join(state, "ca.pem")) || !strings.Contains(errOut, "authproxy env") {
		t.Errorf("exit %d\n%s", code, errOut)
	}
}

// The anchor cannot be written (here: a directory stands where its
// temporary file goes, which fails for root too): the exact sudo command is
// printed.
func TestCAInstallPrintsManualStep(t *testing.T) {
	cfg, state := envConfig(t)
	root := t.TempDir()
	anchors := filepath.Join(root, "usr/local/share/ca-certificates")
	if err := os.MkdirAll(filepath.Join(anchors, anchorName(state)+".crt.tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "update-ca-certificates"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	code, _, errOut := runWithEnv(t, map[string]string{"AUTHPROXY_CA_STORE_ROOT": root}, "ca", "install", "--config", cfg)
	if code != 1 || !strings.Contains(errOut, "sudo cp ") || !strings.Contains(errOut, "sudo update-ca-certificates") {
		t.Errorf("exit %d\n%s", code, errOut)
	}
}

// ca rotate refuses while a proxy holds the state dir, and works after.
func TestCARotateRefusesUnderRunningProxy(t *testing.T) {
	cfg, state := envConfig(t)
	if code, _, errOut := runWithEnv(t, nil, "ca", "path", "--config", cfg); code != 0 {
		t.Fatal(errOut)
	}
	before, _ := os.ReadFile(filepath.Join(state, "ca.pem"))
	unlock, err := lockStateDir(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeRuntime(state, "127.0.0.1:18899"); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runWithEnv(t, nil, "ca", "rotate", "--config", cfg)
	if code != 1 || !strings.Contains(errOut, "ca rotate refused") || !strings.Contains(errOut, "on 127.0.0.1:18899") {
		t.Errorf("rotate under a running proxy: exit %d\n%s", code, errOut)
	}
	if after, _ := os.ReadFile(filepath.Join(state, "ca.pem")); !bytes.Equal(before, after) {
		t.Error("the CA changed although rotate was refused")
	}
	unlock()
	if code, _, errOut := runWithEnv(t, nil, "ca", "rotate", "--config", cfg); code != 0 {
		t.Errorf("rotate with no proxy: exit %d\n%s", code, errOut)
	}
	if after, _ := os.ReadFile(filepath.Join(state, "ca.pem")); bytes.Equal(before, after) {
		t.Error("rotate did not change the CA")
	}
}
