package proxy

import (
	"net"
	"net/http"
	"strings"
	"testing"
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

var _ Injector = fakeBroker{}

// FuzzBrowserRefusal: a request carrying any Origin other than the broker
// host's own https origin, or Sec-Fetch-Site cross-site/same-site in any
// case, is refused; a request with neither header is not.
func FuzzBrowserRefusal(f *testing.F) {
	for _, s := range [][2]string{{"https://" + brokerHost, ""}, {"null", ""}, {"", "cross-site"}, {"", "Same-Site"},
		{"https://" + brokerHost + ":443", "same-origin"}, {"https://evil.test", "none"}, {"HTTPS://API.EXAMPLE-BROKER.TEST", ""}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, origin, site string) {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		if site != "" {
			h.Set("Sec-Fetch-Site", site)
		}
		ce := browserRefusal(h, brokerHost)
		s := strings.ToLower(strings.TrimSpace(site))
		crossSite := s == "cross-site" || s == "same-site"
		o := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(origin)), "/")
		own := false
		for _, want := range []string{"https://" + brokerHost, "https://" + brokerHost + ":443", "http://" + brokerHost,
			"http://" + brokerHost + ":80", "http://" + brokerHost + ":443"} {
			own = own || o == want
		}
		switch {
		case crossSite || (origin != "" && !own):
			if ce == nil || ce.Status != http.StatusForbidden || ce.Code != CodeForbidden {
				t.Fatalf("Origin %q Sec-Fetch-Site %q not refused", origin, site)
			}
		case ce != nil:
			t.Fatalf("Origin %q Sec-Fetch-Site %q refused: %v", origin, site, ce)
		}
	})
}

// FuzzParseProcAddr: any socket-table address parses or errors without
// panicking, and what parses round-trips through the kernel's format.
func FuzzParseProcAddr(f *testing.F) {
	for _, s := range []string{"0100007F:22C3", "00000000000000000000000001000000:D431", "0000000000000000FFFF00000100007F:0050",
		"", ":", "zz:zz", "0100007F", "0100007F:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ap, err := parseProcAddr(s)
		if err != nil {
			return
		}
		if !ap.IsValid() {
			t.Fatalf("%q parsed to an invalid address", s)
		}
		// The same table line must find it again.
		line := "hdr\n 0: " + s + " " + s + " 01 0:0 0:0 0 42 0 1\n"
		uid, err := parseProcNetTCP(strings.NewReader(line), ap, ap)
		if err != nil || uid != 42 {
			t.Fatalf("%q: lookup gave %d, %v", s, uid, err)
		}
	})
}

// FuzzOwnHost: the own endpoints accept only the listen host, localhost,
// 127.0.0.1 and ::1, whatever the port or case.
func FuzzOwnHost(f *testing.F) {
	for _, s := range []string{"127.0.0.1:8899", "localhost", "LOCALHOST:1", "[::1]:8899", "evil.test", "127.0.0.1.evil.test", "", "[", "localhost."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		r := &http.Request{Host: host}
		h := host
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		}
		h = normalizeHost(h)
		want := h == "localhost" || h == "127.0.0.1" || h == "::1"
		if got := ownHostAllowed("127.0.0.1:8899", r); got != want {
			t.Fatalf("Host %q: allowed %v, want %v", host, got, want)
		}
	})
}
