package fakeca

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestServeHTTP2AndHTTP1(t *testing.T) {
	ca, err := New()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto+" "+r.Host)
	}), "broker.example.test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	if !strings.HasPrefix(srv.Addr, "127.0.0.1:") {
		t.Fatalf("Addr = %q, want 127.0.0.1:PORT", srv.Addr)
	}

	tests := []struct {
		name      string
		h2        bool
		wantProto string
	}{
		{"http2", true, "HTTP/2.0"},
		{"http1", false, "HTTP/1.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := &http.Transport{
				TLSClientConfig:   &tls.Config{RootCAs: ca.CertPool(), ServerName: "broker.example.test"},
				ForceAttemptHTTP2: tc.h2,
			}
			if !tc.h2 {
				tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			resp, err := c.Get(srv.URL() + "/x")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if got := string(b); !strings.HasPrefix(got, tc.wantProto+" ") {
				t.Fatalf("got %q, want proto %s", got, tc.wantProto)
			}
		})
	}
}

func TestLeafVerifiesAgainstRootOnly(t *testing.T) {
	ca, err := New()
	if err != nil {
		t.Fatal(err)
	}
	other, err := New()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ca.ServerTLS("a.example.test", "10.1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	leaf := cfg.Certificates[0].Leaf
	for _, name := range []string{"a.example.test", "127.0.0.1", "10.1.2.3"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: ca.CertPool()}); err != nil {
			t.Errorf("verify %s against own root: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "b.example.test", Roots: ca.CertPool()}); err == nil {
		t.Error("leaf verified for a name it does not carry")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "a.example.test", Roots: other.CertPool()}); err == nil {
		t.Error("leaf verified against an unrelated root")
	}
	if got := cfg.NextProtos; len(got) != 2 || got[0] != "h2" || got[1] != "http/1.1" {
		t.Errorf("NextProtos = %v, want [h2 http/1.1]", got)
	}
}

func TestWriteCertFile(t *testing.T) {
	ca, err := New()
	if err != nil {
		t.Fatal(err)
	}
	p, err := ca.WriteCertFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" || len(strings.TrimSpace(string(rest))) != 0 {
		t.Fatalf("file is not exactly one PEM certificate: %q", b)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.IsCA || !cert.Equal(ca.Certificate()) {
		t.Fatal("written certificate is not the CA root")
	}
	if strings.Contains(string(b), "PRIVATE KEY") {
		t.Fatal("private key written to the cert file")
	}
}

func TestCloseTwice(t *testing.T) {
	ca, err := New()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Serve(http.NotFoundHandler())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// Transport reaches the server under the host name its leaf is for, over
// HTTP/2, and trusts no other CA.
func TestServerTransport(t *testing.T) {
	ca, err := New()
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto+" "+r.Host)
	})
	srv, err := ca.Serve(h, "broker.example.test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	tr := srv.Transport()
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := c.Get("https://broker.example.test/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := string(b); got != "HTTP/2.0 broker.example.test" {
		t.Errorf("got %q", got)
	}
	if _, err := c.Get("https://other.example.test/x"); err == nil {
		t.Error("a host the leaf is not for was accepted")
	}

	other, err := New()
	if err != nil {
		t.Fatal(err)
	}
	srv2, err := other.Serve(h, "broker.example.test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv2.Close() })
	tr2 := srv.Transport()
	tr2.DialContext = srv2.Transport().DialContext // srv's roots, srv2's leaf
	t.Cleanup(tr2.CloseIdleConnections)
	if _, err := (&http.Client{Transport: tr2, Timeout: 10 * time.Second}).Get("https://broker.example.test/x"); err == nil {
		t.Error("a leaf from another CA was trusted")
	}
}
