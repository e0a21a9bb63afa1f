package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/integration/fakes/egress"
)

func TestDoctorEgress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	eg, err := egress.Start("bob", "pw", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eg.Close() })
	resolve := map[string]string{"example.com:443": ln.Addr().String()}
	for _, tc := range []struct {
		name, url, level, want string
	}{
		{"connect", eg.HTTPURL(), levelOK, "answers"},
		{"socks5", eg.SOCKS5URL(), levelOK, "answers"},
		{"bad password", "http://bob:wrong@" + eg.Addr(), levelFail, "407"},
		{"nobody listening", "socks5://127.0.0.1:1", levelFail, "did not open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &doctor{cfg: &config.Config{Path: "rules.toml", Upstream: config.Upstream{Proxy: tc.url, Resolve: resolve}}, timeout: 5 * time.Second}
			d.checkEgress(t.Context())
			if len(d.out) != 1 || d.out[0].level != tc.level || !strings.Contains(d.out[0].msg, tc.want) {
				t.Fatalf("findings %+v, want one %s containing %q", d.out, tc.level, tc.want)
			}
			if strings.Contains(d.out[0].msg, "wrong") || strings.Contains(d.out[0].msg, ":pw@") {
				t.Fatalf("finding repeats the password: %s", d.out[0].msg)
			}
		})
	}
	d := &doctor{cfg: &config.Config{}, timeout: time.Second}
	d.checkEgress(t.Context())
	if len(d.out) != 0 {
		t.Fatalf("no [upstream] proxy: findings %+v, want none", d.out)
	}
}
