package main

import (
	"bytes"
	"context"
	"runtime/debug"
	"strings"
	"testing"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, env{
		stdout: &out, stderr: &errb, stdin: strings.NewReader(""),
		getenv: func(string) string { return "" }, lookupEnv: func(string) (string, bool) { return "", false },
	})
	return code, out.String(), errb.String()
}

// --help, -h and help list every command in the table.
func TestHelpListsEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, out, _ := runCmd(t, args...)
		if code != 0 {
			t.Errorf("%v: exit %d", args, code)
		}
		for _, c := range commands() {
			if !strings.Contains(out, "\n  "+c.name+" ") {
				t.Errorf("%v does not list %q:\n%s", args, c.name, out)
			}
		}
	}
}

// help CMD and CMD --help show that command's own flags, on stdout, exit 0.
func TestHelpShowsCommandFlags(t *testing.T) {
	want := map[string][]string{
		"run":    {"-listen", "-state-dir", "-verbose", "-quiet", "-log-format", "-config", "-reload"},
		"env":    {"-shell", "-python", "-http", "-config"},
		"status": {"-json"},
		"demo":   {"-once", "-listen"},
		"check":  {"-strict"},
	}
	for name, flags := range want {
		for _, args := range [][]string{{"help", name}, {name, "--help"}, {name, "-h"}} {
			code, out, errOut := runCmd(t, args...)
			if code != 0 || errOut != "" {
				t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
			}
			if !strings.HasPrefix(out, "Usage: authproxy "+name+" ") {
				t.Errorf("%v: not %s's usage:\n%s", args, name, out)
			}
			for _, f := range flags {
				if !strings.Contains(out, "  "+f+" ") && !strings.Contains(out, "  "+f+"\n") {
					t.Errorf("%v lacks %s:\n%s", args, f, out)
				}
			}
		}
	}
	for _, c := range commands() {
		if code, out, _ := runCmd(t, "help", c.name); code != 0 || !strings.Contains(out, "authproxy "+c.name) {
			t.Errorf("help %s: exit %d\n%s", c.name, code, out)
		}
	}
}

// A usage error is one line plus a pointer to --help, exit 2.
func TestUsageErrorIsShort(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"--bogus"}, {"env", "--bogus"}, {"help", "frob"}, {"env", "extra"}} {
		code, out, errOut := runCmd(t, args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
		lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "authproxy: ") || !strings.Contains(lines[1], "--help") {
			t.Errorf("%v: stderr is not one line plus a pointer to --help:\n%s", args, errOut)
		}
		if out != "" {
			t.Errorf("%v: printed to stdout: %q", args, out)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := runCmd(t, args...)
		if code != 0 || !strings.HasPrefix(out, "authproxy ") || !strings.Contains(out, "\ngo: go1.") || !strings.Contains(out, "\ncommit: ") {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/authproxy/authproxy", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-12-01T00:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	got := versionText(bi)
	for _, want := range []string{"authproxy v1.2.3\n", "module: github.com/authproxy/authproxy\n", "commit: abc123 (2026-12-01T00:00:00Z), with uncommitted changes\n", "go: go1.26.8 "} {
		if !strings.Contains(got, want) {
			t.Errorf("versionText lacks %q:\n%s", want, got)
		}
	}
}
