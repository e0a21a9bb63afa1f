package proxy

import (
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/integration/fakes/egress"
)

// TestEgressProxy: with [upstream] proxy set, every broker connection goes
// through the (authenticated) egress proxy, over HTTP CONNECT or SOCKS5, and
// the broker's certificate is still verified against its own name.
func TestEgressProxy(t *testing.T) {
	broker := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.Host)
	}))
	t.Cleanup(broker.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: broker.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	eg, err := egress.Start("alice", "s3cret", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eg.Close() })
	// httptest's certificate names example.com; route it to the broker.
	resolve := map[string]string{"example.com:443": broker.Listener.Addr().String()}

	for _, tc := range []struct{ name, url, kind string }{
		{"connect", eg.HTTPURL(), "connect"},
		{"socks5", eg.SOCKS5URL(), "socks5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(eg.Conns())
			tr, err := NewTransport(UpstreamOptions{CAFile: caFile, Resolve: resolve, Proxy: tc.url})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr}
			resp, err := hc.Get("https://example.com/x")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "hello example.com" {
				t.Fatalf("status %d body %q", resp.StatusCode, body)
			}
			conns := eg.Conns()[before:]
			if len(conns) != 1 || conns[0].Kind != tc.kind || !conns[0].OK || conns[0].User != "alice" ||
				conns[0].Target != broker.Listener.Addr().String() {
				t.Fatalf("egress saw %+v, want one %s tunnel to the broker", conns, tc.kind)
			}

			// The broker's certificate is checked against the name asked for.
			resp, err = hc.Get("https://other.example:443/x")
			if err == nil {
				resp.Body.Close()
				t.Fatal("reached a host that is not resolvable through the egress proxy")
			}
			tr2, _ := NewTransport(UpstreamOptions{CAFile: caFile, Resolve: map[string]string{"wrong.test:443": broker.Listener.Addr().String()}, Proxy: tc.url})
			defer tr2.CloseIdleConnections()
			_, err = (&http.Client{Transport: tr2}).Get("https://wrong.test/x")
			if !auth.IsTLSError(err) {
				t.Fatalf("a certificate for another name gave %v, want a TLS verification error", err)
			}
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		for _, u := range []string{"http://alice:nope@" + eg.Addr(), "socks5://alice:nope@" + eg.Addr()} {
			tr, err := NewTransport(UpstreamOptions{CAFile: caFile, Resolve: resolve, Proxy: u})
			if err != nil {
				t.Fatal(err)
			}
			_, err = (&http.Client{Transport: tr}).Get("https://example.com/x")
			if err == nil {
				t.Fatalf("%s: request succeeded with a wrong proxy password", u[:6])
			}
			if strings.Contains(err.Error(), "nope") {
				t.Fatalf("error repeats the password: %v", err)
			}
			var ee *EgressError
			if strings.HasPrefix(u, "http:") && !errors.As(err, &ee) {
				t.Fatalf("CONNECT refusal: %v, want an EgressError", err)
			}
			tr.CloseIdleConnections()
		}
	})
}

func TestParseEgress(t *testing.T) {
	for _, ok := range []string{"http://h:1", "http://u:p@127.0.0.1:3128", "socks5://u:p@[::1]:1080"} {
		if _, err := ParseEgress(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "h:1", "https://h:1", "http://h", "http://h:1/path", "ftp://h:1"} {
		if _, err := ParseEgress(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
