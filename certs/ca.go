// Package certs is authproxy's local certificate authority: it creates or
// loads the CA kept in the state directory (ca.pem, ca-key.pem, bundle.pem),
// mints short-lived leaf certificates for the broker hosts the proxy
// intercepts, caches them, and builds the server-side TLS configuration for a
// decrypted client connection.
//
// The CA is ECDSA P-256 and, when the caller names the broker domains, carries
// X.509 name constraints so that even a stolen CA key cannot impersonate any
// other site to a client that trusts it. certs never overwrites an existing CA
// except through [Rotate], and never imports the proxy, auth or config
// packages.
package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// File names inside the CA directory.
const (
	certFile   = "ca.pem"
	keyFile    = "ca-key.pem"
	bundleFile = "bundle.pem"
)

const (
	caValidityYears = 10
	// backdate is subtracted from "now" for NotBefore so that clients whose
	// clocks run a little behind still accept fresh certificates.
	backdate = time.Hour
	// caExpiryWarning is how far ahead of the CA's expiry loading it warns.
	caExpiryWarning = 30 * 24 * time.Hour
)

// Options configures [LoadOrCreate] and [Rotate].
type Options struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// PermittedDNS lists the DNS domains a newly issued CA may sign for
	// (X.509 name constraints, e.g. "swastika.co.in" permits that name and
	// every name below it). A leading "*." is dropped. Empty means the CA is
	// unconstrained. A CA loaded from dir must carry critical name
	// constraints naming exactly these domains, else loading fails (pointing
	// at `authproxy ca rotate`): a planted or stale CA is never used.
	PermittedDNS []string
	// Logger receives notices (created CA, tightened key mode, missing
	// system roots); nil discards them.
	Logger *slog.Logger

	// rootsPEM replaces SystemRootsPEM in tests.
	rootsPEM func() ([]byte, error)
}

// CA is a loaded local certificate authority. Its methods are safe for
// concurrent use.
type CA struct {
	dir     string
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
	now     func() time.Time
	log     *slog.Logger

	leaves leafCache
	// leafKey is the key pair shared by every leaf this CA mints in this
	// process; it is never written to disk.
	leafKey *ecdsa.PrivateKey
	tickets ticketKeys
}

// LoadOrCreate loads the CA stored in dir, or issues a new one there when
// neither ca.pem nor ca-key.pem exists. dir is created with mode 0700 if
// needed. An existing CA is never replaced: an unreadable, unparsable or
// mismatched ca.pem/ca-key.pem pair, or only one of the two files, is an
// error naming the file. A key file readable by group or others is tightened
// to 0600. bundle.pem (system roots followed by ca.pem) is rewritten when its
// content is not what it should be. Processes starting together on a fresh
// dir all end up with the same CA: creation never overwrites, and the losers
// load the winner's files.
func LoadOrCreate(dir string, opts Options) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create ca directory: %w", err)
	}
	if err := CheckDir(dir); err != nil {
		return nil, err
	}
	certPath, keyPath := filepath.Join(dir, certFile), filepath.Join(dir, keyFile)
	certExists, keyExists, err := waitForPair(certPath, keyPath)
	if err != nil {
		return nil, err
	}
	switch {
	case !certExists && !keyExists:
		return issue(dir, opts, false)
	case certExists && !keyExists:
		return nil, fmt.Errorf("%s exists but its key %s is missing (restore it, or run `authproxy ca rotate` to issue a new CA)", certPath, keyPath)
	case !certExists && keyExists:
		return nil, fmt.Errorf("%s exists but its certificate %s is missing (restore it, or run `authproxy ca rotate` to issue a new CA)", keyPath, certPath)
	}
	return load(dir, opts)
}

// Rotate issues a new CA with a new key in dir, replacing ca.pem, ca-key.pem
// and bundle.pem. Each file is replaced atomically; clients that trusted the
// old CA must be given the new ca.pem.
func Rotate(dir string, opts Options) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create ca directory: %w", err)
	}
	if err := CheckDir(dir); err != nil {
		return nil, err
	}
	return issue(dir, opts, true)
}

// waitForPair reports which of the two files exist. When only one does,
// another process may be creating the CA right now, so it waits up to a
// second for the other to appear.
func waitForPair(certPath, keyPath string) (certExists, keyExists bool, err error) {
	const attempts, pause = 20, 50 * time.Millisecond
	for i := 1; ; i++ {
		if certExists, err = exists(certPath); err != nil {
			return false, false, err
		}
		if keyExists, err = exists(keyPath); err != nil {
			return false, false, err
		}
		if certExists == keyExists || i == attempts {
			return certExists, keyExists, nil
		}
		time.Sleep(pause)
	}
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("stat %s: %w", path, err)
}

// newCA builds the in-memory CA around a certificate and its key.
func newCA(dir string, opts Options, cert *x509.Certificate, certPEM []byte, key crypto.Signer) (*CA, error) {
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate leaf key: %w", err)
	}
	c := &CA{
		dir:     dir,
		cert:    cert,
		certPEM: certPEM,
		key:     key,
		now:     opts.Now,
		log:     opts.Logger,
		leafKey: leafKey,
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.leaves.init(defaultLeafCacheSize)
	return c, nil
}

// issue creates a new CA key and certificate and writes all three files.
// Unless replace is set, an existing ca.pem or ca-key.pem is never
// overwritten: when another process creates the CA first, issue loads that
// one instead.
func issue(dir string, opts Options, replace bool) (*CA, error) {
	permitted, err := normalizeDomains(opts.PermittedDNS)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ca key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	hostname, err := os.Hostname()
	if err != nil || hostname == "" {
		hostname = "unknown host"
	}
	start := now().Add(-backdate)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   fmt.Sprintf("authproxy local CA (%s)", hostname),
			Organization: []string{"authproxy"},
		},
		NotBefore:             start,
		NotAfter:              start.AddDate(caValidityYears, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	if len(permitted) > 0 {
		tmpl.PermittedDNSDomainsCritical = true
		tmpl.PermittedDNSDomains = permitted
		tmpl.PermittedIPRanges = loopbackRanges()
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse new ca certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode ca key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})

	c, err := newCA(dir, opts, cert, certPEM, key)
	if err != nil {
		return nil, err
	}
	// Stage both files before renaming either, so that the window in which
	// ca.pem and ca-key.pem disagree is as short as it can be.
	keyTmp, err := stageFile(dir, keyFile, keyPEM, 0o600)
	if err != nil {
		return nil, err
	}
	certTmp, err := stageFile(dir, certFile, certPEM, 0o644)
	if err != nil {
		os.Remove(keyTmp)
		return nil, err
	}
	commit, msg := commitFile, "issued new local CA"
	if !replace {
		commit, msg = commitNewFile, "created local CA"
	}
	if err := commit(keyTmp, c.KeyPath()); err != nil {
		os.Remove(certTmp)
		if !replace && errors.Is(err, fs.ErrExist) {
			return loadCreatedElsewhere(dir, opts)
		}
		return nil, err
	}
	if err := commit(certTmp, c.CertPath()); err != nil {
		return nil, err
	}
	if err := c.syncBundle(opts); err != nil {
		return nil, err
	}
	c.log.Info(msg, "cert", c.CertPath(), "subject", cert.Subject.CommonName,
		"expires", cert.NotAfter, "permitted_dns", permitted)
	return c, nil
}

// loadCreatedElsewhere loads the CA another process is creating in dir,
// waiting up to a second for its ca.pem to follow its ca-key.pem.
func loadCreatedElsewhere(dir string, opts Options) (*CA, error) {
	const attempts, pause = 20, 50 * time.Millisecond
	for i := 1; ; i++ {
		c, err := load(dir, opts)
		if err == nil || !errors.Is(err, fs.ErrNotExist) || i == attempts {
			return c, err
		}
		time.Sleep(pause)
	}
}

// load reads and checks an existing CA.
func load(dir string, opts Options) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, certFile), filepath.Join(dir, keyFile)
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("read ca certificate: %w", err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%s: certificate is not a CA allowed to sign certificates", certPath)
	}
	if err := checkConstraints(cert, opts.PermittedDNS); err != nil {
		return nil, fmt.Errorf("%s: %w; run `authproxy ca rotate` to issue a new local CA (clients must then trust the new ca.pem)", certPath, err)
	}
	fi, err := os.Stat(keyPath)
	if err != nil {
		return nil, fmt.Errorf("stat ca key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", keyPath)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("read ca key: %w", err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("%s: key does not match the certificate in %s (restore the matching pair, or run `authproxy ca rotate` to issue a new CA)", keyPath, certPath)
	}
	c, err := newCA(dir, opts, cert, certPEM, key)
	if err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(keyPath, 0o600); err != nil {
			return nil, fmt.Errorf("tighten mode of %s: %w", keyPath, err)
		}
		c.log.Warn("ca key was readable by others; mode tightened to 0600",
			"path", keyPath, "old_mode", fmt.Sprintf("%04o", perm))
	}
	if err := c.syncBundle(opts); err != nil {
		return nil, err
	}
	now := c.now()
	switch {
	case now.After(cert.NotAfter):
		c.log.Error("local CA has expired; run `authproxy ca rotate`", "cert", certPath, "expired", cert.NotAfter)
	case cert.NotAfter.Sub(now) < caExpiryWarning:
		c.log.Warn("local CA expires soon; run `authproxy ca rotate`", "cert", certPath, "expires", cert.NotAfter)
	}
	c.log.Debug("loaded local CA", "cert", certPath, "expires", cert.NotAfter)
	return c, nil
}

// syncBundle writes bundle.pem when its content differs from system roots
// followed by ca.pem. Missing system roots only produce a warning.
func (c *CA) syncBundle(opts Options) error {
	rootsFn := SystemRootsPEM
	if opts.rootsPEM != nil {
		rootsFn = opts.rootsPEM
	}
	roots, err := rootsFn()
	if err != nil {
		c.log.Warn("bundle.pem holds only the local CA: system roots unavailable; clients using it will trust no other site",
			"path", c.BundlePath(), "err", err)
		roots = nil
	}
	want := make([]byte, 0, len(roots)+1+len(c.certPEM))
	want = append(want, roots...)
	if len(want) > 0 && want[len(want)-1] != '\n' {
		want = append(want, '\n')
	}
	want = append(want, c.certPEM...)
	have, err := os.ReadFile(c.BundlePath())
	if err == nil && bytes.Equal(have, want) {
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read bundle: %w", err)
	}
	if err := writeFileAtomic(c.dir, bundleFile, want, 0o644); err != nil {
		return err
	}
	c.log.Debug("wrote CA bundle", "path", c.BundlePath(), "bytes", len(want))
	return nil
}

// Certificate returns the CA certificate. The caller must not modify it.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// CertPEM returns the PEM encoding of the CA certificate (the content of
// ca.pem).
func (c *CA) CertPEM() []byte { return slices.Clone(c.certPEM) }

// CertPath returns the path of ca.pem.
func (c *CA) CertPath() string { return filepath.Join(c.dir, certFile) }

// KeyPath returns the path of ca-key.pem.
func (c *CA) KeyPath() string { return filepath.Join(c.dir, keyFile) }

// BundlePath returns the path of bundle.pem: the system roots followed by
// ca.pem, suitable for SSL_CERT_FILE, REQUESTS_CA_BUNDLE and similar.
func (c *CA) BundlePath() string { return filepath.Join(c.dir, bundleFile) }

// randomSerial returns a random positive serial number below 2^128.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// loopbackRanges are permitted alongside DNS constraints so that leaves for
// loopback IP literals still verify while other IPs stay forbidden.
func loopbackRanges() []*net.IPNet {
	return []*net.IPNet{
		{IP: net.IPv4(127, 0, 0, 0).To4(), Mask: net.CIDRMask(8, 32)},
		{IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)},
	}
}

// normalizeDomains lower-cases, trims and de-duplicates name-constraint
// domains, dropping a leading "*." and a trailing dot.
func normalizeDomains(in []string) ([]string, error) {
	var out []string
	for _, d := range in {
		d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
		d = strings.TrimPrefix(d, "*.")
		if !validDNSName(d) || net.ParseIP(d) != nil {
			return nil, fmt.Errorf("permitted dns domain %q is not a valid domain name", d)
		}
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out, nil
}

func parseCertPEM(data []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM CERTIFICATE block found")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		return cert, nil
	}
}

func parseKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM private key block found")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", strings.ToLower(block.Type), err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key type %T", key)
		}
		return signer, nil
	}
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

// ticketKeys holds the session-ticket keys shared by every TLS config the
// CA hands out, so a client can resume a session on a new connection. The
// first key encrypts; all decrypt. A new key is added daily and the oldest
// dropped after a week (Go's maximum ticket lifetime).
type ticketKeys struct {
	mu      sync.Mutex
	keys    [][32]byte
	rotated time.Time
}

const (
	ticketKeyRotation = 24 * time.Hour
	ticketKeysKept    = 8
)

func (t *ticketKeys) current(now time.Time) [][32]byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.keys) == 0 || now.Sub(t.rotated) >= ticketKeyRotation || now.Before(t.rotated) {
		var k [32]byte
		rand.Read(k[:]) // never fails (crypto/rand documents this since Go 1.24)
		t.keys = slices.Insert(t.keys, 0, k)
		if len(t.keys) > ticketKeysKept {
			t.keys = t.keys[:ticketKeysKept]
		}
		t.rotated = now
	}
	return slices.Clone(t.keys)
}
