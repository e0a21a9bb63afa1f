package config

import (
	"strings"
	"testing"
)

func TestUpstreamProxy(t *testing.T) {
	cfg := mustParse(t, "[upstream]\nproxy = \"socks5://me:${EGRESS_PW}@127.0.0.1:1080\"\n", env("EGRESS_PW", "pw"))
	if cfg.Upstream.Proxy != "socks5://me:pw@127.0.0.1:1080" {
		t.Fatalf("proxy = %q", cfg.Upstream.Proxy)
	}
	for _, bad := range []string{"https://h:1", "http://h", "http://u:topsecret@h:1/x", "h:1"} {
		_, err := Parse("rules.toml", []byte("[upstream]\nproxy = \""+bad+"\"\n"), env())
		if err == nil || !strings.Contains(err.Error(), "rules.toml:2") {
			t.Errorf("%q: err %v, want a problem on line 2", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "topsecret") {
			t.Errorf("the problem repeats the password: %v", err)
		}
	}
}
