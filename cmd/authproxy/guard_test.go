package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/guard"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{"2h", now.Add(-2 * time.Hour), false},
		{"7d", now.Add(-7 * 24 * time.Hour), false},
		{"2026-12-07", time.Date(2026, 12, 7, 0, 0, 0, 0, guard.IST()), false},
		{"-1h", time.Time{}, true},
		{"yesterday", time.Time{}, true},
		{"1.5d", time.Time{}, true},
	}
	for _, tc := range tests {
		got, err := parseSince(tc.in, now)
		if tc.bad != (err != nil) || !tc.bad && !got.Equal(tc.want) {
			t.Errorf("parseSince(%q) = %v, %v", tc.in, got, err)
		}
	}
}

// TestPauseOfflineAndJournal: with no proxy listening, pause and resume
// change the state file; unknown names are usage errors; journal reads the
// files directly.
func TestPauseOfflineAndJournal(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(dir, "rules.toml")
	body := "listen = \"" + addr + "\"\nstate_dir = " + tomlQuote(state) + "\n\n[brokers.pf]\ntype = \"pocketful\"\nclient_id = \"x\"\nclient_secret = \"${PF_SECRET}\"\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	runIt := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, env{stdout: &out, stderr: &errb, stdin: strings.NewReader(""),
			getenv: func(string) string { return "" }, lookupEnv: func(string) (string, bool) { return "", false }})
		return code, out.String() + errb.String()
	}
	if code, out := runIt("pause", "pf", "--config", cfg); code != 0 || !strings.Contains(out, "not running") {
		t.Fatalf("pause: %d %s", code, out)
	}
	ps, err := guard.OpenPauses(state)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ps.Paused("pf"); !ok {
		t.Fatal("pf not paused in the state file")
	}
	if code, _ := runIt("pause", "nope", "--config", cfg); code != 2 {
		t.Fatalf("unknown account: exit %d, want 2", code)
	}
	if code, out := runIt("resume", "--config", cfg); code != 0 || !strings.Contains(out, "resumed: pf") {
		t.Fatalf("resume: %d %s", code, out)
	}
	if ps, _ := guard.OpenPauses(state); len(ps.All()) != 0 {
		t.Fatalf("still paused: %v", ps.All())
	}

	j, err := guard.OpenJournal(guard.JournalDir(state), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_ = j.Append(guard.Entry{Time: time.Now().Add(-3 * time.Hour), Account: "pf", Broker: "pocketful", Method: "POST",
		Path: "/api/v1/orders", Status: 200, Outcome: "ok", OrderID: "OLD"})
	_ = j.Append(guard.Entry{Time: time.Now(), Account: "pf", Broker: "pocketful", Method: "DELETE",
		Path: "/api/v1/orders/X1", Status: 423, Outcome: "paused"})
	_ = j.Close()
	code, out := runIt("journal", "pf", "--since", "2h", "--config", cfg)
	if code != 0 || !strings.Contains(out, "DELETE /api/v1/orders/X1") || strings.Contains(out, "OLD") {
		t.Fatalf("journal table: %d\n%s", code, out)
	}
	code, out = runIt("journal", "--json", "--since", "1d", "--config", cfg)
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, `"order_id":"OLD"`) {
		t.Fatalf("journal --json: %d\n%s", code, out)
	}
	if code, _ := runIt("journal", "--since", "soon", "--config", cfg); code != 2 {
		t.Fatalf("bad --since: exit %d, want 2", code)
	}
}
