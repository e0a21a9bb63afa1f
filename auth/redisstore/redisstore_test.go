package redisstore

import (
	"bytes"
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
