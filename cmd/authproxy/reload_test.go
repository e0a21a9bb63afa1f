package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/authproxy/authproxy/config"
)

func loadTestConfig(t *testing.T, dir, body string) *config.Config {
	t.Helper()
	path := filepath.Join(dir, "rules.toml")
	full := "listen = \"127.0.0.1:18899\"\nstate_dir = " + tomlQuote(filepath.Join(dir, "state")) + "\n" + body
	if err := os.WriteFile(path, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := schema().Load(path, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const reloadA = "[brokers.a]\ntype = \"tradingo\"\nclient_code = \"A1\"\nmpin = \"1\"\ntotp_secret = \"JBSWY3DPEHPK3PXP\"\n"
const reloadB = "[brokers.b]\ntype = \"tradingo\"\nhosts = [\"b.swastika.co.in\"]\nclient_code = \"B1\"\nmpin = \"1\"\ntotp_secret = \"JBSWY3DPEHPK3PXP\"\n"

// rewire keeps an unchanged account's cache (its token), rebuilds a
// changed one, adds a new one and drops a removed one.
func TestRewireKeepsUnchangedAccounts(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	cfg1 := loadTestConfig(t, dir, reloadA+reloadB)
	w1, err := wire(ctx, cfg1, logger, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	changedB := "[brokers.b]\ntype = \"tradingo\"\nhosts = [\"b.swastika.co.in\"]\nclient_code = \"B2\"\nmpin = \"1\"\ntotp_secret = \"JBSWY3DPEHPK3PXP\"\n"
	newC := "[brokers.c]\ntype = \"tradingo\"\nhosts = [\"c.swastika.co.in\"]\nclient_code = \"C1\"\nmpin = \"1\"\ntotp_secret = \"JBSWY3DPEHPK3PXP\"\n"
	cfg2 := loadTestConfig(t, dir, reloadA+changedB+newC)
	w2, added, changed, removed, kept, err := rewire(ctx, w1, cfg2, logger, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(added) != 1 || added[0] != "c" || len(changed) != 1 || changed[0] != "b" || len(removed) != 0 || len(kept) != 1 || kept[0] != "a" {
		t.Fatalf("added %v changed %v removed %v kept %v", added, changed, removed, kept)
	}
	byName := func(w *wiring) map[string]any {
		m := map[string]any{}
		for _, pa := range w.accounts {
			m[pa.Name] = pa.Source
		}
		return m
	}
	old, cur := byName(w1), byName(w2)
	if cur["a"] != old["a"] {
		t.Error("unchanged account a got a new token cache")
	}
	if cur["b"] == old["b"] || cur["c"] == nil {
		t.Error("changed account b kept its cache, or new account c has none")
	}
	if len(w2.caches) != 3 {
		t.Errorf("%d caches, want 3", len(w2.caches))
	}
	// Dropping b: removed.
	cfg3 := loadTestConfig(t, dir, reloadA)
	_, _, _, removed, _, err = rewire(ctx, w2, cfg3, logger, time.Now, nil)
	if err != nil || len(removed) != 2 {
		t.Errorf("removed %v, err %v", removed, err)
	}
}
