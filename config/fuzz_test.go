package config

import (
	"slices"
	"strings"
	"testing"
)

// checkInvariants checks what every successfully parsed Config guarantees.
func checkInvariants(t *testing.T, cfg *Config) {
	t.Helper()
	if cfg.StateDir == "" || cfg.Listen == "" || cfg.Upstream.Timeout <= 0 || cfg.Limits.MaxBody <= 0 ||
		cfg.Limits.MaxTunnels <= 0 || cfg.Limits.IdleTimeout <= 0 || cfg.Limits.RefreshAhead < 0 {
		t.Errorf("config holds an invalid setting: %+v", cfg)
	}
	if cfg.Store.Kind != "file" && cfg.Store.Kind != "redis" {
		t.Errorf("store kind %q", cfg.Store.Kind)
	}
	if !slices.IsSortedFunc(cfg.Accounts, func(a, b *Account) int { return strings.Compare(a.Name, b.Name) }) {
		t.Errorf("accounts not sorted: %q", names(cfg.Accounts))
	}
	for _, a := range cfg.Accounts {
		if !slices.Contains(Types(), a.Type) {
			t.Errorf("account %q has unknown type %q", a.Name, a.Type)
		}
		if len(a.Hosts) == 0 {
			t.Errorf("account %q has no hosts", a.Name)
		}
		for _, h := range a.Hosts {
			if h == "" || h != strings.ToLower(h) || strings.HasSuffix(h, ".") {
				t.Errorf("account %q has un-normalized host %q", a.Name, h)
			}
		}
		if !validAccountName(a.Name) {
			t.Errorf("account name %q is invalid", a.Name)
		}
		if !slices.IsSorted(a.Missing) || len(slices.Compact(slices.Clone(a.Missing))) != len(a.Missing) {
			t.Errorf("account %q Missing not sorted and unique: %q", a.Name, a.Missing)
		}
		if cfg.Account(a.Name) != a {
			t.Errorf("Account(%q) does not return the account", a.Name)
		}
	}
}

// FuzzParse: Parse never panics; on success the Config is usable (every
// account has a known type and hosts); on failure every Problem is for the
// file.
func FuzzParse(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("[brokers.a]\ntype = \"pocketful\"\nclient_id = \"${SET_VAR}\"\nclient_secret = \"${UNSET}\"\nhosts = [\"*.A.com.\", \"${UNSET}\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.toml", data, goldenEnv())
		if err != nil {
			if cfg != nil {
				t.Fatal("Parse returned both a config and an error")
			}
			ps := Problems(err)
			if len(ps) == 0 {
				t.Fatalf("error holds no Problems: %v", err)
			}
			for _, p := range ps {
				if p.File != "fuzz.toml" || p.Line < 0 || p.Msg == "" {
					t.Fatalf("bad problem %#v", p)
				}
			}
			return
		}
		checkInvariants(t, cfg)
		for _, a := range cfg.Accounts {
			if h := a.Hosts[0]; !strings.HasPrefix(h, "*.") && !slices.Contains(cfg.AccountForHost(h), a) {
				t.Errorf("AccountForHost(%q) does not return account %q", h, a.Name)
			}
		}
	})
}
