package auth

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingRT counts round trips through a plain transport.
type countingRT struct {
	base http.RoundTripper
	n    atomic.Int64
}

func (c *countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

func newTestClient(t *testing.T, tr *http.Transport, logs io.Writer, opts RetryOptions) (*HTTPClient, *countingRT) {
	t.Helper()
	if tr == nil {
		tr = &http.Transport{}
	}
	t.Cleanup(tr.CloseIdleConnections)
	rt := &countingRT{base: tr}
	if logs == nil {
		logs = io.Discard
	}
	return NewHTTPClient(rt, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), opts), rt
}

var fastRetry = RetryOptions{WaitMin: time.Millisecond, WaitMax: 10 * time.Millisecond, Budget: 5 * time.Second}

func TestHTTPClientRetries5xxThenSucceeds(t *testing.T) {
	var hits atomic.Int64
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		if hits.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	c, _ := newTestClient(t, nil, nil, fastRetry)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/auth/renew", strings.NewReader(`{"a":1}`))
	resp, err := c.Do(t.Context(), req, true)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if n := hits.Load(); n != 3 {
		t.Errorf("attempts = %d, want 3", n)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, b := range bodies {
		if b != `{"a":1}` {
			t.Errorf("attempt %d body = %q, want the original body", i+1, b)
		}
	}
}

func TestHTTPClientFinal5xxIsAResponse(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	c, _ := newTestClient(t, nil, nil, RetryOptions{Max: 2, WaitMin: time.Millisecond, WaitMax: 5 * time.Millisecond})
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	resp, err := c.Do(t.Context(), req, true)
	if err != nil {
		t.Fatalf("final 5xx returned an error: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "down") {
		t.Errorf("got %d %q, want the last 502 with its body", resp.StatusCode, body)
	}
	if n := hits.Load(); n != 3 {
		t.Errorf("attempts = %d, want 3 (1 + Max 2)", n)
	}
}

func TestHTTPClientNoRetryWhenUnsafe(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	c, _ := newTestClient(t, nil, nil, fastRetry)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/VerifyTotp", strings.NewReader("totp"))
	resp, err := c.Do(t.Context(), req, false)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || hits.Load() != 1 {
		t.Errorf("status %d after %d attempts, want 500 after 1 (the endpoint may have used the code)", resp.StatusCode, hits.Load())
	}

	// A refused connection is not retried either.
	addr := closedAddr(t)
	c2, rt := newTestClient(t, nil, nil, fastRetry)
	req, _ = http.NewRequest(http.MethodPost, "http://"+addr+"/x", strings.NewReader("totp"))
	if _, err := c2.Do(t.Context(), req, false); err == nil {
		t.Fatal("no error from a closed port")
	}
	if n := rt.n.Load(); n != 1 {
		t.Errorf("attempts = %d, want 1", n)
	}
}

func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestHTTPClientRetriesRefusedConnection(t *testing.T) {
	addr := closedAddr(t)
	var logs bytes.Buffer
	c, rt := newTestClient(t, nil, &logs, RetryOptions{Max: 2, WaitMin: time.Millisecond, WaitMax: 5 * time.Millisecond})
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/auth?password=hunter2&code=Zq7Xw9", nil)
	_, err := c.Do(t.Context(), req, true)
	if err == nil {
		t.Fatal("no error from a closed port")
	}
	if n := rt.n.Load(); n != 3 {
		t.Errorf("attempts = %d, want 3", n)
	}
	for _, leak := range []string{"hunter2", "Zq7Xw9"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error leaks the query: %v", err)
		}
		if strings.Contains(logs.String(), leak) {
			t.Errorf("log leaks the query: %s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "/auth") {
		t.Errorf("attempts not logged: %s", logs.String())
	}
}

func TestHTTPClientNoRetryOnTLSVerification(t *testing.T) {
	var conns, hits atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	srv.StartTLS()
	defer srv.Close()

	// A client that trusts nothing but an unrelated pool.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}
	c, rt := newTestClient(t, tr, nil, fastRetry)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/auth", strings.NewReader("{}"))
	_, err := c.Do(t.Context(), req, true)
	if err == nil {
		t.Fatal("untrusted server accepted")
	}
	if !IsTLSError(err) {
		t.Errorf("IsTLSError(%v) = false", err)
	}
	var cve *tls.CertificateVerificationError
	if !errors.As(err, &cve) {
		t.Errorf("errors.As(*tls.CertificateVerificationError) failed for %v", err)
	}
	var uae x509.UnknownAuthorityError
	if !errors.As(err, &uae) {
		t.Errorf("errors.As(x509.UnknownAuthorityError) failed for %v", err)
	}
	if n := rt.n.Load(); n != 1 {
		t.Errorf("attempts = %d, want 1", n)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("server saw %d requests, want 0", n)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("connections = %d, want 1", n)
	}

	// Host name mismatch: trusted CA, wrong name.
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	tr2 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "broker.invalid"}}
	c2, _ := newTestClient(t, tr2, nil, fastRetry)
	req, _ = http.NewRequest(http.MethodGet, srv.URL, nil)
	_, err = c2.Do(t.Context(), req, true)
	var hne x509.HostnameError
	if !errors.As(err, &hne) || !IsTLSError(err) {
		t.Errorf("hostname mismatch: %v", err)
	}
}

func TestIsTLSError(t *testing.T) {
	alert := &net.OpError{Op: "remote error", Err: errors.New("tls: bad certificate")}
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("connection refused"), false},
		{&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, true},
		{x509.HostnameError{Host: "x"}, true},
		{x509.CertificateInvalidError{Reason: x509.Expired}, true},
		{alert, true},
		{&net.OpError{Op: "remote error", Err: errors.New("tls: handshake failure")}, false},
		{tls.AlertError(42), true},
		{tls.AlertError(40), false},
	}
	for _, tt := range tests {
		if got := IsTLSError(tt.err); got != tt.want {
			t.Errorf("IsTLSError(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestHTTPClientRetryAfter(t *testing.T) {
	t.Run("honoured", func(t *testing.T) {
		var hits atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if hits.Add(1) == 1 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			io.WriteString(w, "ok")
		}))
		defer srv.Close()
		c, _ := newTestClient(t, nil, nil, RetryOptions{WaitMin: time.Millisecond, WaitMax: 2 * time.Second})
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		start := time.Now()
		resp, err := c.Do(t.Context(), req, true)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if d := time.Since(start); d < time.Second || d > 3*time.Second {
			t.Errorf("took %s, want about the 1s Retry-After", d)
		}
		if resp.StatusCode != 200 || hits.Load() != 2 {
			t.Errorf("status %d after %d attempts", resp.StatusCode, hits.Load())
		}
	})
	t.Run("beyond WaitMax is returned at once", func(t *testing.T) {
		var hits atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusTooManyRequests)
		}))
		defer srv.Close()
		c, _ := newTestClient(t, nil, nil, RetryOptions{WaitMin: time.Millisecond, WaitMax: 2 * time.Second})
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		start := time.Now()
		resp, err := c.Do(t.Context(), req, true)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if d := time.Since(start); d > time.Second {
			t.Errorf("took %s, want an immediate answer", d)
		}
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "3600" || hits.Load() != 1 {
			t.Errorf("status %d after %d attempts", resp.StatusCode, hits.Load())
		}
	})
	t.Run("budget bounds the retries", func(t *testing.T) {
		var hits atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		defer srv.Close()
		c, _ := newTestClient(t, nil, nil, RetryOptions{Max: 10, WaitMin: 100 * time.Millisecond, WaitMax: 100 * time.Millisecond, Budget: 350 * time.Millisecond})
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		start := time.Now()
		resp, err := c.Do(t.Context(), req, true)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if d := time.Since(start); d > time.Second {
			t.Errorf("took %s, want within the 350ms budget", d)
		}
		if n := hits.Load(); n < 2 || n > 4 {
			t.Errorf("attempts = %d, want 2..4 within the budget", n)
		}
	})
}

func TestRetryAfterParse(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"0":                             0,
		"7":                             7 * time.Second,
		"Thu, 01 Jan 2026 00:00:30 GMT": 30 * time.Second,
		"Wed, 31 Dec 2025 00:00:00 GMT": 0,
	} {
		if got, ok := RetryAfter(in, now); !ok || got != want {
			t.Errorf("RetryAfter(%q) = %s, %v; want %s", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-1", "soon"} {
		if _, ok := RetryAfter(in, now); ok {
			t.Errorf("RetryAfter(%q) accepted", in)
		}
	}
}

// TestHTTPClientUnsafeRetriesGatewayAnswers: a login endpoint behind a
// gateway answering 502/503/504 never saw the request; it is resent, whole,
// with backoff, so two 503s cost the client only a short wait.
func TestHTTPClientUnsafeRetriesGatewayAnswers(t *testing.T) {
	for _, status := range []int{http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout} {
		var hits atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if string(body) != "totp=123456" {
				t.Errorf("attempt %d sent %q", hits.Load()+1, body)
			}
			if hits.Add(1) <= 2 {
				w.WriteHeader(status)
				return
			}
			_, _ = io.WriteString(w, "ok")
		}))
		c, _ := newTestClient(t, nil, nil, fastRetry)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/VerifyTotp", strings.NewReader("totp=123456"))
		resp, err := c.Do(t.Context(), req, false)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != 200 || string(body) != "ok" || hits.Load() != 3 {
			t.Errorf("%d twice: got %d %q after %d attempts, want 200 after 3", status, resp.StatusCode, body, hits.Load())
		}
	}
}

// TestHTTPClientDoLoginRebodies: a login resent after a gateway's 503 asks
// for a new body (a fresh TOTP code) and sends it; without one it resends
// the same.
func TestHTTPClientDoLoginRebodies(t *testing.T) {
	var (
		hits   atomic.Int64
		bodies = make(chan string, 8)
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- string(b)
		if hits.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	c, _ := newTestClient(t, nil, nil, fastRetry)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/VerifyTotp", strings.NewReader(`{"totp":"111111"}`))
	asked := 0
	resp, err := c.DoLogin(t.Context(), req, func() ([]byte, bool) {
		asked++
		if asked == 1 {
			return nil, false // same step: resend
		}
		return []byte(`{"totp":"222222"}`), true
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	close(bodies)
	var got []string
	for b := range bodies {
		got = append(got, b)
	}
	want := []string{`{"totp":"111111"}`, `{"totp":"111111"}`, `{"totp":"222222"}`}
	if strings.Join(got, " ") != strings.Join(want, " ") || resp.StatusCode != 200 {
		t.Fatalf("bodies %q status %d, want %q then 200", got, resp.StatusCode, want)
	}
}
