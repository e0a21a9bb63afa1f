// Package fakeca is a throwaway certificate authority for tests and the demo:
// it mints an ECDSA P-256 root, leaf certificates for loopback fake servers,
// and serves an http.Handler over real TLS (HTTP/2 and HTTP/1.1) on
// 127.0.0.1.
//
// Nothing here is fit for production: keys live only in memory and are never
// written to disk (only the root certificate is, for clients to trust).
package fakeca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// CA is an in-memory test root. It is safe for concurrent use: after New
// returns, its fields are only read.
type CA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

// New creates a fresh root valid from an hour ago for 30 days.
func New() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("fakeca: generate root key: %w", err)
	}
	serial, err := randSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "authproxy fake test root", Organization: []string{"authproxy tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("fakeca: self-sign root: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("fakeca: parse root: %w", err)
	}
	return &CA{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}, nil
}

// CertPEM returns the root certificate in PEM form (a copy).
func (c *CA) CertPEM() []byte { return append([]byte(nil), c.certPEM...) }

// Certificate returns the parsed root certificate.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// CertPool returns a new pool holding only the root, for a client's RootCAs.
func (c *CA) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// WriteCertFile writes the root PEM to dir/fake-ca.pem (mode 0644) and
// returns its path, suitable for rules.toml [upstream] ca_file.
func (c *CA) WriteCertFile(dir string) (string, error) {
	p := filepath.Join(dir, "fake-ca.pem")
	if err := os.WriteFile(p, c.certPEM, 0o644); err != nil {
		return "", fmt.Errorf("fakeca: write root certificate: %w", err)
	}
	return p, nil
}

// ServerTLS returns a server configuration presenting a fresh leaf for hosts
// (DNS names; entries that parse as IP addresses become IP SANs) plus the
// IP SAN 127.0.0.1. It offers h2 and http/1.1 via ALPN.
func (c *CA) ServerTLS(hosts ...string) (*tls.Config, error) {
	leaf, err := c.leaf(hosts)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{leaf},
		NextProtos:   []string{"h2", "http/1.1"},
		MinVersion:   tls.VersionTLS12,
	}, nil
}

func (c *CA) leaf(hosts []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("fakeca: generate leaf key: %w", err)
	}
	serial, err := randSerial()
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "authproxy fake server", Organization: []string{"authproxy tests"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	if len(hosts) > 0 {
		tmpl.Subject.CommonName = hosts[0]
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !ip.Equal(net.IPv4(127, 0, 0, 1)) {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
			continue
		}
		if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("fakeca: sign leaf: %w", err)
	}
	leafCert, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("fakeca: parse leaf: %w", err)
	}
	return tls.Certificate{
		Certificate: [][]byte{der, c.cert.Raw},
		PrivateKey:  key,
		Leaf:        leafCert,
	}, nil
}

func randSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("fakeca: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// Server is a TLS server started by [CA.Serve].
type Server struct {
	// Addr is the listening address, "127.0.0.1:PORT".
	Addr string

	srv   *http.Server
	roots *x509.CertPool // the CA that made the server, for Transport
	done  chan error

	closeOnce sync.Once
	closeErr  error
}

// Serve starts a real TLS server for h on 127.0.0.1 with an OS-chosen port,
// presenting a leaf for hosts (see [CA.ServerTLS]). HTTP/2 is negotiated via
// ALPN; HTTP/1.1 remains available. Close it when done.
func (c *CA) Serve(h http.Handler, hosts ...string) (*Server, error) {
	cfg, err := c.ServerTLS(hosts...)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fakeca: listen: %w", err)
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         cfg,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		// Handshake failures are expected in tests that check certificate
		// verification; keep them off stderr.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	s := &Server{Addr: ln.Addr().String(), srv: srv, roots: c.CertPool(), done: make(chan error, 1)}
	go func() { s.done <- srv.ServeTLS(ln, "", "") }()
	return s, nil
}

// Transport returns an HTTP/2-capable transport that trusts only the CA
// that made s and dials s whatever host a URL names, so a client can use
// the brokers' real host names. Close its idle connections when done.
func (s *Server) Transport() *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: s.roots},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, s.Addr)
		},
	}
}

// URL returns "https://127.0.0.1:PORT".
func (s *Server) URL() string { return "https://" + s.Addr }

// Close stops the server at once, closing open connections, and waits for
// its serve loop to end. Later calls return the first call's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Server) close() error {
	err := s.srv.Close()
	select {
	case serr := <-s.done:
		if serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
	case <-time.After(5 * time.Second):
		if err == nil {
			err = errors.New("fakeca: server did not stop within 5s")
		}
	}
	if err != nil {
		return fmt.Errorf("fakeca: close %s: %w", s.Addr, err)
	}
	return nil
}
