package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// panicSpotter fails the fuzz case on any log record about a panic.
type panicSpotter struct{ seen atomic.Bool }

func (p *panicSpotter) Enabled(context.Context, slog.Level) bool { return true }
func (p *panicSpotter) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		p.seen.Store(true)
	}
	return nil
}
func (p *panicSpotter) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p *panicSpotter) WithGroup(string) slog.Handler      { return p }

// FuzzH1Conn feeds arbitrary client bytes to the HTTP/1.1 loop: it must
// never panic, must answer only with well-formed HTTP/1.1 responses, and
// must let the connection go once the client is done.
func FuzzH1Conn(f *testing.F) {
	for _, seed := range []string{
		"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
		"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc",
		"GET /stream HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX: a\nb\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab",
		"HELLO\r\n\r\n",
		"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
	} {
		f.Add([]byte(seed))
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
			_, _ = w.Write(b)
		case "/stream":
			_, _ = io.WriteString(w, "part one ")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, strings.Repeat("x", 3000))
		case "/panic":
			panic(http.ErrAbortHandler)
		default:
			_, _ = io.WriteString(w, r.Method+" "+r.URL.Path)
		}
	})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 1<<16 {
			return
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		spot := &panicSpotter{}
		s := newH1Server(slog.New(spot), &http.Server{}, 200*time.Millisecond)
		defer s.close()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		sc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		s.serve(sc, handler)
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		go func() {
			_, _ = c.Write(in)
			_ = c.(*net.TCPConn).CloseWrite()
		}()
		out, err := io.ReadAll(c)
		var ne net.Error
		if err != nil && !errors.Is(err, net.ErrClosed) && !(errors.As(err, &ne) && !ne.Timeout()) {
			t.Fatalf("reading the answers: %v", err)
		}
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the connection was still open 5 s after the client finished (input %q)", in)
		}
		if spot.seen.Load() {
			t.Fatalf("the loop logged a panic for input %q", in)
		}
		br := bufio.NewReader(bytes.NewReader(out))
		for {
			if _, err := br.Peek(1); err == io.EOF {
				break
			}
			resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
			if err != nil {
				t.Fatalf("malformed answer %q for input %q: %v", out, in, err)
			}
			if resp.ProtoMajor != 1 || resp.ProtoMinor != 1 {
				t.Fatalf("answer in %s", resp.Proto)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
		}
	})
}
