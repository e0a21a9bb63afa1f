package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"
)

// newGoproxy wires goproxy for CONNECT handling and plain-HTTP passthrough.
// Its transport and dialer are ours: verifying, resolve-aware, and never
// reading HTTPS_PROXY from the environment.
func (p *Proxy) newGoproxy() *goproxy.ProxyHttpServer {
	gp := goproxy.NewProxyHttpServer()
	gp.Logger = stdLogger(p.log)
	gp.Verbose = false
	gp.CertStore = p.opts.CA
	gp.KeepAcceptEncoding = true
	switch tr := p.upstream.(type) {
	case *http.Transport:
		gp.Tr = tr
	case *leanTransport:
		gp.Tr = tr.tr
	default:
		gp.Tr = &http.Transport{Proxy: nil, DialContext: p.opts.Upstream.Dialer()}
	}
	dial := p.opts.Upstream.Dialer()
	if p.refusePrivate() {
		// Remote [proxy_auth] users must not reach the proxy machine's
		// loopback or private networks: checked again on the resolved
		// address at connect time (DNS rebinding).
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: privateDialControl}
		dial = d.DialContext
	}
	gp.ConnectDialWithReq = func(req *http.Request, network, addr string) (net.Conn, error) {
		if p.tunnels.Load() >= int64(p.opts.MaxTunnels) {
			return nil, fmt.Errorf("authproxy: too many open tunnels (limit %d, [limits] max_tunnels)", p.opts.MaxTunnels)
		}
		ctx, cancel := context.WithTimeout(req.Context(), 30*time.Second)
		defer cancel()
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		p.tunnels.Add(1)
		return newIdleConn(c, p.opts.IdleTimeout, func() { p.tunnels.Add(-1) }), nil
	}
	return gp
}

// brokerConn serves the decrypted requests of one broker CONNECT with what
// the CONNECT settled: the host, its port, the proxy user, the accounts
// matched for the host (once, at the CONNECT) and a refusal answered to
// every request in the tunnel.
type brokerConn struct {
	p     *Proxy
	host  string // normalised host name
	port  string
	user  string // proxy user, "" without [proxy_auth]
	accts []*Account
	deny  *ClientError
}

func (c *brokerConn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.p.bodyDeadline(w, r)
	if c.deny != nil {
		c.deny.write(w)
		return
	}
	c.p.serveBroker(w, r, c.host, c.port, c.user, c.accts)
}

// handleConnect applies the CONNECT policy: broker hosts are MITM'd, others
// tunnelled (or refused without passthrough), malformed targets get 400.
func (p *Proxy) handleConnect(w http.ResponseWriter, r *http.Request, user string, deny *ClientError) {
	host, port, err := net.SplitHostPort(r.Host)
	// net/http has already parsed the target into r.Host, dropping a path
	// or user info ("host:443/x", "a@host:443"): check what the client sent.
	if err != nil || host == "" || port == "" || strings.ContainsAny(r.Host, "/ @?#") || strings.ContainsAny(r.RequestURI, "/ @?#") {
		http.Error(w, "authproxy: malformed CONNECT target (want host:port)", http.StatusBadRequest)
		return
	}
	if n, err := parsePort(port); err != nil || n == 0 {
		http.Error(w, "authproxy: malformed CONNECT port", http.StatusBadRequest)
		return
	}
	h := normalizeHost(host)
	var conn *brokerConn
	if accts := p.match(h); len(accts) > 0 && port == "443" {
		// A broker CONNECT is accepted; refusals are answered inside.
		conn = &brokerConn{p: p, host: h, port: port, user: user, accts: accts, deny: deny}
	} else {
		if deny != nil {
			deny.write(w)
			return
		}
		if !p.opts.Passthrough {
			(&ClientError{Status: http.StatusForbidden, Code: CodeForbidden,
				Message: "passthrough is off: " + h + " is not a broker host"}).write(w)
			return
		}
		if ce := p.checkTarget(r.Context(), h); ce != nil {
			ce.write(w)
			return
		}
	}
	// Decrypted (MITM) connections count against max_tunnels too.
	if p.tunnels.Load() >= int64(p.opts.MaxTunnels) {
		(&ClientError{Status: http.StatusServiceUnavailable, Code: "too_many_tunnels",
			Message: fmt.Sprintf("too many open tunnels (limit %d)", p.opts.MaxTunnels),
			Hint:    "raise [limits] max_tunnels in rules.toml"}).write(w)
		return
	}
	p.serveConnect(w, r, conn)
}

// serveConnect MITMs a broker CONNECT (conn non-nil), HTTP/1.1 on h1Server
// and HTTP/2 on net/http's server, or hands a tunnel to goproxy (its default action is a byte-for-byte
// tunnel).
func (p *Proxy) serveConnect(w http.ResponseWriter, r *http.Request, conn *brokerConn) {
	if conn != nil {
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "authproxy: CONNECT over HTTP/2 is not supported", http.StatusHTTPVersionNotSupported)
			return
		}
		raw, rw, err := hj.Hijack()
		if err != nil {
			return
		}
		if _, err := raw.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
			raw.Close()
			return
		}
		p.tunnels.Add(1)
		var c net.Conn = &countedConn{Conn: raw, onClose: func() { p.tunnels.Add(-1) }}
		if rw != nil && rw.Reader.Buffered() > 0 {
			c = &prefixConn{Conn: c, r: rw.Reader}
		}
		tc := tls.Server(c, p.opts.CA.TLSConfig(conn.host))
		if err := p.handshakeClient(tc, c, conn.host); err != nil {
			tc.Close()
			return
		}
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			p.mitm.serve(tc, conn)
		} else {
			p.h1.serve(tc, conn)
		}
		return
	}
	p.gp.ServeHTTP(w, r)
}

func parsePort(s string) (int, error) {
	n := 0
	if len(s) == 0 || len(s) > 5 {
		return 0, errors.New("bad port")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, errors.New("bad port")
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, errors.New("bad port")
	}
	return n, nil
}

// countedConn runs onClose exactly once, on the first Close.
type countedConn struct {
	net.Conn
	onClose func()
	closed  atomic.Bool
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.onClose()
	}
	return c.Conn.Close()
}

// prefixConn replays bytes the CONNECT parser already buffered.
type prefixConn struct {
	net.Conn
	r interface{ Read([]byte) (int, error) }
}

func (c *prefixConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// mitmServer serves decrypted HTTP/2 client connections with net/http: each
// connection with its own handler, given when it is handed over.
type mitmServer struct {
	srv      *http.Server
	ln       *chanListener
	handlers sync.Map // net.Conn -> http.Handler
}

type connHandlerKey struct{}

func newMITMServer(log *slog.Logger, idleTimeout time.Duration) *mitmServer {
	m := &mitmServer{ln: newChanListener()}
	m.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Context().Value(connHandlerKey{}).(http.Handler).ServeHTTP(w, r)
		}),
		// A connection that never sends a request (nor finishes its TLS
		// handshake, which net/http bounds by the same value) is idle too.
		ReadHeaderTimeout: headerTimeout(idleTimeout),
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          stdLogger(log),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			h, _ := m.handlers.Load(c)
			return context.WithValue(ctx, connHandlerKey{}, h)
		},
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateClosed || s == http.StateHijacked {
				m.handlers.Delete(c)
			}
		},
	}
	go func() { _ = m.srv.Serve(m.ln) }()
	return m
}

// serve hands the decrypted connection c to the server, whose requests h
// answers.
func (m *mitmServer) serve(c net.Conn, h http.Handler) {
	m.handlers.Store(c, h)
	if !m.ln.push(c) {
		m.handlers.Delete(c)
		c.Close()
	}
}

func (m *mitmServer) close() {
	_ = m.srv.Close()
	m.ln.Close()
}

// chanListener is a net.Listener fed by MITM handshakes.
type chanListener struct {
	ch     chan net.Conn
	done   chan struct{}
	closer sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closer.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// idleConn closes a tunnel after idle time with no traffic either way, and
// runs onClose exactly once.
type idleConn struct {
	net.Conn
	idle    time.Duration
	onClose func()
	closed  atomic.Bool
	last    atomic.Int64
}

func newIdleConn(c net.Conn, idle time.Duration, onClose func()) *idleConn {
	ic := &idleConn{Conn: c, idle: idle, onClose: onClose}
	ic.touch()
	return ic
}

func (c *idleConn) touch() {
	now := time.Now()
	// Setting deadlines costs a timer update: do it at most once a second.
	if prev := c.last.Load(); now.UnixNano()-prev < int64(time.Second) {
		return
	}
	c.last.Store(now.UnixNano())
	_ = c.Conn.SetDeadline(now.Add(c.idle))
}

func (c *idleConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *idleConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *idleConn) Close() error {
	if c.closed.CompareAndSwap(false, true) && c.onClose != nil {
		c.onClose()
	}
	return c.Conn.Close()
}
