package redisstore

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/redisstore/redistest"
)

var (
	testKey  = bytes.Repeat([]byte{0x42}, KeySize)
	otherKey = bytes.Repeat([]byte{0x17}, KeySize)
)

// newStore opens a Store on url and closes it after the test.
func newStore(t *testing.T, url string, key []byte) *Store {
	t.Helper()
	s, err := New(Options{URL: url, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// rawClient talks to the server directly, as an attacker reading Redis would.
func rawClient(t *testing.T, srv *redistest.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func secretToken(now time.Time) *auth.Token {
	return &auth.Token{
		Access:   "access-S3CRET-a1b2c3d4",
		Refresh:  "refresh-S3CRET-e5f6a7b8",
		Expiry:   now.Add(90 * time.Minute).Truncate(time.Millisecond),
		Obtained: now.Truncate(time.Millisecond),
		Aux:      map[string]auth.Secret{"md": "md-S3CRET-c9d0e1f2"},
		Meta:     map[string]string{"user_id": "424242"},
	}
}

// stopKeepAlive makes a held lease behave as if its process had died: no
// more extensions, no release.
func stopKeepAlive(t *testing.T, l auth.Lease) {
	t.Helper()
	ll, ok := l.(*lease)
	if !ok {
		t.Fatalf("lease is a %T", l)
	}
	ll.once.Do(func() { close(ll.stop) })
	<-ll.done
}

func TestEncryptionAtRest(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv.URL(), testKey)
	raw := rawClient(t, srv)
	ctx := t.Context()
	tok := secretToken(time.Now())

	if _, err := s.Load(ctx, "tv"); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("load before save: %v, want ErrNotFound", err)
	}
	if err := s.Save(ctx, "tv", tok); err != nil {
		t.Fatal(err)
	}
	v1, err := raw.Get(ctx, s.TokenKey("tv")).Bytes()
	if err != nil {
		t.Fatalf("raw GET %s: %v", s.TokenKey("tv"), err)
	}
	for _, secret := range []string{"access-S3CRET", "refresh-S3CRET", "md-S3CRET", "S3CRET", "424242", `"access"`, "expiry"} {
		if bytes.Contains(v1, []byte(secret)) {
			t.Errorf("the raw Redis value contains %q", secret)
		}
	}
	if v1[0] != recordVersion || len(v1) < 1+12+16+len(tok.Access) {
		t.Errorf("raw value: version %d, %d bytes", v1[0], len(v1))
	}

	got, err := s.Load(ctx, "tv")
	if err != nil {
		t.Fatal(err)
	}
	if got.Access != tok.Access || got.Refresh != tok.Refresh || !got.Expiry.Equal(tok.Expiry) ||
		!got.Obtained.Equal(tok.Obtained) || got.Aux["md"] != tok.Aux["md"] || got.Meta["user_id"] != "424242" {
		t.Errorf("loaded token differs from the saved one: %+v", got)
	}

	// A fresh nonce on every write: the same token never looks the same.
	if err := s.Save(ctx, "tv", tok); err != nil {
		t.Fatal(err)
	}
	v2, _ := raw.Get(ctx, s.TokenKey("tv")).Bytes()
	if bytes.Equal(v1, v2) || bytes.Equal(v1[1:13], v2[1:13]) {
		t.Error("two saves of the same token wrote the same ciphertext or nonce")
	}

	// Another key cannot read it, and says why without quoting anything.
	other := newStore(t, srv.URL(), otherKey)
	_, err = other.Load(ctx, "tv")
	if err == nil || errors.Is(err, auth.ErrNotFound) || !strings.Contains(err.Error(), "decrypt") {
		t.Errorf("load with another key: %v, want a decryption error", err)
	}
	if err != nil && strings.Contains(err.Error(), "S3CRET") {
		t.Errorf("error leaks a secret: %v", err)
	}

	// The account name is bound in: a value moved to another account fails.
	if err := raw.Set(ctx, s.TokenKey("moved"), v2, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, "moved"); err == nil {
		t.Error("a value copied to another account's key decrypted")
	}
	// Tampering is detected.
	bad := bytes.Clone(v2)
	bad[len(bad)-1] ^= 1
	if err := raw.Set(ctx, s.TokenKey("tampered"), bad, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, "tampered"); err == nil {
		t.Error("a tampered value decrypted")
	}

	if err := s.Delete(ctx, "tv"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, "tv"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("load after delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "tv"); err != nil {
		t.Errorf("deleting a missing token: %v", err)
	}
}

func TestParseKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xfb, 0xff, 0x01}, 11)[:32]
	for name, enc := range map[string]*base64.Encoding{"std": base64.StdEncoding, "raw": base64.RawStdEncoding,
		"url": base64.URLEncoding, "rawurl": base64.RawURLEncoding} {
		got, err := ParseKey(auth.Secret(" " + enc.EncodeToString(key) + "\n"))
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("%s: %x, %v", name, got, err)
		}
	}
	short := base64.StdEncoding.EncodeToString(key[:16])
	for _, bad := range []string{short, "not base64 at all!!", ""} {
		_, err := ParseKey(auth.Secret(bad))
		if err == nil {
			t.Errorf("ParseKey(%q) succeeded", bad)
		} else if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("error quotes the key: %v", err)
		}
	}
	if _, err := New(Options{URL: "redis://127.0.0.1:1", Key: key[:16]}); err == nil {
		t.Error("New accepted a 16-byte key")
	}
	_, err := New(Options{URL: "redis://user:pa ss%zz@127.0.0.1:1", Key: key})
	if err == nil || strings.Contains(err.Error(), "pa ss") {
		t.Errorf("bad url: %v (want an error that does not quote the password)", err)
	}
}

func TestLeaseExclusiveAndKeptAlive(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := newStore(t, srv.URL(), testKey)
	b := newStore(t, srv.URL(), testKey)
	ctx := t.Context()
	const ttl = 300 * time.Millisecond

	la, err := a.Lease(ctx, "acct", ttl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lease(ctx, "acct", ttl); !errors.Is(err, auth.ErrLeaseHeld) {
		t.Fatalf("second lease: %v, want ErrLeaseHeld", err)
	}
	// Another account's lease is independent.
	lo, err := b.Lease(ctx, "other", ttl)
	if err != nil {
		t.Fatalf("lease on another account: %v", err)
	}
	_ = lo.Release(ctx)

	// The holder keeps it alive well past its ttl.
	time.Sleep(3 * ttl)
	if _, err := b.Lease(ctx, "acct", ttl); !errors.Is(err, auth.ErrLeaseHeld) {
		t.Fatalf("lease after 3 ttl while held: %v, want ErrLeaseHeld", err)
	}
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := la.Release(ctx); err != nil {
		t.Errorf("second release: %v", err)
	}
	lb, err := b.Lease(ctx, "acct", ttl)
	if err != nil {
		t.Fatalf("lease after release: %v", err)
	}
	defer lb.Release(ctx)
	if lb.Fence() <= la.Fence() {
		t.Errorf("fence went from %d to %d, want it to grow", la.Fence(), lb.Fence())
	}
	if _, err := a.Lease(ctx, "acct", time.Millisecond); err == nil {
		t.Error("a 1ms lease was accepted")
	}
}

func TestLeaseExpiresWhenHolderDies(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := newStore(t, srv.URL(), testKey)
	b := newStore(t, srv.URL(), testKey)
	ctx := t.Context()
	const ttl = 400 * time.Millisecond

	la, err := a.Lease(ctx, "acct", ttl)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stopKeepAlive(t, la) // the holder "crashes"
	var lb auth.Lease
	for time.Since(start) < 5*ttl {
		lb, err = b.Lease(ctx, "acct", ttl)
		if err == nil {
			break
		}
		if !errors.Is(err, auth.ErrLeaseHeld) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	if lb == nil {
		t.Fatalf("lease of a dead holder not free after %s", took)
	}
	defer lb.Release(ctx)
	if took < ttl/2 || took > ttl+time.Second {
		t.Errorf("dead holder's lease freed after %s, want about %s", took, ttl)
	}
}

func TestFencingRejectsStaleHolder(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := newStore(t, srv.URL(), testKey)
	b := newStore(t, srv.URL(), testKey)
	ctx := t.Context()
	const ttl = 200 * time.Millisecond
	now := time.Now()
	tokA, tokB := secretToken(now), secretToken(now)
	tokA.Access, tokB.Access = "token-from-A-stale", "token-from-B-fresh"

	// A takes the lease, then stalls past its ttl (a GC pause, a partition).
	la, err := a.Lease(ctx, "acct", ttl)
	if err != nil {
		t.Fatal(err)
	}
	stopKeepAlive(t, la)
	lb := leaseWhenFree(t, b, "acct", ttl)
	if err := b.SaveFenced(ctx, "acct", tokB, lb.Fence()); err != nil {
		t.Fatalf("current holder's save: %v", err)
	}
	// A wakes up and tries to save: refused, B's token stays.
	if err := a.SaveFenced(ctx, "acct", tokA, la.Fence()); !errors.Is(err, auth.ErrLeaseLost) {
		t.Fatalf("stale holder's save: %v, want ErrLeaseLost", err)
	}
	if got, err := b.Load(ctx, "acct"); err != nil || got.Access != tokB.Access {
		t.Fatalf("stored token after the refused save: %v %v", got, err)
	}
	// A's release does not free B's lease.
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Lease(ctx, "acct", ttl); !errors.Is(err, auth.ErrLeaseHeld) {
		t.Fatalf("after the stale holder released: %v, want B's lease still held", err)
	}
	if err := lb.Release(ctx); err != nil {
		t.Fatal(err)
	}

	// A lease that expired with nobody taking over was not superseded: its
	// holder's token is still the newest and is saved.
	lc, err := a.Lease(ctx, "acct", ttl)
	if err != nil {
		t.Fatal(err)
	}
	stopKeepAlive(t, lc)
	time.Sleep(2 * ttl)
	if err := a.SaveFenced(ctx, "acct", tokA, lc.Fence()); err != nil {
		t.Errorf("save after an expiry nobody took over: %v", err)
	}
	_ = lc.Release(ctx)

	// A plain Save (an interactive login) supersedes the holder.
	ld, err := a.Lease(ctx, "acct", ttl)
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Release(ctx)
	if err := b.Save(ctx, "acct", tokB); err != nil {
		t.Fatal(err)
	}
	if err := a.SaveFenced(ctx, "acct", tokA, ld.Fence()); !errors.Is(err, auth.ErrLeaseLost) {
		t.Errorf("holder's save after a plain save: %v, want ErrLeaseLost", err)
	}
	if got, _ := b.Load(ctx, "acct"); got == nil || got.Access != tokB.Access {
		t.Errorf("stored token = %v, want the plain save's", got)
	}
}

func leaseWhenFree(t *testing.T, s *Store, key string, ttl time.Duration) auth.Lease {
	t.Helper()
	deadline := time.Now().Add(10 * ttl)
	for time.Now().Before(deadline) {
		l, err := s.Lease(t.Context(), key, ttl)
		if err == nil {
			return l
		}
		if !errors.Is(err, auth.ErrLeaseHeld) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("lease on %s not free within %s", key, 10*ttl)
	return nil
}

// expectSignal waits up to d for a value on ch.
func expectSignal(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: watch channel closed", what)
		}
	case <-time.After(d):
		t.Fatalf("%s: no notification within %s", what, d)
	}
}

func TestWatchPubSub(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := newStore(t, srv.URL(), testKey)
	b := newStore(t, srv.URL(), testKey)
	raw := rawClient(t, srv)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	ch := a.Watch(ctx, "acct")
	expectSignal(t, ch, 3*time.Second, "subscribed")

	// What is published is an announcement, never the token.
	sub := raw.Subscribe(ctx, a.Channel("acct"))
	defer sub.Close()
	if _, err := sub.ReceiveTimeout(ctx, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	tok := secretToken(time.Now())
	if err := b.Save(ctx, "acct", tok); err != nil {
		t.Fatal(err)
	}
	expectSignal(t, ch, 3*time.Second, "after another process saved")
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(msg.Payload, "S3CRET") || msg.Payload != savedMessage {
		t.Errorf("published payload = %q", msg.Payload)
	}
	if got, err := a.Load(ctx, "acct"); err != nil || got.Access != tok.Access {
		t.Fatalf("watcher's load: %v %v", got, err)
	}

	// A save for another account does not wake this watcher.
	if err := b.Save(ctx, "other", tok); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Error("notified for another account's save")
	case <-time.After(300 * time.Millisecond):
	}

	// Redis goes away and comes back: the watcher says so both times and
	// then hears saves again.
	srv.Stop()
	expectSignal(t, ch, 5*time.Second, "connection lost")
	srv.Restart()
	expectSignal(t, ch, 8*time.Second, "resubscribed after the restart")
	if err := b.Save(ctx, "acct", tok); err != nil {
		t.Fatal(err)
	}
	expectSignal(t, ch, 3*time.Second, "save after the restart")

	cancel()
	deadline := time.After(3 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("watch channel not closed within 3s of cancel")
		}
	}
}

func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv.URL(), testKey)
	ctx := t.Context()
	tok := secretToken(time.Now())
	if err := s.Save(ctx, "acct", tok); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	if _, err := s.Load(ctx, "acct"); err == nil || errors.Is(err, auth.ErrNotFound) {
		t.Errorf("load with Redis down: %v", err)
	}
	if _, err := s.Lease(ctx, "acct", time.Second); err == nil || errors.Is(err, auth.ErrLeaseHeld) {
		t.Errorf("lease with Redis down: %v", err)
	}
	if err := s.Save(ctx, "acct", tok); err == nil {
		t.Error("save with Redis down succeeded")
	} else if strings.Contains(err.Error(), "S3CRET") {
		t.Errorf("error leaks a secret: %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("three calls with Redis down took %s", took)
	}
	srv.Restart()
	if err := s.Save(ctx, "acct", tok); err != nil {
		t.Fatalf("save after Redis came back: %v", err)
	}
	if got, err := s.Load(ctx, "acct"); err != nil || got.Access != tok.Access {
		t.Fatalf("load after Redis came back: %v %v", got, err)
	}
}

func TestPasswordAndTLS(t *testing.T) {
	dir := t.TempDir()
	pool, certFile, keyFile := writeTLSFiles(t, dir)
	const password = "redis-Passw0rd-9f8e"
	srv := redistest.Start(t, redistest.Options{Password: password, CertFile: certFile, KeyFile: keyFile})
	if !strings.HasPrefix(srv.URL(), "rediss://") {
		t.Fatalf("url %q", srv.URL())
	}
	s, err := New(Options{URL: srv.URL(), Key: testKey, RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	tok := secretToken(time.Now())
	if err := s.Save(ctx, "acct", tok); err != nil {
		t.Fatalf("save over TLS with a password: %v", err)
	}
	if got, err := s.Load(ctx, "acct"); err != nil || got.Access != tok.Access {
		t.Fatalf("load over TLS: %v %v", got, err)
	}

	wrong := strings.Replace(srv.URL(), password, "wrong-Passw0rd", 1)
	sw, err := New(Options{URL: wrong, Key: testKey, RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	err = sw.Ping(ctx)
	if err == nil {
		t.Error("wrong password accepted")
	} else if strings.Contains(err.Error(), "Passw0rd") {
		t.Errorf("error quotes a password: %v", err)
	}

	// The server's certificate is verified: without its CA, no connection.
	su, err := New(Options{URL: srv.URL(), Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer su.Close()
	if err := su.Ping(ctx); err == nil {
		t.Error("connected to a TLS server whose CA is not trusted")
	}
}

// writeTLSFiles makes a CA and a certificate for 127.0.0.1 signed by it.
func writeTLSFiles(t *testing.T, dir string) (*x509.CertPool, string, string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "redistest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "redis.crt"), filepath.Join(dir, "redis.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, certFile, keyFile
}
