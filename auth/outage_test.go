package auth

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth/authtest"
	"github.com/authproxy/authproxy/integration/fakes/faulty"
)

// TestRetryHTTP2StreamReset: over HTTP/2 a connection reset arrives as a
// stream reset; a request that is safe to repeat is retried through it, one
// that is not is sent once.
func TestRetryHTTP2StreamReset(t *testing.T) {
	h := faulty.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	c := NewHTTPClient(srv.Client().Transport, nil, RetryOptions{WaitMin: 10 * time.Millisecond, WaitMax: 50 * time.Millisecond})

	h.Fail("/safe", 2, faulty.Reset())
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+"/safe", nil)
	resp, err := c.Do(context.Background(), req, true)
	if err != nil {
		t.Fatalf("retry-safe request through two stream resets: %v", err)
	}
	resp.Body.Close()
	if n := h.Hits("/safe"); n != 3 {
		t.Errorf("attempts = %d, want 3", n)
	}

	h.Fail("/once", 1, faulty.Reset())
	req, _ = http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+"/once", nil)
	if _, err := c.Do(context.Background(), req, false); err == nil {
		t.Fatal("a request that is not safe to repeat succeeded through a reset")
	}
	if n := h.Hits("/once"); n != 1 {
		t.Errorf("attempts = %d, want 1", n)
	}
}

// TestCacheNoHoldAfterOutage: a login refused with a broker's 5xx is an
// outage, not a verdict on the credentials: the next call tries again at
// once. A refusal (4xx) is held for FailureHold.
func TestCacheNoHoldAfterOutage(t *testing.T) {
	clk := authtest.Fixed(time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC))
	b := &fakeBroker{now: clk.Now, life: time.Hour}
	c := NewCache("acct", b, nil, CacheOptions{Now: clk.Now, FailureHold: time.Minute})
	ctx := context.Background()

	b.setErr(&LoginError{Account: "acct", StatusCode: http.StatusServiceUnavailable, Message: "Service Unavailable"})
	if _, err := c.Token(ctx); err == nil {
		t.Fatal("login during an outage succeeded")
	}
	b.setErr(nil)
	if _, err := c.Token(ctx); err != nil {
		t.Fatalf("the first call after the outage: %v", err)
	}

	c2 := NewCache("acct2", b, nil, CacheOptions{Now: clk.Now, FailureHold: time.Minute})
	b.setErr(&LoginError{Account: "acct2", StatusCode: http.StatusUnauthorized, Message: "Invalid MPIN"})
	if _, err := c2.Token(ctx); err == nil {
		t.Fatal("refused login succeeded")
	}
	b.setErr(nil)
	before := b.logins.Load()
	var le *LoginError
	if _, err := c2.Token(ctx); !errors.As(err, &le) || b.logins.Load() != before {
		t.Fatalf("a refused login was not held: err %v, %d new logins", err, b.logins.Load()-before)
	}
}
