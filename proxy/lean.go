package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// leanTransport sends HTTP/1.1 broker requests synchronously, in the
// calling goroutine, over pooled TLS connections: no writeLoop/readLoop
// goroutines and no channel hand-offs per request, which cost more than
// half of the proxy's CPU per keep-alive request in http.Transport
// (BENCHMARKS.md). Upgrades (WebSockets), streamed request bodies and
// anything else it does not handle go to the wrapped http.Transport, which
// also stays the transport of goproxy and of the login clients.
//
// Its pool keeps the guarantees http.Transport gives: connections idle
// longer than idleTimeout are closed, a connection the broker closed while
// it sat idle is detected before reuse (connAlive), and a reused connection
// that fails before any byte of the answer arrived is retried once on a
// fresh one only when the request is replayable or nothing was written.
type leanTransport struct {
	tr          *http.Transport
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	tlsConf     *tls.Config
	timeout     time.Duration // TLS handshake and response headers
	idleTimeout time.Duration
	maxIdle     int // per host

	// Buffers are taken per request and returned when the answer has been
	// read: an idle pooled connection holds none.
	readers sync.Pool // *bufio.Reader
	writers sync.Pool // *bufio.Writer

	mu     sync.Mutex
	idle   map[string][]*upConn // newest last
	sweep  *time.Timer
	closed bool
}

// newLeanTransport wraps tr, or returns nil when tr is configured in a way
// only http.Transport honours (a proxy, custom TLS dialing, HTTP/2).
func newLeanTransport(tr *http.Transport) *leanTransport {
	if tr.Proxy != nil || tr.DialTLSContext != nil || tr.DialContext == nil ||
		tr.ForceAttemptHTTP2 || tr.TLSNextProto != nil || tr.OnProxyConnectResponse != nil {
		return nil
	}
	cfg := &tls.Config{}
	if tr.TLSClientConfig != nil {
		cfg = tr.TLSClientConfig.Clone()
	}
	cfg.NextProtos = nil // HTTP/1.1, like tr without ForceAttemptHTTP2
	timeout := tr.ResponseHeaderTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	idle := tr.IdleConnTimeout
	if idle <= 0 {
		idle = 90 * time.Second
	}
	maxIdle := tr.MaxIdleConnsPerHost
	if maxIdle <= 0 {
		maxIdle = http.DefaultMaxIdleConnsPerHost
	}
	return &leanTransport{tr: tr, dial: tr.DialContext, tlsConf: cfg, timeout: timeout,
		idleTimeout: idle, maxIdle: maxIdle, idle: make(map[string][]*upConn),
		readers: sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }},
		writers: sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }},
	}
}

// unprobedIdle is how long a connection connAlive cannot look at may sit
// idle and still be reused: brokers' servers keep idle connections open for
// 5 s or more (nginx 75 s, Go 3 min).
const unprobedIdle = 2 * time.Second

// upConn is one pooled upstream connection.
type upConn struct {
	t      *leanTransport
	key    string
	conn   *tls.Conn
	br     *bufio.Reader // from t.readers while a request is in flight
	nread  int64         // bytes read from conn
	used   time.Time     // when it was last put back in the pool
	reused bool
}

func (c *upConn) Read(p []byte) (int, error) {
	n, err := c.conn.Read(p)
	c.nread += int64(n)
	return n, err
}

// leanable reports whether req is a request the lean path sends: HTTPS, no
// upgrade, a body of known length that can be sent again, no trailers.
func leanable(req *http.Request) bool {
	if req.URL.Scheme != "https" || req.Method == http.MethodConnect || len(req.Trailer) > 0 ||
		req.Header.Get("Upgrade") != "" || httpguts.HeaderValuesContainsToken(req.Header["Connection"], "upgrade") {
		return false
	}
	if req.Body != nil && req.Body != http.NoBody && (req.ContentLength < 0 || req.GetBody == nil) {
		return false
	}
	return true
}

// RoundTrip sends req, through the lean path when it can.
func (t *leanTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !leanable(req) {
		return t.tr.RoundTrip(req)
	}
	ctx := req.Context()
	key := req.URL.Host
	if req.URL.Port() == "" {
		key = net.JoinHostPort(req.URL.Hostname(), "443")
	}
	for try := 0; ; try++ {
		pc, err := t.get(ctx, key, req.URL.Hostname())
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return nil, cerr
			}
			return nil, err
		}
		resp, wrote, err := pc.roundTrip(req)
		if err == nil {
			return resp, nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		if try > 0 || !pc.reused || pc.nread > 0 || (wrote && !replayable(req)) {
			return nil, err
		}
		// The broker closed a reused connection before answering: once
		// more on a fresh one, as http.Transport does.
		if req.GetBody != nil {
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, err
			}
			req.Body = body
		}
	}
}

// replayable is http.Transport's rule for retrying after the request may
// have reached the server.
func replayable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	}
	_, a := req.Header["Idempotency-Key"]
	_, b := req.Header["X-Idempotency-Key"]
	return a || b
}

// get returns an idle connection to key that is still open, or dials one.
func (t *leanTransport) get(ctx context.Context, key, host string) (*upConn, error) {
	now := time.Now()
	for {
		t.mu.Lock()
		list := t.idle[key]
		if len(list) == 0 {
			t.mu.Unlock()
			break
		}
		pc := list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[key] = list[:len(list)-1]
		t.mu.Unlock()
		if idle := now.Sub(pc.used); idle < t.idleTimeout && connAlive(pc.conn.NetConn(), idle) {
			pc.reused = true
			pc.nread = 0
			return pc, nil
		}
		pc.conn.Close()
	}
	// Dial in a goroutine of its own: the TLS handshake and certificate
	// verification grow a stack to tens of KiB, which the request's
	// goroutine (it lives as long as the client's connection) would keep.
	type dialed struct {
		pc  *upConn
		err error
	}
	ch := make(chan dialed, 1)
	go func() {
		pc, err := t.dialConn(ctx, key, host)
		ch <- dialed{pc, err}
	}()
	d := <-ch
	return d.pc, d.err
}

func (t *leanTransport) dialConn(ctx context.Context, key, host string) (*upConn, error) {
	raw, err := t.dial(ctx, "tcp", key)
	if err != nil {
		return nil, err
	}
	raw = rawIO(raw)
	cfg := t.tlsConf
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	tc := tls.Client(raw, cfg)
	hctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, err
	}
	return &upConn{t: t, key: key, conn: tc}, nil
}

// roundTrip writes req and reads the answer's head; wrote reports whether
// any of req may have reached the broker.
func (pc *upConn) roundTrip(req *http.Request) (resp *http.Response, wrote bool, err error) {
	ctx := req.Context()
	stop := context.AfterFunc(ctx, func() { _ = pc.conn.NetConn().SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*http.Response, bool, error) {
		stop()
		pc.conn.Close()
		pc.putReader()
		return nil, wrote, err
	}
	bw := pc.t.writers.Get().(*bufio.Writer)
	bw.Reset(pc.conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	pc.t.writers.Put(bw)
	wrote = true // bufio may have flushed part of it
	if err != nil {
		return fail(err)
	}
	pc.br = pc.t.readers.Get().(*bufio.Reader)
	pc.br.Reset(pc)
	_ = pc.conn.SetReadDeadline(time.Now().Add(pc.t.timeout))
	for {
		resp, err = http.ReadResponse(pc.br, req)
		if err != nil {
			return fail(err)
		}
		if resp.StatusCode >= 200 || resp.StatusCode < 100 {
			break
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return fail(errors.New("authproxy: unexpected 101 Switching Protocols from the broker"))
		}
		// 1xx informational: the final answer follows.
	}
	_ = pc.conn.SetReadDeadline(time.Time{})
	reuse := !resp.Close && !req.Close
	if resp.Body == http.NoBody || resp.Body == nil {
		pc.release(stop, reuse)
		return resp, true, nil
	}
	resp.Body = &leanBody{rc: resp.Body, pc: pc, stop: stop, reuse: reuse}
	return resp, true, nil
}

// release puts pc back in the pool when the exchange ended cleanly,
// closes it otherwise.
func (pc *upConn) release(stop func() bool, reuse bool) {
	extra := pc.br.Buffered() > 0
	pc.putReader()
	if !stop() || !reuse || extra {
		// The request's context fired (the deadline is spoiled), the
		// broker asked to close, or it sent more than its answer.
		pc.conn.Close()
		return
	}
	pc.t.put(pc)
}

func (pc *upConn) putReader() {
	if pc.br != nil {
		pc.br.Reset(nil)
		pc.t.readers.Put(pc.br)
		pc.br = nil
	}
}

func (t *leanTransport) put(pc *upConn) {
	pc.used = time.Now()
	t.mu.Lock()
	list := t.idle[pc.key]
	if t.closed || len(list) >= t.maxIdle {
		t.mu.Unlock()
		pc.conn.Close()
		return
	}
	t.idle[pc.key] = append(list, pc)
	if t.sweep == nil {
		t.sweep = time.AfterFunc(t.idleTimeout, t.sweepIdle)
	}
	t.mu.Unlock()
}

// sweepIdle closes connections idle longer than idleTimeout (the oldest
// are first in each list) and runs again while any remain.
func (t *leanTransport) sweepIdle() {
	now := time.Now()
	var stale []*upConn
	t.mu.Lock()
	for key, list := range t.idle {
		n := 0
		for n < len(list) && now.Sub(list[n].used) >= t.idleTimeout {
			n++
		}
		stale = append(stale, list[:n]...)
		if n == len(list) {
			delete(t.idle, key)
			continue
		}
		t.idle[key] = append(list[:0:0], list[n:]...)
	}
	t.sweep = nil
	if len(t.idle) > 0 && !t.closed {
		t.sweep = time.AfterFunc(t.idleTimeout/2, t.sweepIdle)
	}
	t.mu.Unlock()
	for _, pc := range stale {
		pc.conn.Close()
	}
}

// CloseIdleConnections closes the pooled connections, the wrapped
// transport's too.
func (t *leanTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = make(map[string][]*upConn)
	if t.sweep != nil {
		t.sweep.Stop()
		t.sweep = nil
	}
	t.mu.Unlock()
	for _, list := range idle {
		for _, pc := range list {
			pc.conn.Close()
		}
	}
	t.tr.CloseIdleConnections()
}

// close closes the pool for good: connections returned later are closed.
func (t *leanTransport) close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.CloseIdleConnections()
}

// leanBody returns its connection to the pool when the answer was read to
// its end, and closes it when the reader gives up before.
type leanBody struct {
	rc    io.ReadCloser
	pc    *upConn
	stop  func() bool
	reuse bool
	done  bool
}

func (b *leanBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.done = true
		b.pc.release(b.stop, b.reuse)
	} else if err != nil {
		b.done = true
		b.stop()
		b.pc.conn.Close()
	}
	return n, err
}

func (b *leanBody) Close() error {
	if !b.done {
		b.done = true
		b.stop()
		b.pc.conn.Close()
		_ = b.rc.Close() // fails fast on the closed connection
		b.pc.putReader()
	}
	return nil
}
