package proxy

import (
	"strings"
	"testing"

	"github.com/authproxy/authproxy/auth"
)

// FuzzMatch: host matching never panics, is case- and trailing-dot-
// insensitive, and "*." patterns match proper subdomains only.
func FuzzMatch(f *testing.F) {
	for _, s := range []string{"tradingorestapi.swastika.co.in", "TradingoRestAPI.Swastika.co.in.", "x.md.tradovateapi.com",
		"md.tradovateapi.com", "tradovateapi.com", "", ".", "[::1]", "evil-md.tradovateapi.com", "a.b.c.d.e.f"} {
		f.Add(s)
	}
	p := &Proxy{byHost: map[string][]*Account{}}
	exact := &Account{Name: "exact", Hosts: []string{"tradingorestapi.swastika.co.in"}}
	wild := &Account{Name: "wild", Hosts: []string{"*.tradovateapi.com"}}
	p.byHost["tradingorestapi.swastika.co.in"] = []*Account{exact}
	p.wildcard = []*Account{wild}
	f.Fuzz(func(t *testing.T, host string) {
		got := p.match(normalizeHost(host))
		n := strings.TrimSuffix(strings.ToLower(host), ".")
		switch {
		case n == "tradingorestapi.swastika.co.in":
			if len(got) != 1 || got[0] != exact {
				t.Fatalf("%q: got %v", host, got)
			}
		case strings.HasSuffix(n, ".tradovateapi.com") && len(n) > len(".tradovateapi.com"):
			if len(got) != 1 || got[0] != wild {
				t.Fatalf("%q: got %v", host, got)
			}
		default:
			if len(got) != 0 {
				t.Fatalf("%q matched %v", host, got[0].Name)
			}
		}
	})
}

// FuzzParseBasic never panics and round-trips what it accepts.
func FuzzParseBasic(f *testing.F) {
	f.Add("Basic YWxpY2U6cHc=")
	f.Add("basic !!!")
	f.Add("")
	f.Fuzz(func(t *testing.T, h string) {
		u, p, ok := parseBasic(h)
		if ok && strings.Contains(u, ":") {
			t.Fatalf("user %q contains a colon", u)
		}
		_ = p
	})
}

var _ auth.Broker = fakeBroker{}
