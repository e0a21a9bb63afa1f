package proxy

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// h1Pair serves h on an h1Server over a loopback TCP connection and
// returns the client's end.
func h1Pair(t *testing.T, idle time.Duration, h http.Handler) (*h1Server, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := newH1Server(slog.New(slog.DiscardHandler), &http.Server{}, idle)
	t.Cleanup(s.close)
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		c, err := ln.Accept()
		if err == nil {
			s.serve(c, h)
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	<-accepted // before the listener closes (which would reset c)
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return s, c
}

func readResp(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestH1FramingAndKeepAlive(t *testing.T) {
	_, c := h1Pair(t, time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			_, _ = io.WriteString(w, "hello")
		case "/big":
			_, _ = io.WriteString(w, strings.Repeat("b", 10000))
		case "/declared":
			w.Header().Set("Content-Length", "3")
			_, _ = io.WriteString(w, "abc")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	br := bufio.NewReader(c)
	// Pipelined: both requests at once, answered in order.
	if _, err := io.WriteString(c, "GET /small HTTP/1.1\r\nHost: x\r\n\r\nGET /big HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, body := readResp(t, br, "GET")
	if body != "hello" || resp.ContentLength != 5 || resp.Header.Get("Date") == "" {
		t.Fatalf("small: %q length %d date %q", body, resp.ContentLength, resp.Header.Get("Date"))
	}
	resp, body = readResp(t, br, "GET")
	if len(body) != 10000 || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("big: %d bytes, transfer encoding %q", len(body), resp.TransferEncoding)
	}
	_, _ = io.WriteString(c, "GET /declared HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body = readResp(t, br, "GET"); body != "abc" || resp.ContentLength != 3 {
		t.Fatalf("declared: %q %d", body, resp.ContentLength)
	}
	_, _ = io.WriteString(c, "HEAD /small HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body = readResp(t, br, "HEAD"); body != "" || resp.StatusCode != 200 {
		t.Fatalf("head: %d %q", resp.StatusCode, body)
	}
	_, _ = io.WriteString(c, "GET /empty HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, _ = readResp(t, br, "GET")
	if resp.StatusCode != 204 || !resp.Close || resp.Header.Get("Content-Length") != "" {
		t.Fatalf("close: %d close %v length %q", resp.StatusCode, resp.Close, resp.Header.Get("Content-Length"))
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after Connection: close the connection stays open (%v)", err)
	}
}

func TestH1HTTP10ClosesAfterTheAnswer(t *testing.T) {
	_, c := h1Pair(t, time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, "old")
	}))
	_, _ = io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	all, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(all), "\r\n\r\nold") || !strings.Contains(string(all), "Connection: close") || strings.Contains(string(all), "chunked") {
		t.Fatalf("HTTP/1.0 answer: %q", all)
	}
}

func TestH1ExpectContinue(t *testing.T) {
	_, c := h1Pair(t, time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	}))
	br := bufio.NewReader(c)
	_, _ = io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("before the body: %q %v", line, err)
	}
	if l, _ := br.ReadString('\n'); l != "\r\n" {
		t.Fatalf("100 Continue not ended: %q", l)
	}
	_, _ = io.WriteString(c, "ping")
	if _, body := readResp(t, br, "POST"); body != "ping" {
		t.Fatalf("echo %q", body)
	}
	_, _ = io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: something-else\r\n\r\n")
	if resp, _ := readResp(t, br, "POST"); resp.StatusCode != http.StatusExpectationFailed {
		t.Fatalf("unknown expectation: %d, want 417", resp.StatusCode)
	}
}

func TestH1UnreadBodyIsDrained(t *testing.T) {
	_, c := h1Pair(t, time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.URL.Path)
	}))
	br := bufio.NewReader(c)
	_, _ = io.WriteString(c, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, body := readResp(t, br, "POST"); body != "/a" {
		t.Fatalf("first: %q", body)
	}
	if _, body := readResp(t, br, "GET"); body != "/b" {
		t.Fatalf("after an unread body: %q", body)
	}
}

func TestH1RefusesMalformedRequests(t *testing.T) {
	for req, want := range map[string]int{
		"GET / HTTP/1.1\r\n\r\n":                                                      400, // no Host
		"GET / HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n":                            400,
		"GET / HTTP/2.0\r\nHost: x\r\n\r\n":                                           505,
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n":               501,
		"GET / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 70<<10) + "\r\n\r\n": 431,
	} {
		_, c := h1Pair(t, time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t.Errorf("handler ran for %q", req[:20])
		}))
		go func() { _, _ = io.WriteString(c, req) }()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%.30q: %v", req, err)
		}
		if resp.StatusCode != want || !resp.Close {
			t.Errorf("%.30q: %d close %v, want %d and close", req, resp.StatusCode, resp.Close, want)
		}
	}
}

// TestH1ClientGoneCancelsASlowRequest: a client that closes its connection
// while its request waits (for a login, say) cancels the request's context.
func TestH1ClientGoneCancelsASlowRequest(t *testing.T) {
	canceled := make(chan error, 1)
	_, c := h1Pair(t, time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		select {
		case <-r.Context().Done():
			canceled <- r.Context().Err()
		case <-time.After(5 * time.Second):
			canceled <- nil
		}
	}))
	_, _ = io.WriteString(c, "POST /order HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
	time.Sleep(2 * watchDelay)
	c.Close()
	if err := <-canceled; err != context.Canceled {
		t.Fatalf("request context after the client left: %v, want canceled", err)
	}
}

// TestH1SlowRequestKeepsThePipelinedNext: the watch of a slow request that
// reads the first byte of the next request keeps it.
func TestH1SlowRequestKeepsThePipelinedNext(t *testing.T) {
	_, c := h1Pair(t, time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(4 * watchDelay)
			if r.Context().Err() != nil {
				t.Error("the pipelined request canceled the slow one")
			}
		}
		_, _ = io.WriteString(w, r.URL.Path)
	}))
	br := bufio.NewReader(c)
	_, _ = io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(2 * watchDelay)
	_, _ = io.WriteString(c, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []string{"/slow", "/next"} {
		if _, body := readResp(t, br, "GET"); body != want {
			t.Fatalf("got %q, want %q", body, want)
		}
	}
}

func TestH1IdleTimeoutAndShutdown(t *testing.T) {
	_, c := h1Pair(t, 200*time.Millisecond, http.NotFoundHandler())
	start := time.Now()
	if _, err := io.ReadAll(c); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("an idle connection stayed open %v", d)
	}

	release := make(chan struct{})
	s, c2 := h1Pair(t, time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		_, _ = io.WriteString(w, "done")
	}))
	_, _ = io.WriteString(c2, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.shutdown(ctx) }()
	time.Sleep(50 * time.Millisecond)
	close(release)
	if _, body := readResp(t, bufio.NewReader(c2), "GET"); body != "done" {
		t.Fatalf("the request in flight during shutdown got %q", body)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// TestServerConnectHijackKeepsEarlyBytes: a client that sends its first
// tunnel bytes right behind the CONNECT (before the 200) loses none.
func TestServerConnectHijackKeepsEarlyBytes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(slog.New(slog.DiscardHandler), time.Minute)
	got := make(chan string, 1)
	go func() {
		_ = srv.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodConnect || r.Host != "example.test:443" {
				t.Errorf("request %s %s", r.Method, r.Host)
			}
			c, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			_, _ = io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
			b := make([]byte, 5)
			_, err = io.ReadFull(c, b)
			if err != nil {
				t.Error(err)
			}
			got <- string(b)
		}))
	}()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\nhello")
	select {
	case s := <-got:
		if s != "hello" {
			t.Fatalf("tunnel got %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no tunnel bytes")
	}
}

func TestServerSniffsAnUntypedAnswer(t *testing.T) {
	_, c := h1Pair(t, time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "<!DOCTYPE html><html></html>")
	}))
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, _ := readResp(t, bufio.NewReader(c), "GET")
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("Content-Type %q, want net/http's sniffed text/html", ct)
	}
}
