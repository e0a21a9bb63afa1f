package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestCA(t testing.TB, permitted []string, now func() time.Time) *CA {
	t.Helper()
	opts := testOptions(t, nil, nil)
	opts.PermittedDNS = permitted
	opts.Now = now
	ca, err := LoadOrCreate(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestLeafCertificate(t *testing.T) {
	clock := newClock()
	ca := newTestCA(t, brokerDomains, clock.Now)
	now := clock.Now()

	tests := []struct {
		host     string
		wantDNS  []string
		wantIP   string
		wantName string
	}{
		{host: "tradingorestapi.swastika.co.in", wantDNS: []string{"tradingorestapi.swastika.co.in"}},
		{host: "Demo.TradovateAPI.com.", wantDNS: []string{"demo.tradovateapi.com"}},
		{host: "127.0.0.1", wantIP: "127.0.0.1"},
		{host: "[::1]:443", wantIP: "::1"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			cert, err := ca.Leaf(tt.host)
			if err != nil {
				t.Fatal(err)
			}
			leaf := cert.Leaf
			if leaf == nil {
				t.Fatal("tls.Certificate.Leaf is nil")
			}
			if len(cert.Certificate) != 2 || !bytes.Equal(cert.Certificate[0], leaf.Raw) ||
				!bytes.Equal(cert.Certificate[1], ca.Certificate().Raw) {
				t.Error("chain is not [leaf, ca]")
			}
			key, ok := cert.PrivateKey.(*ecdsa.PrivateKey)
			if !ok || !key.PublicKey.Equal(leaf.PublicKey) {
				t.Error("private key does not match the leaf")
			}
			if key.Curve.Params().Name != "P-256" {
				t.Errorf("leaf key curve = %s", key.Curve.Params().Name)
			}
			if !slices.Equal(leaf.DNSNames, tt.wantDNS) {
				t.Errorf("DNS SANs = %q, want %q", leaf.DNSNames, tt.wantDNS)
			}
			var ips []string
			for _, ip := range leaf.IPAddresses {
				ips = append(ips, ip.String())
			}
			if tt.wantIP != "" && !slices.Equal(ips, []string{tt.wantIP}) || tt.wantIP == "" && len(ips) != 0 {
				t.Errorf("IP SANs = %q, want %q", ips, tt.wantIP)
			}
			if leaf.IsCA {
				t.Error("leaf is a CA")
			}
			if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
				t.Errorf("ext key usage = %v", leaf.ExtKeyUsage)
			}
			if !leaf.NotBefore.Equal(now.Add(-time.Hour)) || !leaf.NotAfter.Equal(now.Add(30*24*time.Hour)) {
				t.Errorf("validity %s .. %s, want now-1h .. now+30d (now %s)", leaf.NotBefore, leaf.NotAfter, now)
			}
			if leaf.SerialNumber.Sign() <= 0 || leaf.SerialNumber.BitLen() > 129 {
				t.Errorf("serial = %v", leaf.SerialNumber)
			}
			name := tt.wantIP
			if name == "" {
				name = tt.wantDNS[0]
			}
			verifyLeaf(t, ca.Certificate(), leaf, name, now)
		})
	}

	// One leaf key per CA, distinct serials per leaf.
	a, err := ca.Leaf("a.swastika.co.in")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ca.Leaf("b.swastika.co.in")
	if err != nil {
		t.Fatal(err)
	}
	if a.PrivateKey != b.PrivateKey {
		t.Error("leaves of one CA use different keys")
	}
	if a.Leaf.SerialNumber.Cmp(b.Leaf.SerialNumber) == 0 {
		t.Error("two leaves share a serial number")
	}
}

func TestLeafRejects(t *testing.T) {
	ca := newTestCA(t, brokerDomains, nil)
	for _, host := range []string{"", " ", "bad host", "a..b", "*.swastika.co.in", "fe80::1%eth0"} {
		if _, err := ca.Leaf(host); err == nil || errors.Is(err, ErrNotCovered) {
			t.Errorf("Leaf(%q) err = %v, want an invalid-host error", host, err)
		}
	}
	for _, host := range []string{"example.com", "10.0.0.1", "notswastika.co.in"} {
		_, err := ca.Leaf(host)
		if !errors.Is(err, ErrNotCovered) {
			t.Errorf("Leaf(%q) err = %v, want ErrNotCovered", host, err)
		} else if !strings.Contains(err.Error(), host) || !strings.Contains(err.Error(), "swastika.co.in") {
			t.Errorf("error %q does not name the host and the permitted domains", err)
		}
	}
	if got := ca.leaves.minted.Load(); got != 0 {
		t.Errorf("%d certificates minted for rejected hosts", got)
	}
}

func TestLeafSingleFlight(t *testing.T) {
	ca := newTestCA(t, brokerDomains, nil)
	// Hold the first mint long enough for every goroutine to pile up on it.
	ca.leaves.mintHook = func(string) { time.Sleep(50 * time.Millisecond) }

	const n = 50
	var (
		start = make(chan struct{})
		wg    sync.WaitGroup
		certs = make([]*tls.Certificate, n)
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			certs[i], errs[i] = ca.Leaf("tradingorestapi.swastika.co.in")
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if certs[i] != certs[0] {
			t.Fatalf("call %d got a different certificate", i)
		}
	}
	if got := ca.leaves.minted.Load(); got != 1 {
		t.Errorf("%d concurrent calls minted %d certificates, want 1", n, got)
	}

	// Different hosts are minted concurrently, once each.
	hosts := []string{"a.5paisa.com", "b.5paisa.com", "c.5paisa.com"}
	for i := range n {
		wg.Go(func() {
			if _, err := ca.Leaf(hosts[i%len(hosts)]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := ca.leaves.minted.Load(); got != 1+int64(len(hosts)) {
		t.Errorf("minted %d certificates in all, want %d", got, 1+len(hosts))
	}
}

func TestLeafCacheRenewal(t *testing.T) {
	clock := newClock()
	ca := newTestCA(t, nil, clock.Now)

	first, err := ca.Leaf("example.org")
	if err != nil {
		t.Fatal(err)
	}
	again, err := ca.Leaf("EXAMPLE.org.")
	if err != nil {
		t.Fatal(err)
	}
	if again != first || ca.leaves.minted.Load() != 1 {
		t.Fatalf("second Leaf call was not served from the cache (minted %d)", ca.leaves.minted.Load())
	}

	clock.Advance(28*24*time.Hour + 23*time.Hour) // 1 day and 1 hour before expiry
	if got, err := ca.Leaf("example.org"); err != nil || got != first {
		t.Fatalf("leaf renewed %v early (err %v)", first.Leaf.NotAfter.Sub(clock.Now()), err)
	}

	clock.Advance(2 * time.Hour) // now within a day of expiry
	renewed, err := ca.Leaf("example.org")
	if err != nil {
		t.Fatal(err)
	}
	if renewed == first || ca.leaves.minted.Load() != 2 {
		t.Fatal("leaf within a day of expiry was not renewed")
	}
	if want := clock.Now().Add(30 * 24 * time.Hour); !renewed.Leaf.NotAfter.Equal(want) {
		t.Errorf("renewed NotAfter = %s, want %s", renewed.Leaf.NotAfter, want)
	}
	verifyLeaf(t, ca.Certificate(), renewed.Leaf, "example.org", clock.Now())
}

func TestLeafNotBeyondCA(t *testing.T) {
	clock := newClock()
	ca := newTestCA(t, nil, clock.Now)
	caEnd := ca.Certificate().NotAfter
	clock.Advance(caEnd.Sub(clock.Now()) - 12*time.Hour)

	leaf, err := ca.Leaf("example.org")
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.Leaf.NotAfter.Equal(caEnd) {
		t.Errorf("leaf NotAfter = %s, want the CA's %s", leaf.Leaf.NotAfter, caEnd)
	}
	// Renewing could not give a longer life, so the cached leaf is kept.
	if _, err := ca.Leaf("example.org"); err != nil || ca.leaves.minted.Load() != 1 {
		t.Errorf("leaf capped at the CA's expiry was re-minted (minted %d, err %v)", ca.leaves.minted.Load(), err)
	}
	clock.Advance(13 * time.Hour)
	if _, err := ca.Leaf("example.org"); err == nil {
		t.Error("Leaf after the CA expired succeeded")
	}
}

func TestLeafCacheBounded(t *testing.T) {
	ca := newTestCA(t, nil, nil)
	ca.leaves.init(4)
	for i := range 10 {
		if _, err := ca.Leaf(fmt.Sprintf("h%d.example.org", i)); err != nil {
			t.Fatal(err)
		}
		if n := ca.leaves.len(); n > 4 {
			t.Fatalf("cache holds %d entries, bound is 4", n)
		}
	}
	if n := ca.leaves.len(); n != 4 {
		t.Errorf("cache holds %d entries, want 4", n)
	}
	if got := ca.leaves.minted.Load(); got != 10 {
		t.Errorf("minted %d, want 10", got)
	}
}

func TestFetchIgnoresGenerator(t *testing.T) {
	ca := newTestCA(t, brokerDomains, nil)
	called := false
	gen := func() (*tls.Certificate, error) {
		called = true
		return nil, errors.New("goproxy generator")
	}
	got, err := ca.Fetch("openapi.5paisa.com", gen)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ca.Leaf("openapi.5paisa.com")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Error("Fetch and Leaf returned different certificates")
	}
	if _, err := ca.Fetch("example.com", gen); !errors.Is(err, ErrNotCovered) {
		t.Errorf("Fetch(example.com) err = %v, want ErrNotCovered", err)
	}
	if called {
		t.Error("Fetch called goproxy's generator")
	}
}

// tlsServer accepts connections on 127.0.0.1, serving each with a fresh
// ca.TLSConfig(defaultHost): it completes the handshake, writes "ok" and
// closes. It returns the address.
func tlsServer(t *testing.T, ca *CA, defaultHost string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for range 100 {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
				tc := tls.Server(conn, ca.TLSConfig(defaultHost))
				if err := tc.Handshake(); err != nil {
					return // the client reports the failure
				}
				_, _ = tc.Write([]byte("ok"))
				_ = tc.Close()
			})
		}
	})
	return ln.Addr().String()
}

// dialTLS connects, reads the server's "ok" and returns the connection state.
func dialTLS(t *testing.T, addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(conn)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	if string(b) != "ok" {
		return tls.ConnectionState{}, fmt.Errorf("read %q, want ok", b)
	}
	return conn.ConnectionState(), nil
}

func TestTLSHandshake(t *testing.T) {
	ca := newTestCA(t, brokerDomains, nil)
	// The client trusts only ca.pem, read from disk as a client would.
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(readFile(t, ca.CertPath())) {
		t.Fatal("ca.pem does not parse")
	}
	addr := tlsServer(t, ca, "h")

	t.Run("sni", func(t *testing.T) {
		state, err := dialTLS(t, addr, &tls.Config{
			RootCAs:    pool,
			ServerName: "tradingorestapi.swastika.co.in",
			NextProtos: []string{"h2", "http/1.1"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if state.NegotiatedProtocol != "h2" {
			t.Errorf("ALPN = %q, want h2", state.NegotiatedProtocol)
		}
		if got := state.PeerCertificates[0].DNSNames; !slices.Equal(got, []string{"tradingorestapi.swastika.co.in"}) {
			t.Errorf("server certificate names %q", got)
		}
		if len(state.VerifiedChains) == 0 {
			t.Error("no verified chain")
		}
	})
	t.Run("http1 only client", func(t *testing.T) {
		state, err := dialTLS(t, addr, &tls.Config{
			RootCAs:    pool,
			ServerName: "openapi.5paisa.com",
			NextProtos: []string{"http/1.1"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if state.NegotiatedProtocol != "http/1.1" {
			t.Errorf("ALPN = %q, want http/1.1", state.NegotiatedProtocol)
		}
	})
	t.Run("tls 1.1 refused", func(t *testing.T) {
		_, err := dialTLS(t, addr, &tls.Config{
			RootCAs:    pool,
			ServerName: "openapi.5paisa.com",
			MinVersion: tls.VersionTLS10,
			MaxVersion: tls.VersionTLS11,
		})
		if err == nil {
			t.Error("TLS 1.1 handshake succeeded")
		}
	})
	t.Run("uncovered sni", func(t *testing.T) {
		if _, err := dialTLS(t, addr, &tls.Config{RootCAs: pool, ServerName: "example.com"}); err == nil {
			t.Error("handshake for example.com succeeded under a constrained CA")
		}
	})
	t.Run("uncovered default host", func(t *testing.T) {
		// A client dialling an IP literal sends no SNI; the default "h" is
		// outside the constraints, so the handshake fails.
		if _, err := dialTLS(t, addr, &tls.Config{RootCAs: pool}); err == nil {
			t.Error("handshake without SNI succeeded with an uncovered default host")
		}
	})
	t.Run("no sni falls back to default host", func(t *testing.T) {
		ipAddr := tlsServer(t, ca, "127.0.0.1")
		state, err := dialTLS(t, ipAddr, &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatal(err)
		}
		if ips := state.PeerCertificates[0].IPAddresses; len(ips) != 1 || !ips[0].Equal(net.IPv4(127, 0, 0, 1)) {
			t.Errorf("server certificate IPs = %v, want 127.0.0.1", ips)
		}
	})
	t.Run("session resumption across configs", func(t *testing.T) {
		cfg := &tls.Config{
			RootCAs:            pool,
			ServerName:         "trade.pocketful.in",
			ClientSessionCache: tls.NewLRUClientSessionCache(4),
		}
		if _, err := dialTLS(t, addr, cfg); err != nil {
			t.Fatal(err)
		}
		state, err := dialTLS(t, addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !state.DidResume {
			t.Error("second connection did not resume the session")
		}
	})
}

func TestTicketKeyRotation(t *testing.T) {
	var tk ticketKeys
	now := time.Now()
	first := tk.current(now)
	if len(first) != 1 {
		t.Fatalf("%d keys, want 1", len(first))
	}
	if got := tk.current(now.Add(time.Hour)); !slices.Equal(got, first) {
		t.Error("keys rotated within a day")
	}
	for i := 1; i <= 10; i++ {
		keys := tk.current(now.Add(time.Duration(i) * 25 * time.Hour))
		if want := min(i+1, ticketKeysKept); len(keys) != want {
			t.Fatalf("after %d rotations: %d keys, want %d", i, len(keys), want)
		}
		if i < ticketKeysKept && keys[len(keys)-1] != first[0] {
			t.Fatalf("after %d rotations the first key is gone", i)
		}
		if keys[0] == keys[1] {
			t.Fatal("rotation reused the key")
		}
	}
}

func BenchmarkLeafCached(b *testing.B) {
	ca := newTestCA(b, brokerDomains, nil)
	if _, err := ca.Leaf("tradingorestapi.swastika.co.in"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := ca.Leaf("tradingorestapi.swastika.co.in"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if got := ca.leaves.minted.Load(); got != 1 {
		b.Errorf("minted %d, want 1", got)
	}
}

func BenchmarkLeafMint(b *testing.B) {
	ca := newTestCA(b, brokerDomains, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ca.mint("tradingorestapi.swastika.co.in", nil); err != nil {
			b.Fatal(err)
		}
	}
}
