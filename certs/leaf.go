package certs

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotCovered is returned (wrapped) by [CA.Leaf] for a host the CA's name
// constraints do not permit: clients would reject such a certificate.
var ErrNotCovered = errors.New("host is outside the local CA's name constraints")

const (
	leafValidity = 30 * 24 * time.Hour
	// leafRenewBefore is how close to its expiry a cached leaf is replaced.
	leafRenewBefore = 24 * time.Hour
	// defaultLeafCacheSize bounds the number of cached leaves.
	defaultLeafCacheSize = 1024
)

// Covers reports whether the CA's name constraints permit a certificate for
// host (a DNS name or an IP literal, optionally in brackets and with a
// trailing dot). It is true for any valid host when the CA is unconstrained,
// and false for a string that is not a host name at all. It follows the
// rules of Go's certificate verifier.
func (c *CA) Covers(host string) bool {
	name, ip, err := normalizeHost(host)
	if err != nil {
		return false
	}
	return c.covers(name, ip)
}

func (c *CA) covers(name string, ip net.IP) bool {
	if ip != nil {
		for _, r := range c.cert.ExcludedIPRanges {
			if r.Contains(ip) {
				return false
			}
		}
		if len(c.cert.PermittedIPRanges) == 0 {
			return true
		}
		for _, r := range c.cert.PermittedIPRanges {
			if r.Contains(ip) {
				return true
			}
		}
		return false
	}
	for _, d := range c.cert.ExcludedDNSDomains {
		if matchDomain(name, d) {
			return false
		}
	}
	if len(c.cert.PermittedDNSDomains) == 0 {
		return true
	}
	for _, d := range c.cert.PermittedDNSDomains {
		if matchDomain(name, d) {
			return true
		}
	}
	return false
}

// matchDomain reports whether name falls under the dNSName constraint
// (RFC 5280 4.2.1.10): the constraint itself or any name below it; a
// constraint with a leading dot matches only names strictly below it; an
// empty constraint matches everything. name is already lower-case.
func matchDomain(name, constraint string) bool {
	constraint = strings.ToLower(constraint)
	if constraint == "" {
		return true
	}
	if strings.HasPrefix(constraint, ".") {
		return strings.HasSuffix(name, constraint) && len(name) > len(constraint)
	}
	return name == constraint || strings.HasSuffix(name, "."+constraint)
}

// normalizeHost turns a host as found in SNI, a CONNECT target or a URL into
// a lower-case DNS name without trailing dot, or an IP. A ":port" suffix and
// IPv6 brackets are removed.
func normalizeHost(host string) (string, net.IP, error) {
	h := strings.TrimSpace(host)
	if strings.Contains(h, ":") && net.ParseIP(h) == nil {
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		} else {
			h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		}
	}
	if ip := net.ParseIP(h); ip != nil {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		return ip.String(), ip, nil
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if !validDNSName(h) {
		return "", nil, fmt.Errorf("invalid host name %q", host)
	}
	return h, nil, nil
}

// validDNSName accepts names made of letters, digits, '-' and '_' in dot
// separated labels of 1 to 63 characters, at most 253 characters in all.
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			b := label[i]
			if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_') {
				return false
			}
		}
	}
	return true
}

// Leaf returns a certificate for host (a DNS name or an IP literal) signed by
// the CA, from the cache when one is there and more than a day from expiry.
// Concurrent calls for the same host mint at most one certificate. The
// result holds the chain [leaf, CA] and the parsed leaf in Leaf; it is
// shared and must not be modified. A host outside the CA's name constraints
// yields an error wrapping [ErrNotCovered].
func (c *CA) Leaf(host string) (*tls.Certificate, error) {
	name, ip, err := normalizeHost(host)
	if err != nil {
		return nil, fmt.Errorf("leaf certificate: %w", err)
	}
	if !c.covers(name, ip) {
		return nil, fmt.Errorf("leaf certificate for %q: %w (CA %q permits %s)",
			name, ErrNotCovered, c.cert.Subject.CommonName, c.permittedSummary())
	}
	return c.leaves.get(name, c.now, c.cert.NotAfter, func() (*tls.Certificate, error) {
		return c.mint(name, ip)
	})
}

func (c *CA) permittedSummary() string {
	var parts []string
	parts = append(parts, c.cert.PermittedDNSDomains...)
	for _, r := range c.cert.PermittedIPRanges {
		parts = append(parts, r.String())
	}
	return strings.Join(parts, ", ")
}

// Fetch implements goproxy's CertStorage. gen is ignored: goproxy's own
// generator would bypass the name-constraint check and the shared leaf key.
func (c *CA) Fetch(hostname string, gen func() (*tls.Certificate, error)) (*tls.Certificate, error) {
	return c.Leaf(hostname)
}

// TLSConfig returns the server configuration for a decrypted client
// connection: the certificate is chosen by SNI, or for defaultHost when the
// client sends none (as clients do when they connect to an IP literal). It
// offers h2 and http/1.1, requires TLS 1.2 or later, and shares
// session-ticket keys with every other config from this CA so clients can
// resume sessions on new connections.
func (c *CA) TLSConfig(defaultHost string) *tls.Config {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			host := hello.ServerName
			if host == "" {
				host = defaultHost
			}
			return c.Leaf(host)
		},
	}
	cfg.SetSessionTicketKeys(c.tickets.current(c.now()))
	return cfg
}

// mint signs a new leaf for name (or ip, when not nil) with the CA key.
func (c *CA) mint(name string, ip net.IP) (*tls.Certificate, error) {
	c.leaves.minted.Add(1)
	if hook := c.leaves.mintHook; hook != nil {
		hook(name)
	}
	now := c.now()
	if !now.Before(c.cert.NotAfter) {
		return nil, fmt.Errorf("leaf certificate for %q: local CA expired at %s; run `authproxy ca rotate`",
			name, c.cert.NotAfter.Format(time.RFC3339))
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(leafValidity)
	if notAfter.After(c.cert.NotAfter) {
		notAfter = c.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"authproxy"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		// CN only for DNS names: OpenSSL checks a name-like CN against the
		// CA's DNS constraints, and an IP in the CN would fail that check.
		tmpl.Subject.CommonName = name
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, c.leafKey.Public(), c.key)
	if err != nil {
		return nil, fmt.Errorf("sign leaf certificate for %q: %w", name, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse leaf certificate for %q: %w", name, err)
	}
	return &tls.Certificate{
		Certificate: [][]byte{der, c.cert.Raw},
		PrivateKey:  c.leafKey,
		Leaf:        leaf,
	}, nil
}

// leafCache is a bounded, single-flight cache of leaf certificates keyed by
// normalised host.
type leafCache struct {
	mu      sync.Mutex
	entries map[string]*leafEntry
	max     int

	// minted counts certificates minted (for tests and benchmarks).
	minted atomic.Int64
	// mintHook, when set (tests only, before first use), runs at the start
	// of every mint.
	mintHook func(host string)
}

type leafEntry struct {
	done chan struct{} // closed when cert/err are set
	cert *tls.Certificate
	err  error
}

func (lc *leafCache) init(size int) {
	lc.entries = make(map[string]*leafEntry)
	lc.max = size
}

// get returns the cached certificate for key, or runs gen once for all
// concurrent callers. Failures are not cached.
func (lc *leafCache) get(key string, now func() time.Time, caNotAfter time.Time, gen func() (*tls.Certificate, error)) (*tls.Certificate, error) {
	lc.mu.Lock()
	if e, ok := lc.entries[key]; ok {
		select {
		case <-e.done:
			if e.err == nil && fresh(e.cert.Leaf, now(), caNotAfter) {
				lc.mu.Unlock()
				return e.cert, nil
			}
			// Stale or failed: fall through and replace it.
		default:
			lc.mu.Unlock()
			<-e.done
			return e.cert, e.err
		}
	} else if len(lc.entries) >= lc.max {
		lc.evictLocked()
	}
	e := &leafEntry{done: make(chan struct{})}
	lc.entries[key] = e
	lc.mu.Unlock()

	e.cert, e.err = gen()
	close(e.done)
	if e.err != nil {
		lc.mu.Lock()
		if lc.entries[key] == e {
			delete(lc.entries, key)
		}
		lc.mu.Unlock()
	}
	return e.cert, e.err
}

// evictLocked removes one entry, preferring a finished one. Map iteration
// order is random, so this is random eviction.
func (lc *leafCache) evictLocked() {
	var victim string
	found := false
	for k, e := range lc.entries {
		select {
		case <-e.done:
			delete(lc.entries, k)
			return
		default:
			if !found {
				victim, found = k, true
			}
		}
	}
	if found {
		// Every entry is in flight; its waiters hold the entry itself, so
		// dropping it from the map only loses the caching.
		delete(lc.entries, victim)
	}
}

// fresh reports whether a cached leaf can still be served: it is more than
// leafRenewBefore from expiry, or renewing would not help because it already
// ends when the CA does (and has not expired).
func fresh(leaf *x509.Certificate, now, caNotAfter time.Time) bool {
	if now.Before(leaf.NotBefore) || !now.Before(leaf.NotAfter) {
		return false
	}
	return now.Add(leafRenewBefore).Before(leaf.NotAfter) || !leaf.NotAfter.Before(caNotAfter)
}

func (lc *leafCache) len() int {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return len(lc.entries)
}
