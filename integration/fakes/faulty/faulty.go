// Package faulty wraps any http.Handler (a fake broker) and makes chosen
// requests fail the way real servers fail: they stall, reset the
// connection, hang up, answer an error status, or answer garbage. Faults are
// selected by URL path prefix and count, so a test can say "the next two
// renewals answer 503" and leave every other request to the wrapped fake.
//
// Every request is recorded with the fault it got, so a test can count the
// attempts a client made (its retries) and check that a request that must
// never be retried was sent once.
package faulty

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Kind is what a fault does.
type Kind int

// Fault kinds.
const (
	// KindStall waits Delay (or until the client gives up), then passes
	// the request on to the wrapped handler.
	KindStall Kind = iota + 1
	// KindReset aborts the connection with a TCP reset (HTTP/1.1); on an
	// HTTP/2 connection, where a handler cannot reach the socket, the
	// stream is reset instead.
	KindReset
	// KindHangup closes the connection without an answer (the client reads
	// EOF); on HTTP/2 the stream is reset.
	KindHangup
	// KindStatus answers Code with a short HTML error page, the way a load
	// balancer in front of a broker does.
	KindStatus
	// KindGarbage answers 200 with a body that is neither JSON nor text.
	KindGarbage
	// KindTruncate lets the wrapped handler answer, sends its status,
	// headers (the full Content-Length) and the first half of its body,
	// then closes the connection: an answer cut off mid-body.
	KindTruncate
)

func (k Kind) String() string {
	switch k {
	case KindStall:
		return "stall"
	case KindReset:
		return "reset"
	case KindHangup:
		return "hangup"
	case KindStatus:
		return "status"
	case KindGarbage:
		return "garbage"
	case KindTruncate:
		return "truncate"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Fault is one way to fail a request. Build it with Stall, Reset, Hangup,
// Status or Garbage.
type Fault struct {
	Kind   Kind
	Delay  time.Duration // KindStall
	Code   int           // KindStatus
	Header http.Header   // extra response headers (KindStatus, KindGarbage)
}

// Stall holds the request for d (or until the client goes away), then
// serves it normally.
func Stall(d time.Duration) Fault { return Fault{Kind: KindStall, Delay: d} }

// Reset aborts the connection with a TCP RST before any answer.
func Reset() Fault { return Fault{Kind: KindReset} }

// Hangup closes the connection before any answer.
func Hangup() Fault { return Fault{Kind: KindHangup} }

// Status answers code with an HTML error page.
func Status(code int) Fault { return Fault{Kind: KindStatus, Code: code} }

// Garbage answers 200 with bytes no parser accepts.
func Garbage() Fault { return Fault{Kind: KindGarbage} }

// Truncate answers with the wrapped handler's answer cut off mid-body.
func Truncate() Fault { return Fault{Kind: KindTruncate} }

// With returns f with an extra response header (for example Retry-After).
func (f Fault) With(key, value string) Fault {
	h := f.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Add(key, value)
	f.Header = h
	return f
}

// String names the fault for logs: "stall(2s)", "reset", "503", "garbage".
func (f Fault) String() string {
	switch f.Kind {
	case KindStall:
		return "stall(" + f.Delay.String() + ")"
	case KindStatus:
		return strconv.Itoa(f.Code)
	}
	return f.Kind.String()
}

// GarbageBody is what KindGarbage answers: a truncated HTML page with
// binary bytes and a stray brace, valid neither as JSON nor as UTF-8.
var GarbageBody = []byte("<html><body>\x00\xff\xfe{\"unterminated\": <b>upstream exploded</")

// Event is one request the wrapper saw.
type Event struct {
	Time   time.Time
	Method string
	Host   string
	Path   string
	Fault  string // "" when the request was passed on untouched
}

type rule struct {
	prefix string // lower case
	left   int    // requests still to fail; negative: until Clear
	fault  Fault
}

// Handler is the fault-injecting wrapper. It is safe for concurrent use.
type Handler struct {
	next http.Handler

	mu     sync.Mutex
	rules  []*rule
	events []Event
	closed chan struct{}
	once   sync.Once
}

// maxEvents bounds the request log.
const maxEvents = 100000

// Wrap returns a Handler passing every request to next until faults are
// added.
func Wrap(next http.Handler) *Handler {
	return &Handler{next: next, closed: make(chan struct{})}
}

// Fail makes the next n requests whose path starts with prefix (compared
// case-insensitively) fail with f; n < 0 fails them until Clear. Rules are
// matched in the order they were added; an exhausted rule is dropped.
func (h *Handler) Fail(prefix string, n int, f Fault) {
	if n == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rules = append(h.rules, &rule{prefix: strings.ToLower(prefix), left: n, fault: f})
}

// Clear removes every pending fault; the wrapped handler answers from now on.
func (h *Handler) Clear() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rules = nil
}

// Close releases every stalled request at once (they are then passed on)
// and makes later stalls return immediately. Call it before closing the
// server, so that its shutdown is not held up by a stall.
func (h *Handler) Close() { h.once.Do(func() { close(h.closed) }) }

// Pending reports how many requests the current rules will still fail
// (-1 when a rule has no count).
func (h *Handler) Pending() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.rules {
		if r.left < 0 {
			return -1
		}
		n += r.left
	}
	return n
}

// Events returns every request seen whose path starts with prefix ("" for
// all), in arrival order.
func (h *Handler) Events(prefix string) []Event {
	prefix = strings.ToLower(prefix)
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Event
	for _, e := range h.events {
		if strings.HasPrefix(strings.ToLower(e.Path), prefix) {
			out = append(out, e)
		}
	}
	return out
}

// Hits counts the requests seen whose path starts with prefix, faulted or not.
func (h *Handler) Hits(prefix string) int { return len(h.Events(prefix)) }

// Faulted counts the requests under prefix that got a fault.
func (h *Handler) Faulted(prefix string) int {
	n := 0
	for _, e := range h.Events(prefix) {
		if e.Fault != "" {
			n++
		}
	}
	return n
}

// take picks the fault for a request and records it.
func (h *Handler) take(r *http.Request) (Fault, bool) {
	p := strings.ToLower(r.URL.Path)
	h.mu.Lock()
	defer h.mu.Unlock()
	var (
		f  Fault
		ok bool
	)
	for i, ru := range h.rules {
		if !strings.HasPrefix(p, ru.prefix) {
			continue
		}
		f, ok = ru.fault, true
		if ru.left > 0 {
			ru.left--
			if ru.left == 0 {
				h.rules = append(h.rules[:i:i], h.rules[i+1:]...)
			}
		}
		break
	}
	ev := Event{Time: time.Now(), Method: r.Method, Host: r.Host, Path: r.URL.Path}
	if ok {
		ev.Fault = f.String()
	}
	if len(h.events) < maxEvents {
		h.events = append(h.events, ev)
	}
	return f, ok
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, ok := h.take(r)
	if !ok {
		h.next.ServeHTTP(w, r)
		return
	}
	switch f.Kind {
	case KindStall:
		// net/http notices a client that went away only once the request
		// body has been read to its end: read it first, so a client that
		// gives up during the stall never reaches the wrapped fake.
		body, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-h.closed:
		case <-r.Context().Done():
			return // the client gave up; nothing reaches the fake
		}
		h.next.ServeHTTP(w, r)
	case KindReset:
		abort(w, true)
	case KindHangup:
		abort(w, false)
	case KindStatus:
		copyHeader(w.Header(), f.Header)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(f.Code)
		fmt.Fprintf(w, "<html><head><title>%d %s</title></head><body><center><h1>%d %s</h1></center><hr><center>nginx</center></body></html>\n",
			f.Code, http.StatusText(f.Code), f.Code, http.StatusText(f.Code))
	case KindGarbage:
		copyHeader(w.Header(), f.Header)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(GarbageBody)
	case KindTruncate:
		truncate(w, r, h.next)
	default:
		h.next.ServeHTTP(w, r)
	}
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		for _, v := range vs {
			dst.Add(k, v)
		}
	}
}

// abort drops the connection before any answer: with rst, by a TCP reset.
// On HTTP/2 (no Hijacker) the stream is reset instead.
func abort(w http.ResponseWriter, rst bool) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if rst {
		if tc := tcpConn(conn); tc != nil {
			_ = tc.SetLinger(0)
			_ = tc.Close()
			return
		}
	}
	_ = conn.Close()
}

// tcpConn finds the TCP connection under c (through TLS).
func tcpConn(c net.Conn) *net.TCPConn {
	for range 4 {
		switch v := c.(type) {
		case *net.TCPConn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// truncate sends next's answer with its full Content-Length but only half
// of its body (at least one byte short), then drops the connection.
func truncate(w http.ResponseWriter, r *http.Request, next http.Handler) {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	half := len(body) / 2
	hj, ok := w.(http.Hijacker)
	if !ok {
		copyHeader(w.Header(), rec.Header())
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body[:half])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler) // resets the HTTP/2 stream
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\n", rec.Code, http.StatusText(rec.Code))
	hdr := rec.Header().Clone()
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	hdr.Del("Transfer-Encoding")
	_ = hdr.Write(buf)
	_, _ = buf.WriteString("\r\n")
	_, _ = buf.Write(body[:half])
	_ = buf.Flush()
}
