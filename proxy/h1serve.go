package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// h1Server serves the decrypted HTTP/1.1 connections of broker CONNECTs in
// a loop of its own, one goroutine per connection: read a request, run the
// handler in that goroutine, write the answer, wait for the next. net/http's
// server (which still serves HTTP/2 clients) starts a background read and a
// cancelable context for every request and keeps two 4 KiB buffers per
// connection; on a 2-core machine that was most of what the decrypting path
// cost over a plain tunnel (BENCHMARKS.md). Here a request that is answered
// within watchDelay costs no extra goroutine, and an idle connection holds
// no buffer of ours.
//
// What it keeps of net/http's server: the same request parser
// (http.ReadRequest) and checks (Host, header names and values, protocol
// version, Expect, a 64 KiB header limit with 431), the same framing of
// answers (Content-Length when known or when the whole answer is small,
// chunked otherwise, Connection: close when either side asks), 100 Continue
// on the first read of the body, leftover request bodies drained up to
// 256 KiB, timeouts for headers and idle connections, Hijack for upgrades,
// http.ErrAbortHandler to cut an answer, and a request context that is
// canceled when the client goes away while its request waits.
type h1Server struct {
	log         *slog.Logger
	srv         *http.Server  // for http.ServerContextKey: the HTTP/2 side's
	hdrTimeout  time.Duration // to read a request's headers
	idleTimeout time.Duration // between requests; 0: none
	maxHeader   int64

	readers sync.Pool // *bufio.Reader, held while a request is read
	writers sync.Pool // *bufio.Writer, held while an answer is written

	shutting atomic.Bool

	mu    sync.Mutex
	conns map[*h1Conn]struct{}
	lns   []net.Listener
}

// watchDelay is how long a request may run before its connection is
// watched for the client going away (which cancels the request's
// context). Most answers come sooner and never pay for the watch.
const watchDelay = 50 * time.Millisecond

// maxPostHandlerRead is how much of a request body the handler left unread
// is drained to keep the connection (net/http's limit).
const maxPostHandlerRead = 256 << 10

func newH1Server(log *slog.Logger, srv *http.Server, idleTimeout time.Duration) *h1Server {
	return &h1Server{
		log:         log,
		srv:         srv,
		hdrTimeout:  headerTimeout(idleTimeout),
		idleTimeout: idleTimeout,
		maxHeader:   64 << 10,
		conns:       make(map[*h1Conn]struct{}),
		readers:     sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }},
		writers:     sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }},
	}
}

// headerTimeout bounds the wait for a client's TLS handshake and for a
// request's headers: a client that sends nothing is idle.
func headerTimeout(idle time.Duration) time.Duration {
	if idle > 0 {
		return min(30*time.Second, idle)
	}
	return 30 * time.Second
}

// serve runs the connection c, whose requests h answers, until either side
// closes it. It returns at once; the connection runs in a goroutine.
func (s *h1Server) serve(c net.Conn, h http.Handler) {
	hc := &h1Conn{s: s, c: c, h: h, remote: c.RemoteAddr().String()}
	hc.cr.hc = hc
	hc.cr.cond = sync.NewCond(&hc.cr.mu)
	if tc, ok := c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		hc.tlsState = &st
	}
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.conns[hc] = struct{}{}
	s.mu.Unlock()
	go hc.serve()
}

func (s *h1Server) forget(hc *h1Conn) {
	s.mu.Lock()
	delete(s.conns, hc)
	s.mu.Unlock()
}

// shutdown stops taking connections, closes idle ones and waits for the
// others to finish their request, until ctx ends (then closes them).
func (s *h1Server) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutting.Store(true)
	for _, ln := range s.lns {
		ln.Close()
	}
	s.mu.Unlock()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		for hc := range s.conns {
			if hc.idle.Load() {
				hc.c.Close()
			}
		}
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			s.close()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// close closes its listeners and every connection at once.
func (s *h1Server) close() {
	s.mu.Lock()
	s.shutting.Store(true)
	for _, ln := range s.lns {
		ln.Close()
	}
	for hc := range s.conns {
		hc.c.Close()
	}
	s.mu.Unlock()
}

// serveListener accepts connections on ln, whose requests h answers, until
// ln is closed (by shutdown or close: then http.ErrServerClosed).
func (s *h1Server) serveListener(ln net.Listener, h http.Handler) error {
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.shutting.Load() {
				return http.ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "err", err, "wait", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.serve(rawIO(c), h)
	}
}

// h1Conn is one client connection.
type h1Conn struct {
	s        *h1Server
	c        net.Conn
	h        http.Handler
	remote   string
	tlsState *tls.ConnectionState
	cr       connReader
	br       *bufio.Reader // nil while idle
	idle     atomic.Bool   // waiting for a request (shutdown may close it)
	hijacked bool
}

// serve is the connection's loop.
func (hc *h1Conn) serve() {
	defer func() {
		if v := recover(); v != nil {
			hc.s.log.Error("panic serving a client connection", "client", hc.remote, "err", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
		hc.s.forget(hc)
		if !hc.hijacked {
			hc.release()
			hc.c.Close()
		}
	}()
	// ServerContextKey tells ReverseProxy that a server recovers its
	// http.ErrAbortHandler, which it panics with to cut an answer whose
	// broker side broke off.
	base := context.WithValue(context.Background(), http.ServerContextKey, hc.s.srv)
	base = context.WithValue(base, http.LocalAddrContextKey, hc.c.LocalAddr())
	for first := true; ; first = false {
		wait := hc.s.idleTimeout
		if first {
			wait = hc.s.hdrTimeout
		}
		if err := hc.waitRequest(wait); err != nil {
			return
		}
		if hc.s.shutting.Load() {
			return
		}
		req, err := hc.readRequest()
		if err != nil {
			hc.refuse(err)
			return
		}
		w := hc.newResponse(req)
		if !w.checkExpect() {
			return
		}
		ctx, cancel := context.WithCancel(base)
		hc.cr.startRequest(cancel)
		req = req.WithContext(ctx)
		w.req = req
		gen := hc.cr.gen
		watch := time.AfterFunc(watchDelay, func() { hc.cr.startWatch(gen, w.body) })
		aborted := hc.handle(w, req)
		watch.Stop()
		hc.cr.endRequest()
		cancel()
		if hc.hijacked {
			return
		}
		if aborted {
			return // the handler cut its answer: the client must see a broken one
		}
		if !w.finish() || hc.s.shutting.Load() {
			return
		}
	}
}

// handle runs the handler; it reports whether the handler panicked (with
// http.ErrAbortHandler: the answer is to be cut, which closing does).
func (hc *h1Conn) handle(w *h1Response, req *http.Request) (aborted bool) {
	defer func() {
		if v := recover(); v != nil {
			aborted = true
			if v != http.ErrAbortHandler {
				hc.s.log.Error("panic serving a request", "client", hc.remote, "err", fmt.Sprint(v), "stack", string(debug.Stack()))
			}
			w.releaseWriter()
		}
	}()
	hc.h.ServeHTTP(w, req)
	return false
}

// waitRequest waits up to d (0: forever) for the first byte of a request.
// While it waits the connection holds no read buffer.
func (hc *h1Conn) waitRequest(d time.Duration) error {
	if hc.br != nil && hc.br.Buffered() > 0 {
		return nil // pipelined
	}
	hc.release()
	hc.idle.Store(true)
	if !hc.cr.hasByte {
		var deadline time.Time
		if d > 0 {
			deadline = time.Now().Add(d)
		}
		_ = hc.c.SetReadDeadline(deadline)
		n, err := hc.c.Read(hc.cr.byteBuf[:])
		if n == 0 {
			hc.idle.Store(false)
			if err == nil {
				err = io.ErrNoProgress
			}
			return err
		}
		hc.cr.hasByte = true
	}
	hc.idle.Store(false)
	hc.br = hc.s.readers.Get().(*bufio.Reader)
	hc.br.Reset(&hc.cr)
	return nil
}

// release returns the connection's buffers.
func (hc *h1Conn) release() {
	if hc.br != nil {
		hc.br.Reset(nil)
		hc.s.readers.Put(hc.br)
		hc.br = nil
	}
}

// statusErr is a request refused before the handler, with net/http's text.
type statusErr struct {
	code int
	text string
}

func (e statusErr) Error() string { return e.text }

var errHeaderTooLarge = errors.New("request headers too large")

// readRequest parses one request and applies net/http's server checks.
func (hc *h1Conn) readRequest() (*http.Request, error) {
	_ = hc.c.SetReadDeadline(time.Now().Add(hc.s.hdrTimeout))
	hc.cr.setLimit(hc.s.maxHeader + 4096)
	req, err := http.ReadRequest(hc.br)
	if err != nil {
		if hc.cr.hitLimit() {
			return nil, errHeaderTooLarge
		}
		return nil, err
	}
	hc.cr.setLimit(-1)
	if req.ProtoMajor != 1 {
		return nil, statusErr{http.StatusHTTPVersionNotSupported, "unsupported protocol version"}
	}
	// ReadRequest moved the Host header to req.Host (the first one, where
	// a client sent two: the broker gets our own Host either way).
	if req.ProtoAtLeast(1, 1) && req.Host == "" {
		return nil, statusErr{http.StatusBadRequest, "missing required Host header"}
	}
	if req.Host != "" && !httpguts.ValidHostHeader(req.Host) {
		return nil, statusErr{http.StatusBadRequest, "malformed Host header"}
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, statusErr{http.StatusBadRequest, "invalid header name"}
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, statusErr{http.StatusBadRequest, "invalid header value"}
			}
		}
	}
	req.RemoteAddr = hc.remote
	req.TLS = hc.tlsState
	// The header deadline does not bound the handler: a body is read under
	// the handler's own deadline (bodyDeadline).
	_ = hc.c.SetReadDeadline(time.Time{})
	return req, nil
}

// refuse answers a request that could not be read, as net/http does, and
// says nothing to a client that closed or timed out.
func (hc *h1Conn) refuse(err error) {
	const errorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
	var se statusErr
	var ne net.Error
	switch {
	case errors.Is(err, errHeaderTooLarge):
		const publicErr = "431 Request Header Fields Too Large"
		_, _ = io.WriteString(hc.c, "HTTP/1.1 "+publicErr+errorHeaders+publicErr)
		hc.closeWriteAndWait()
	case strings.HasPrefix(err.Error(), "unsupported transfer encoding"):
		_, _ = io.WriteString(hc.c, "HTTP/1.1 501 Not Implemented"+errorHeaders+"Unsupported transfer encoding")
	case err == io.EOF, errors.As(err, &ne) && ne.Timeout():
	case errors.As(err, &se):
		text := strconv.Itoa(se.code) + " " + http.StatusText(se.code) + ": " + se.text
		_, _ = io.WriteString(hc.c, "HTTP/1.1 "+text+errorHeaders+text)
	default:
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "read" {
			return
		}
		const publicErr = "400 Bad Request"
		_, _ = io.WriteString(hc.c, "HTTP/1.1 "+publicErr+errorHeaders+publicErr)
	}
}

// closeWriteAndWait half-closes and lingers briefly, so that a client still
// sending is not answered with a reset that destroys the answer.
func (hc *h1Conn) closeWriteAndWait() {
	if cw, ok := hc.c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	time.Sleep(500 * time.Millisecond)
}

// connReader reads the connection for the request parser: a byte read while
// idle or by the watch comes first, headers are bounded, and the watch
// (a read in the background while a slow request runs) notices a client
// that went away.
type connReader struct {
	hc      *h1Conn
	hasByte bool
	byteBuf [1]byte
	remain  int64 // < 0: no limit

	mu     sync.Mutex
	cond   *sync.Cond
	inRead bool   // the watch is reading
	active bool   // a request is running
	gen    uint64 // counts requests: a late timer of an earlier one does nothing
	cancel context.CancelFunc
}

func (cr *connReader) setLimit(n int64) { cr.remain = n }

func (cr *connReader) hitLimit() bool { return cr.remain == 0 }

func (cr *connReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if cr.remain == 0 {
		return 0, io.EOF
	}
	if cr.remain > 0 && int64(len(p)) > cr.remain {
		p = p[:cr.remain]
	}
	if cr.hasByte {
		p[0] = cr.byteBuf[0]
		cr.hasByte = false
		cr.count(1)
		return 1, nil
	}
	n, err := cr.hc.c.Read(p)
	cr.count(n)
	return n, err
}

func (cr *connReader) count(n int) {
	if cr.remain > 0 {
		cr.remain -= int64(n)
	}
}

func (cr *connReader) startRequest(cancel context.CancelFunc) {
	cr.mu.Lock()
	cr.active, cr.cancel = true, cancel
	cr.gen++
	cr.mu.Unlock()
}

// startWatch reads the connection in the background while the request
// runs, once its body has been read: a client that closes the connection
// cancels the request (a login it waits for is not waited for, an order it
// gave up on is not sent). It runs watchDelay after the request started,
// and again every watchDelay while the body is still being read.
func (cr *connReader) startWatch(gen uint64, body *h1Body) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if !cr.active || cr.gen != gen || cr.inRead || cr.hasByte {
		return
	}
	if body != nil && !body.done.Load() {
		time.AfterFunc(watchDelay, func() { cr.startWatch(gen, body) })
		return
	}
	cr.inRead = true
	// Under the lock: endRequest's abort (a deadline in the past) comes
	// after this, never before.
	_ = cr.hc.c.SetReadDeadline(time.Time{})
	go cr.watch()
}

func (cr *connReader) watch() {
	n, err := cr.hc.c.Read(cr.byteBuf[:])
	cr.mu.Lock()
	if n == 1 {
		cr.hasByte = true // the next request, pipelined: the client is there
	}
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) && cr.cancel != nil {
		cr.cancel() // the client went away (a deadline is not that)
	}
	cr.inRead = false
	cr.mu.Unlock()
	cr.cond.Broadcast()
}

// endRequest stops the watch, if it runs, keeping a byte it read.
func (cr *connReader) endRequest() {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	cr.active, cr.cancel = false, nil
	if !cr.inRead {
		return
	}
	_ = cr.hc.c.SetReadDeadline(aLongTimeAgo)
	for cr.inRead {
		cr.cond.Wait()
	}
	_ = cr.hc.c.SetReadDeadline(time.Time{})
}

var aLongTimeAgo = time.Unix(1, 0)

// h1Body is a request body: it sends 100 Continue on the first read when
// the client waits for one, and notes when it has been read to its end.
type h1Body struct {
	rc        io.ReadCloser
	w         *h1Response
	expect    bool // the client waits for 100 Continue
	continued bool
	done      atomic.Bool // read to its end
	closed    bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.expect && !b.continued {
		b.continued = true
		if !b.w.started {
			_, _ = io.WriteString(b.w.hc.c, "HTTP/1.1 100 Continue\r\n\r\n")
		}
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.done.Store(true)
	}
	return n, err
}

func (b *h1Body) Close() error {
	b.closed = true
	return nil
}

// drain reads what the handler left of the body, up to
// maxPostHandlerRead; it reports whether the connection can be reused.
func (b *h1Body) drain() bool {
	if b.done.Load() {
		return true
	}
	if b.expect && !b.continued {
		return false // the client may or may not send it: do not guess
	}
	n, err := io.CopyN(io.Discard, b.rc, maxPostHandlerRead+1)
	if err == io.EOF {
		b.done.Store(true)
		return true
	}
	_ = n
	return false
}

// h1Response is the http.ResponseWriter of one request.
type h1Response struct {
	hc     *h1Conn
	req    *http.Request
	body   *h1Body // nil without a body
	header http.Header
	bw     *bufio.Writer // taken when the answer starts

	status     int
	wrote      bool  // the final status is set
	started    bool  // the status line is written
	clen       int64 // declared or computed length; -1: unknown
	written    int64
	chunked    bool
	noBody     bool
	head       bool
	closeAfter bool
	pend       []byte // body held while the length is unknown (≤ bufferBeforeChunking)
	werr       error
}

// bufferBeforeChunking is how much of an answer of unknown length is held
// to send it with a Content-Length instead of chunked (net/http's 2 KiB).
const bufferBeforeChunking = 2048

func (hc *h1Conn) newResponse(req *http.Request) *h1Response {
	w := &h1Response{hc: hc, req: req, header: make(http.Header), clen: -1, head: req.Method == http.MethodHead}
	w.closeAfter = req.Close || !req.ProtoAtLeast(1, 1)
	if req.Body != nil && req.Body != http.NoBody {
		w.body = &h1Body{rc: req.Body, w: w}
		req.Body = w.body
	}
	return w
}

// checkExpect applies Expect: 100-continue is honored on the first read of
// the body; anything else is 417. It reports whether to go on.
func (w *h1Response) checkExpect() bool {
	req := w.req
	exp := req.Header.Get("Expect")
	if exp == "" {
		return true
	}
	if strings.EqualFold(exp, "100-continue") {
		if req.ProtoAtLeast(1, 1) && w.body != nil && req.ContentLength != 0 {
			w.body.expect = true
		}
		return true
	}
	_, _ = io.WriteString(w.hc.c, "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	return false
}

func (w *h1Response) Header() http.Header { return w.header }

func (w *h1Response) WriteHeader(code int) {
	if w.hc.hijacked {
		w.hc.s.log.Debug("WriteHeader on a hijacked connection", "client", w.hc.remote)
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		if w.wrote {
			return
		}
		// An informational answer goes out at once, with the headers set
		// so far (ReverseProxy passes the broker's 103 on this way).
		if code == http.StatusContinue && w.body != nil {
			w.body.continued = true
		}
		bw := w.writer()
		writeStatusLine(bw, code)
		_ = w.header.Write(bw)
		_, _ = bw.WriteString("\r\n")
		w.werr = bw.Flush()
		return
	}
	if w.wrote {
		w.hc.s.log.Debug("superfluous WriteHeader", "client", w.hc.remote, "code", code)
		return
	}
	w.wrote, w.status = true, code
	if v := w.header.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n >= 0 {
			w.clen = n
		} else {
			w.header.Del("Content-Length")
		}
	}
	w.noBody = code == http.StatusNoContent || code == http.StatusNotModified || code < 200
}

func (w *h1Response) Write(p []byte) (int, error) {
	if w.hc.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if w.noBody {
		return 0, http.ErrBodyNotAllowed
	}
	if w.head {
		return len(p), nil
	}
	if w.clen >= 0 && w.written+int64(len(p)) > w.clen {
		return 0, http.ErrContentLength
	}
	if w.werr != nil {
		return 0, w.werr
	}
	if w.clen < 0 && !w.started && len(w.pend)+len(p) <= bufferBeforeChunking {
		w.pend = append(w.pend, p...)
		w.written += int64(len(p))
		return len(p), nil
	}
	if !w.started {
		w.start(false, p)
	}
	w.written += int64(len(p))
	if err := w.writeBody(p); err != nil {
		w.werr = err
		return 0, err
	}
	return len(p), nil
}

// writeBody writes p, as a chunk when chunked.
func (w *h1Response) writeBody(p []byte) error {
	bw := w.bw
	if w.chunked {
		var b [20]byte
		_, _ = bw.Write(strconv.AppendInt(b[:0], int64(len(p)), 16))
		_, _ = bw.WriteString("\r\n")
		_, _ = bw.Write(p)
		_, err := bw.WriteString("\r\n")
		return err
	}
	_, err := bw.Write(p)
	return err
}

// writer takes the connection's write buffer for this answer.
func (w *h1Response) writer() *bufio.Writer {
	if w.bw == nil {
		w.bw = w.hc.s.writers.Get().(*bufio.Writer)
		w.bw.Reset(w.hc.c)
	}
	return w.bw
}

func (w *h1Response) releaseWriter() {
	if w.bw != nil {
		w.bw.Reset(nil)
		w.hc.s.writers.Put(w.bw)
		w.bw = nil
	}
}

// start writes the status line and the headers. done: the handler has
// returned, so an answer of unknown length is all in pend; p: the bytes
// being written, if any.
func (w *h1Response) start(done bool, p []byte) {
	w.started = true
	bw := w.writer()
	h := w.header
	if _, typed := h["Content-Type"]; !typed && !w.noBody {
		// As net/http: a body without a declared type gets a sniffed one.
		first := w.pend
		if len(first) == 0 {
			first = p
		}
		if len(first) > 0 && len(h["Transfer-Encoding"]) == 0 {
			h.Set("Content-Type", http.DetectContentType(first))
		}
	}
	_, trailers := h["Trailer"]
	if w.clen < 0 && !w.noBody && !w.head {
		switch {
		case trailers && w.req.ProtoAtLeast(1, 1):
			w.chunked = true
		case done:
			w.clen = int64(len(w.pend))
			h.Set("Content-Length", strconv.FormatInt(w.clen, 10))
		case w.req.ProtoAtLeast(1, 1):
			w.chunked = true
		default:
			w.closeAfter = true // HTTP/1.0: the end of the answer is the close
		}
	}
	if httpguts.HeaderValuesContainsToken(h["Connection"], "close") {
		w.closeAfter = true
	}
	writeStatusLine(bw, w.status)
	for k := range h {
		if strings.EqualFold(k, "Transfer-Encoding") || strings.EqualFold(k, "Connection") || strings.HasPrefix(k, http.TrailerPrefix) {
			delete(h, k) // framing is ours
		}
	}
	if w.noBody {
		h.Del("Content-Length")
	}
	_ = h.Write(bw)
	if w.chunked {
		_, _ = bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if _, ok := h["Date"]; !ok {
		var b [len(http.TimeFormat) + 8]byte
		_, _ = bw.WriteString("Date: ")
		_, _ = bw.Write(time.Now().UTC().AppendFormat(b[:0], http.TimeFormat))
		_, _ = bw.WriteString("\r\n")
	}
	if w.closeAfter {
		_, _ = bw.WriteString("Connection: close\r\n")
	}
	_, _ = bw.WriteString("\r\n")
	if len(w.pend) > 0 {
		if err := w.writeBody(w.pend); err != nil {
			w.werr = err
		}
		w.pend = nil
	}
}

func writeStatusLine(bw *bufio.Writer, code int) {
	var b [16]byte
	_, _ = bw.WriteString("HTTP/1.1 ")
	_, _ = bw.Write(strconv.AppendInt(b[:0], int64(code), 10))
	_ = bw.WriteByte(' ')
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	_, _ = bw.WriteString(text)
	_, _ = bw.WriteString("\r\n")
}

// Flush sends what was written so far (an answer of unknown length goes
// chunked from here).
func (w *h1Response) Flush() { _ = w.FlushError() }

func (w *h1Response) FlushError() error {
	if w.hc.hijacked {
		return http.ErrHijacked
	}
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if !w.started {
		w.start(false, nil)
	}
	if w.werr != nil {
		return w.werr
	}
	w.werr = w.bw.Flush()
	return w.werr
}

// SetReadDeadline and SetWriteDeadline serve http.ResponseController.
func (w *h1Response) SetReadDeadline(t time.Time) error  { return w.hc.c.SetReadDeadline(t) }
func (w *h1Response) SetWriteDeadline(t time.Time) error { return w.hc.c.SetWriteDeadline(t) }

// Hijack hands the connection over (ReverseProxy, for a 101 answer). Bytes
// already read from the client come first on the returned connection.
func (w *h1Response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hc := w.hc
	if hc.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.started {
		return nil, nil, errors.New("authproxy: Hijack after the answer started")
	}
	hc.cr.endRequest()
	hc.hijacked = true
	hc.s.forget(hc) // the hijacker closes it; a shutdown leaves it alone
	_ = hc.c.SetDeadline(time.Time{})
	hc.cr.setLimit(-1)
	br := hc.br
	if br == nil {
		br = bufio.NewReaderSize(&hc.cr, 4<<10)
	}
	hc.br = nil // the hijacker owns it now
	bw := bufio.NewWriterSize(hc.c, 4<<10)
	w.releaseWriter()
	var c net.Conn = hc.c
	if br.Buffered() > 0 || hc.cr.hasByte {
		c = &prefixConn{Conn: hc.c, r: br}
	}
	return c, bufio.NewReadWriter(br, bw), nil
}

// finish completes the answer after the handler returned, and reports
// whether the connection can take another request.
func (w *h1Response) finish() bool {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if !w.started {
		w.start(true, nil)
	}
	bw := w.bw
	if w.chunked && w.werr == nil {
		_, _ = bw.WriteString("0\r\n")
		w.writeTrailers(bw)
		_, _ = bw.WriteString("\r\n")
	}
	if w.werr == nil {
		w.werr = bw.Flush()
	}
	w.releaseWriter()
	if w.werr != nil || w.closeAfter {
		if w.werr == nil && w.body != nil && !w.body.done.Load() {
			// Unread body bytes would make our close a reset, which
			// can destroy the answer before the client reads it.
			w.hc.closeWriteAndWait()
		}
		return false // Close says the last word (TLS close_notify)
	}
	if !w.head && !w.noBody && w.clen >= 0 && w.written != w.clen {
		return false // short: the client would wait for the rest
	}
	if w.body != nil && !w.body.drain() {
		w.hc.closeWriteAndWait()
		return false
	}
	return true
}

// writeTrailers writes the trailers the handler set: keys announced in
// the Trailer header, and keys with http.TrailerPrefix.
func (w *h1Response) writeTrailers(bw *bufio.Writer) {
	h := w.header
	var t http.Header
	for _, v := range h["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			k = http.CanonicalHeaderKey(strings.TrimSpace(k))
			if vv, ok := h[k]; ok && k != "" {
				if t == nil {
					t = make(http.Header)
				}
				t[k] = vv
			}
		}
	}
	for k, vv := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			if t == nil {
				t = make(http.Header)
			}
			t[strings.TrimPrefix(k, http.TrailerPrefix)] = vv
		}
	}
	if t != nil {
		_ = t.Write(bw)
	}
}

// Server serves the proxy's own listener (CONNECTs, plain proxy requests,
// the dashboard and the other endpoints) on the HTTP/1.1 loop that serves
// decrypted connections: a CONNECT then costs no background read.
type Server struct{ s *h1Server }

// NewServer returns a server whose connections idle at most idleTimeout
// (0: no limit) and send their headers within min(30 s, idleTimeout).
func NewServer(log *slog.Logger, idleTimeout time.Duration) *Server {
	return &Server{s: newH1Server(log, &http.Server{}, idleTimeout)}
}

// Serve accepts connections on ln and answers their requests with h until
// ln is closed or the server shuts down (then http.ErrServerClosed).
func (s *Server) Serve(ln net.Listener, h http.Handler) error { return s.s.serveListener(ln, h) }

// Shutdown stops accepting, closes idle connections and waits for the
// others to finish their request, until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.s.shutdown(ctx) }
