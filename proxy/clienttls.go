package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// maxTLSFailureKeys bounds how many (client, host, reason) triples are
// remembered for log-once; past it, failures are still counted, and logged
// again only after the set is cleared.
const maxTLSFailureKeys = 1024

// clientTLSFailures counts TLS handshakes that clients broke off on the
// proxy's certificate (typically: they do not trust the local CA) and logs
// each client address, host and reason once.
type clientTLSFailures struct {
	mu     sync.Mutex
	total  int64
	last   string
	lastAt time.Time
	logged map[string]bool
}

// record counts one failure and reports whether it should be logged.
func (f *clientTLSFailures) record(client, host, reason string, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.total++
	f.last, f.lastAt = host+": "+reason, now
	if f.logged == nil || len(f.logged) >= maxTLSFailureKeys {
		f.logged = map[string]bool{}
	}
	key := client + "|" + host + "|" + reason
	if f.logged[key] {
		return false
	}
	f.logged[key] = true
	return true
}

func (f *clientTLSFailures) snapshot() (total int64, last string, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.total, f.last, f.lastAt
}

// handshakeClient does the MITM handshake with the client, bounded by the
// proxy's idle timeout (at most 30 s), and records a failure.
func (p *Proxy) handshakeClient(tc *tls.Conn, client net.Conn, host string) error {
	ctx, cancel := context.WithTimeout(context.Background(), headerTimeout(p.opts.IdleTimeout))
	defer cancel()
	err := tc.HandshakeContext(ctx)
	if err == nil || errors.Is(err, net.ErrClosed) {
		return err
	}
	reason := err.Error()
	hung := errors.Is(err, io.EOF) || strings.Contains(reason, "connection reset")
	if hung {
		if tc.ConnectionState().ServerName == "" {
			return err // hung up before its ClientHello: not a trust problem
		}
		// Node.js and others close the socket without an alert when they
		// reject the certificate.
		reason = "the client closed the connection after seeing the proxy's certificate"
	}
	hint := ""
	if hung || strings.Contains(reason, "unknown certificate authority") || strings.Contains(reason, "bad certificate") ||
		strings.Contains(reason, "certificate unknown") || strings.Contains(reason, "certificate required") {
		hint = "the client does not trust the authproxy CA: run eval \"$(authproxy env)\" in its shell (SSL_CERT_FILE, REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS), " +
			"or `authproxy ca install`; the CA is at http://" + p.opts.Listen + "/ca.pem"
	}
	clientHost := client.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(clientHost); err == nil {
		clientHost = h
	}
	if p.tlsFails.record(clientHost, host, reason, p.opts.Now()) {
		p.log.Warn("client TLS handshake failed (logged once per client address, host and reason; counted in /metrics)",
			"client", clientHost, "host", host, "err", reason, "hint", hint)
	}
	return err
}
