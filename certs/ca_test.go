package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth/authtest"
)

type syncBuffer = authtest.LogBuffer

// brokerDomains are the name constraints the proxy uses for its brokers.
var brokerDomains = []string{"swastika.co.in", "tradovateapi.com", "5paisa.com", "pocketful.in"}

// newClock is a test clock standing at the current second.
func newClock() *authtest.Clock { return authtest.Fixed(time.Now().Truncate(time.Second)) }

func testLogger(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fakeRootsPEM returns a PEM with one self-signed certificate, standing in
// for the system roots.
func fakeRootsPEM(t testing.TB) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(42),
		Subject:               pkix.Name{CommonName: "fake system root"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	// No trailing newline: the bundle must still separate the blocks.
	return bytes.TrimSuffix(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), []byte("\n"))
}

// testOptions returns options with fixed fake system roots and a logger.
func testOptions(t testing.TB, roots []byte, logs *syncBuffer) Options {
	t.Helper()
	if logs == nil {
		logs = new(syncBuffer)
	}
	return Options{
		Logger:   testLogger(logs),
		rootsPEM: func() ([]byte, error) { return roots, nil },
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fileMode(t testing.TB, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// dirNames lists a directory's entries, sorted.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

var wantFiles = []string{bundleFile, keyFile, certFile}

func TestLoadOrCreateNewCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "ca")
	roots := fakeRootsPEM(t)
	ca, err := LoadOrCreate(dir, testOptions(t, roots, nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := fileMode(t, dir); got != 0o700 {
		t.Errorf("dir mode = %04o, want 0700", got)
	}
	if got := dirNames(t, dir); !slices.Equal(got, wantFiles) {
		t.Errorf("dir holds %q, want %q (temporary files left behind?)", got, wantFiles)
	}
	for path, want := range map[string]os.FileMode{ca.CertPath(): 0o644, ca.KeyPath(): 0o600, ca.BundlePath(): 0o644} {
		if got := fileMode(t, path); got != want {
			t.Errorf("%s mode = %04o, want %04o", filepath.Base(path), got, want)
		}
	}
	if ca.CertPath() != filepath.Join(dir, "ca.pem") || ca.KeyPath() != filepath.Join(dir, "ca-key.pem") ||
		ca.BundlePath() != filepath.Join(dir, "bundle.pem") {
		t.Errorf("paths = %s %s %s", ca.CertPath(), ca.KeyPath(), ca.BundlePath())
	}

	cert := ca.Certificate()
	host, _ := os.Hostname()
	if want := "authproxy local CA (" + host + ")"; host != "" && cert.Subject.CommonName != want {
		t.Errorf("CN = %q, want %q", cert.Subject.CommonName, want)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid || cert.MaxPathLen != 0 || !cert.MaxPathLenZero {
		t.Errorf("basic constraints: IsCA=%v valid=%v MaxPathLen=%d zero=%v",
			cert.IsCA, cert.BasicConstraintsValid, cert.MaxPathLen, cert.MaxPathLenZero)
	}
	if cert.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("key usage = %v", cert.KeyUsage)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key = %T, want ECDSA P-256", cert.PublicKey)
	}
	if years := cert.NotAfter.Sub(cert.NotBefore).Hours() / 24 / 365.25; years < 9.99 || years > 10.01 {
		t.Errorf("validity = %.2f years, want 10", years)
	}
	if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() > 129 {
		t.Errorf("serial = %v", cert.SerialNumber)
	}
	if len(cert.PermittedDNSDomains) != 0 || len(cert.PermittedIPRanges) != 0 {
		t.Errorf("unconstrained CA has constraints: %v %v", cert.PermittedDNSDomains, cert.PermittedIPRanges)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		t.Errorf("not self-signed: %v", err)
	}

	if got := readFile(t, ca.CertPath()); !bytes.Equal(got, ca.CertPEM()) {
		t.Error("ca.pem differs from CertPEM()")
	}
	block, rest := pem.Decode(readFile(t, ca.KeyPath()))
	if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("ca-key.pem is not a single PKCS#8 PEM block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.(*ecdsa.PrivateKey).PublicKey.Equal(cert.PublicKey) {
		t.Error("ca-key.pem does not match ca.pem")
	}
	wantBundle := append(append(slices.Clone(roots), '\n'), ca.CertPEM()...)
	if got := readFile(t, ca.BundlePath()); !bytes.Equal(got, wantBundle) {
		t.Errorf("bundle.pem =\n%s\nwant roots + ca.pem", got)
	}
}

func TestLoadOrCreateReusesExistingCA(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, fakeRootsPEM(t), nil)
	opts.PermittedDNS = brokerDomains
	first, err := LoadOrCreate(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	certBefore, keyBefore, bundleBefore := readFile(t, first.CertPath()), readFile(t, first.KeyPath()), readFile(t, first.BundlePath())
	fi, err := os.Stat(first.BundlePath())
	if err != nil {
		t.Fatal(err)
	}

	// The same domains in another order and case must not cause a new one.
	opts.PermittedDNS = []string{"Pocketful.in", "*.5paisa.com", "tradovateapi.com.", "swastika.co.in"}
	second, err := LoadOrCreate(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(second.CertPEM(), certBefore) || !bytes.Equal(second.Certificate().Raw, first.Certificate().Raw) {
		t.Error("reloaded CA certificate differs")
	}
	if !bytes.Equal(readFile(t, second.KeyPath()), keyBefore) || !bytes.Equal(readFile(t, second.CertPath()), certBefore) {
		t.Error("ca files were rewritten on load")
	}
	if !bytes.Equal(readFile(t, second.BundlePath()), bundleBefore) {
		t.Error("bundle.pem changed on load")
	}
	fi2, err := os.Stat(second.BundlePath())
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(fi, fi2) {
		t.Error("an up-to-date bundle.pem was replaced")
	}
	if got := dirNames(t, dir); !slices.Equal(got, wantFiles) {
		t.Errorf("dir holds %q, want %q", got, wantFiles)
	}
	// A leaf from the reloaded CA verifies against the first CA's cert.
	leaf, err := second.Leaf("trade.pocketful.in")
	if err != nil {
		t.Fatal(err)
	}
	verifyLeaf(t, first.Certificate(), leaf.Leaf, "trade.pocketful.in", time.Now())
}

// TestConcurrentFirstRun starts several LoadOrCreate calls on one fresh
// directory, as two authproxy processes started together would: all must end
// up with the same CA and a matching key on disk.
func TestConcurrentFirstRun(t *testing.T) {
	for round := range 5 {
		dir := filepath.Join(t.TempDir(), "ca")
		const n = 8
		cas := make([]*CA, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				cas[i], errs[i] = LoadOrCreate(dir, testOptions(t, nil, nil))
			})
		}
		close(start)
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d, call %d: %v", round, i, errs[i])
			}
			if !bytes.Equal(cas[i].CertPEM(), cas[0].CertPEM()) {
				t.Fatalf("round %d: concurrent first runs returned different CAs", round)
			}
		}
		reloaded, err := LoadOrCreate(dir, testOptions(t, nil, nil))
		if err != nil {
			t.Fatalf("round %d: reload: %v", round, err)
		}
		if !bytes.Equal(reloaded.CertPEM(), cas[0].CertPEM()) {
			t.Fatalf("round %d: files on disk hold a different CA than was returned", round)
		}
		if got := dirNames(t, dir); !slices.Equal(got, wantFiles) {
			t.Fatalf("round %d: dir holds %q, want %q", round, got, wantFiles)
		}
	}
}

func TestLoadRewritesStaleBundle(t *testing.T) {
	dir := t.TempDir()
	roots := fakeRootsPEM(t)
	ca, err := LoadOrCreate(dir, testOptions(t, roots, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := readFile(t, ca.BundlePath())

	if err := os.WriteFile(ca.BundlePath(), []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(dir, testOptions(t, roots, nil)); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, ca.BundlePath()); !bytes.Equal(got, want) {
		t.Error("stale bundle.pem was not rewritten")
	}

	if err := os.Remove(ca.BundlePath()); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(dir, testOptions(t, roots, nil)); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, ca.BundlePath()); !bytes.Equal(got, want) {
		t.Error("missing bundle.pem was not recreated")
	}

	// New system roots change the bundle.
	newRoots := fakeRootsPEM(t)
	if _, err := LoadOrCreate(dir, testOptions(t, newRoots, nil)); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, ca.BundlePath()); !bytes.HasPrefix(got, newRoots) || !bytes.HasSuffix(got, ca.CertPEM()) {
		t.Error("bundle.pem does not follow changed system roots")
	}
	if got := dirNames(t, dir); !slices.Equal(got, wantFiles) {
		t.Errorf("dir holds %q, want %q", got, wantFiles)
	}
}

func TestLoadTightensKeyMode(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreate(dir, testOptions(t, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ca.KeyPath(), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := new(syncBuffer)
	if _, err := LoadOrCreate(dir, testOptions(t, nil, logs)); err != nil {
		t.Fatal(err)
	}
	if got := fileMode(t, ca.KeyPath()); got != 0o600 {
		t.Errorf("key mode = %04o after load, want 0600", got)
	}
	if !strings.Contains(logs.String(), "tightened") || !strings.Contains(logs.String(), "0644") {
		t.Errorf("no log about the tightened key mode:\n%s", logs)
	}
}

func TestLoadRejectsBrokenCA(t *testing.T) {
	otherDir := t.TempDir()
	other, err := LoadOrCreate(otherDir, testOptions(t, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	leafKeyPEM := func() []byte {
		der, err := x509.MarshalPKCS8PrivateKey(other.leafKey)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}()
	leaf, err := other.Leaf("example.org")
	if err != nil {
		t.Fatal(err)
	}
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]})

	tests := []struct {
		name     string
		file     string // which file to change
		content  []byte // nil: delete the file
		wantFile string // file the error must name
	}{
		{"garbage cert", certFile, []byte("not a certificate"), certFile},
		{"corrupt cert", certFile, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), certFile},
		{"garbage key", keyFile, []byte("not a key"), keyFile},
		{"key of another CA", keyFile, readFile(t, other.KeyPath()), keyFile},
		{"cert of another CA", certFile, other.CertPEM(), keyFile},
		{"leaf instead of CA", certFile, leafPEM, certFile},
		{"leaf key", keyFile, leafKeyPEM, keyFile},
		{"missing key", keyFile, nil, keyFile},
		{"missing cert", certFile, nil, certFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := LoadOrCreate(dir, testOptions(t, nil, nil)); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, tt.file)
			if tt.content == nil {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			before := map[string][]byte{}
			for _, n := range dirNames(t, dir) {
				before[n] = readFile(t, filepath.Join(dir, n))
			}

			_, err := LoadOrCreate(dir, testOptions(t, nil, nil))
			if err == nil {
				t.Fatal("LoadOrCreate succeeded, want error")
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, tt.wantFile)) {
				t.Errorf("error %q does not name %s", err, tt.wantFile)
			}
			after := dirNames(t, dir)
			if len(after) != len(before) {
				t.Errorf("files changed: %q", after)
			}
			for _, n := range after {
				if !bytes.Equal(readFile(t, filepath.Join(dir, n)), before[n]) {
					t.Errorf("%s was modified", n)
				}
			}
		})
	}
}

func TestRotateIssuesNewKey(t *testing.T) {
	dir := t.TempDir()
	roots := fakeRootsPEM(t)
	old, err := LoadOrCreate(dir, testOptions(t, roots, nil))
	if err != nil {
		t.Fatal(err)
	}
	oldKey := readFile(t, old.KeyPath())

	logs := new(syncBuffer)
	opts := testOptions(t, roots, logs)
	opts.PermittedDNS = brokerDomains
	rotated, err := Rotate(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Certificate().PublicKey.(*ecdsa.PublicKey).Equal(old.Certificate().PublicKey) {
		t.Error("rotated CA has the old public key")
	}
	if bytes.Equal(readFile(t, rotated.KeyPath()), oldKey) {
		t.Error("ca-key.pem unchanged by Rotate")
	}
	if rotated.Certificate().SerialNumber.Cmp(old.Certificate().SerialNumber) == 0 {
		t.Error("rotated CA has the old serial")
	}
	if !slices.Equal(rotated.Certificate().PermittedDNSDomains, brokerDomains) {
		t.Errorf("rotated CA permits %q", rotated.Certificate().PermittedDNSDomains)
	}
	if !strings.Contains(logs.String(), "issued new local CA") {
		t.Errorf("rotation not logged:\n%s", logs)
	}
	for path, want := range map[string]os.FileMode{rotated.CertPath(): 0o644, rotated.KeyPath(): 0o600, rotated.BundlePath(): 0o644} {
		if got := fileMode(t, path); got != want {
			t.Errorf("%s mode = %04o, want %04o", filepath.Base(path), got, want)
		}
	}
	if got := dirNames(t, dir); !slices.Equal(got, wantFiles) {
		t.Errorf("dir holds %q, want %q", got, wantFiles)
	}
	if got := readFile(t, rotated.BundlePath()); !bytes.HasSuffix(got, rotated.CertPEM()) || bytes.Contains(got, old.CertPEM()) {
		t.Error("bundle.pem does not hold the new CA only")
	}

	reloaded, err := LoadOrCreate(dir, testOptions(t, roots, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(reloaded.CertPEM(), rotated.CertPEM()) {
		t.Error("reload after Rotate did not return the rotated CA")
	}

	// Rotate also works on an empty, not yet existing directory.
	if _, err := Rotate(filepath.Join(t.TempDir(), "new"), testOptions(t, roots, nil)); err != nil {
		t.Fatal(err)
	}
}

func TestAtomicWriteFailureLeavesNoTempFiles(t *testing.T) {
	dir := t.TempDir()
	// A non-empty directory where bundle.pem belongs makes the rename fail.
	if err := os.MkdirAll(filepath.Join(dir, bundleFile, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOrCreate(dir, testOptions(t, nil, nil))
	if err == nil {
		t.Fatal("LoadOrCreate succeeded with bundle.pem blocked")
	}
	for _, n := range dirNames(t, dir) {
		if strings.Contains(n, ".tmp-") {
			t.Errorf("temporary file %s left behind", n)
		}
	}

	if err := writeFileAtomic(dir, "f", []byte("one"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(dir, "f", []byte("two"), 0o640); err != nil {
		t.Fatal(err)
	}
	if got := string(readFile(t, filepath.Join(dir, "f"))); got != "two" {
		t.Errorf("content = %q, want %q", got, "two")
	}
	if got := fileMode(t, filepath.Join(dir, "f")); got != 0o640 {
		t.Errorf("mode = %04o, want 0640", got)
	}
	if err := writeFileAtomic(filepath.Join(dir, "missing"), "f", nil, 0o600); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func TestNameConstrainedCA(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, nil, nil)
	opts.PermittedDNS = []string{"Swastika.co.in", "tradovateapi.com.", "*.5paisa.com", " pocketful.in", "swastika.co.in"}
	ca, err := LoadOrCreate(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	cert := ca.Certificate()
	if !cert.PermittedDNSDomainsCritical {
		t.Error("name constraints are not critical")
	}
	if !slices.Equal(cert.PermittedDNSDomains, brokerDomains) {
		t.Errorf("permitted DNS = %q, want %q", cert.PermittedDNSDomains, brokerDomains)
	}
	var ranges []string
	for _, r := range cert.PermittedIPRanges {
		ranges = append(ranges, r.String())
	}
	if want := []string{"127.0.0.0/8", "::1/128"}; !slices.Equal(ranges, want) {
		t.Errorf("permitted IP ranges = %q, want %q", ranges, want)
	}

	now := time.Now()
	leaf, err := ca.Leaf("tradingorestapi.swastika.co.in")
	if err != nil {
		t.Fatal(err)
	}
	verifyLeaf(t, cert, leaf.Leaf, "tradingorestapi.swastika.co.in", now)

	_, err = ca.Leaf("example.com")
	if !errors.Is(err, ErrNotCovered) {
		t.Fatalf("Leaf(example.com) error = %v, want ErrNotCovered", err)
	}

	// The constraint is enforced by Go's verifier, not just by Leaf: a
	// certificate minted around the check is rejected.
	forged, err := ca.mint("example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	_, err = forged.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "example.com", CurrentTime: now})
	var invalid x509.CertificateInvalidError
	if !errors.As(err, &invalid) || invalid.Reason != x509.CANotAuthorizedForThisName {
		t.Errorf("verifying example.com under a constrained CA: err = %v, want CANotAuthorizedForThisName", err)
	}
}

// TestCoversAgreesWithVerifier checks Covers against Go's verifier for
// names inside and outside the constraints.
func TestCoversAgreesWithVerifier(t *testing.T) {
	opts := testOptions(t, nil, nil)
	opts.PermittedDNS = brokerDomains
	ca, err := LoadOrCreate(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	unconstrained, err := LoadOrCreate(t.TempDir(), testOptions(t, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	now := time.Now()

	tests := []struct {
		host string
		want bool
	}{
		{"tradingorestapi.swastika.co.in", true},
		{"TradingoRestAPI.Swastika.co.in.", true},
		{"swastika.co.in", true},
		{"demo.tradovateapi.com", true},
		{"md.tradovateapi.com:443", true},
		{"openapi.5paisa.com", true},
		{"trade.pocketful.in", true},
		{"127.0.0.1", true},
		{"127.9.8.7", true},
		{"::1", true},
		{"[::1]:8443", true},
		{"example.com", false},
		{"evilswastika.co.in", false},
		{"swastika.co.in.evil.com", false},
		{"co.in", false},
		{"10.0.0.1", false},
		{"::2", false},
		{"h", false},
	}
	for _, tt := range tests {
		if got := ca.Covers(tt.host); got != tt.want {
			t.Errorf("Covers(%q) = %v, want %v", tt.host, got, tt.want)
		}
		if !unconstrained.Covers(tt.host) {
			t.Errorf("unconstrained Covers(%q) = false", tt.host)
		}
		name, ip, err := normalizeHost(tt.host)
		if err != nil {
			t.Fatalf("normalizeHost(%q): %v", tt.host, err)
		}
		forged, err := ca.mint(name, ip)
		if err != nil {
			t.Fatal(err)
		}
		_, verr := forged.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, CurrentTime: now})
		if verified := verr == nil; verified != tt.want {
			t.Errorf("Go verifier on %q: err = %v, want verified = %v", tt.host, verr, tt.want)
		}
	}
	for _, bad := range []string{"", "bad host", "a..b", "-a.com", "fe80::1%eth0", strings.Repeat("a", 64) + ".com"} {
		if ca.Covers(bad) || unconstrained.Covers(bad) {
			t.Errorf("Covers(%q) = true for an invalid host", bad)
		}
	}
}

func TestInvalidPermittedDNS(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, nil, nil)
	opts.PermittedDNS = []string{"swastika.co.in", "bad domain"}
	if _, err := LoadOrCreate(dir, opts); err == nil || !strings.Contains(err.Error(), "bad domain") {
		t.Errorf("err = %v, want an error naming the bad domain", err)
	}
	if got := dirNames(t, dir); len(got) != 0 {
		t.Errorf("files written despite the error: %q", got)
	}
}

func TestBundleWithoutSystemRoots(t *testing.T) {
	logs := new(syncBuffer)
	opts := testOptions(t, nil, logs)
	opts.rootsPEM = func() ([]byte, error) { return nil, ErrNoSystemRoots }
	ca, err := LoadOrCreate(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, ca.BundlePath()); !bytes.Equal(got, ca.CertPEM()) {
		t.Error("bundle.pem is not ca.pem alone when there are no system roots")
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "system roots") {
		t.Errorf("no warning about missing system roots:\n%s", logs)
	}
}

// TestBundleHoldsRealSystemRoots uses the machine's real root store.
func TestBundleHoldsRealSystemRoots(t *testing.T) {
	ca, err := LoadOrCreate(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	bundle := readFile(t, ca.BundlePath())
	roots, err := SystemRootsPEM()
	switch {
	case errors.Is(err, ErrNoSystemRoots):
		if !bytes.Equal(bundle, ca.CertPEM()) {
			t.Error("no system roots, but bundle.pem is not ca.pem alone")
		}
		return
	case err != nil:
		t.Fatal(err)
	}
	if !bytes.HasPrefix(bundle, roots) || !bytes.HasSuffix(bundle, ca.CertPEM()) {
		t.Error("bundle.pem is not system roots followed by ca.pem")
	}
	if got, want := countCerts(bundle), countCerts(roots)+1; got != want || want < 2 {
		t.Errorf("bundle.pem holds %d certificates, want %d", got, want)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		t.Fatal("bundle.pem does not parse")
	}
	leaf, err := ca.Leaf("example.org")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "example.org"}); err != nil {
		t.Errorf("leaf does not verify against bundle.pem: %v", err)
	}
}

func TestExpiredCA(t *testing.T) {
	dir := t.TempDir()
	clock := newClock()
	opts := testOptions(t, nil, nil)
	opts.Now = clock.Now
	if _, err := LoadOrCreate(dir, opts); err != nil {
		t.Fatal(err)
	}

	clock.Advance(11 * 365 * 24 * time.Hour)
	logs := new(syncBuffer)
	opts = testOptions(t, nil, logs)
	opts.Now = clock.Now
	ca, err := LoadOrCreate(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "expired") {
		t.Errorf("no log about the expired CA:\n%s", logs)
	}
	if _, err := ca.Leaf("example.org"); err == nil || !strings.Contains(err.Error(), "rotate") {
		t.Errorf("Leaf with an expired CA: err = %v, want an expiry error", err)
	}
	if n := ca.leaves.len(); n != 0 {
		t.Errorf("failed leaf cached: %d entries", n)
	}
}

func TestLoadRefusesCAWithOtherDomains(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, nil, nil)
	opts.PermittedDNS = []string{"swastika.co.in"}
	if _, err := LoadOrCreate(dir, opts); err != nil {
		t.Fatal(err)
	}
	for _, domains := range [][]string{{"swastika.co.in", "pocketful.in"}, {"pocketful.in"}} {
		opts.PermittedDNS = domains
		_, err := LoadOrCreate(dir, opts)
		if err == nil || !strings.Contains(err.Error(), "authproxy ca rotate") || !strings.Contains(err.Error(), "pocketful.in") {
			t.Errorf("%v: err %v, want a refusal naming the domains and `authproxy ca rotate`", domains, err)
		}
	}
	// Rotating issues one that loads.
	opts.PermittedDNS = []string{"swastika.co.in", "pocketful.in"}
	if _, err := Rotate(dir, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(dir, opts); err != nil {
		t.Fatalf("after rotate: %v", err)
	}
}

// A CA planted in the state dir without (critical) name constraints is
// refused, and it never reaches bundle.pem.
func TestLoadRefusesPlantedCA(t *testing.T) {
	for _, critical := range []bool{false, true} {
		dir := t.TempDir()
		planted := testOptions(t, nil, nil)
		if critical {
			planted.PermittedDNS = []string{"swastika.co.in"}
		}
		ca, err := LoadOrCreate(dir, planted)
		if err != nil {
			t.Fatal(err)
		}
		if critical {
			// Re-sign the same key with non-critical constraints.
			tmpl := *ca.Certificate()
			tmpl.PermittedDNSDomainsCritical = false
			der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, ca.key.Public(), ca.key)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(ca.CertPath(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		os.Remove(ca.BundlePath())
		opts := testOptions(t, nil, nil)
		opts.PermittedDNS = []string{"swastika.co.in"}
		if _, err := LoadOrCreate(dir, opts); err == nil || !strings.Contains(err.Error(), "authproxy ca rotate") {
			t.Errorf("critical=%v: err %v, want a refusal pointing at `authproxy ca rotate`", critical, err)
		}
		if _, err := os.Stat(ca.BundlePath()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("critical=%v: bundle.pem written from a refused CA (%v)", critical, err)
		}
	}
}

func TestStateDirWritableByOthersIsRefused(t *testing.T) {
	for _, mode := range []os.FileMode{0o777, 0o770, 0o720, 0o702} {
		dir := t.TempDir()
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreate(dir, testOptions(t, nil, nil))
		if err == nil || !strings.Contains(err.Error(), "writable by group or others") {
			t.Errorf("mode %04o: err %v, want a refusal", mode, err)
		}
		if names := dirNames(t, dir); len(names) != 0 {
			t.Errorf("mode %04o: files written: %q", mode, names)
		}
		if _, err := Rotate(dir, testOptions(t, nil, nil)); err == nil {
			t.Errorf("mode %04o: Rotate accepted the dir", mode)
		}
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(dir, testOptions(t, nil, nil)); err != nil {
		t.Errorf("mode 0755: %v", err)
	}
}

// verifyLeaf checks leaf against ca with Go's verifier.
func verifyLeaf(t testing.TB, ca, leaf *x509.Certificate, host string, now time.Time) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	opts := x509.VerifyOptions{Roots: roots, DNSName: host, CurrentTime: now}
	if _, err := leaf.Verify(opts); err != nil {
		t.Errorf("leaf for %q does not verify: %v", host, err)
	}
	if ip := net.ParseIP(host); ip == nil && !slices.Equal(leaf.DNSNames, []string{host}) {
		t.Errorf("leaf DNS names = %q, want [%q]", leaf.DNSNames, host)
	}
}
