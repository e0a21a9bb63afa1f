package faulty_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/authproxy/authproxy/integration/fakes/faulty"
)

func backend() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok "+r.URL.Path)
	})
}

func get(t *testing.T, c *http.Client, url string) (int, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestFaultsHTTP1(t *testing.T) {
	h := faulty.Wrap(backend())
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

	h.Fail("/LOGIN", 1, faulty.Status(503).With("Retry-After", "1"))
	h.Fail("/login", 1, faulty.Garbage())
	h.Fail("/login", 1, faulty.Reset())
	h.Fail("/login", 1, faulty.Hangup())
	h.Fail("/login", 1, faulty.Stall(300*time.Millisecond))
	if n := h.Pending(); n != 5 {
		t.Fatalf("pending = %d, want 5", n)
	}

	// Other paths are untouched.
	if code, body, err := get(t, c, srv.URL+"/api/x"); err != nil || code != 200 || body != "ok /api/x" {
		t.Fatalf("untouched path: %d %q %v", code, body, err)
	}
	code, body, err := get(t, c, srv.URL+"/login/a")
	if err != nil || code != 503 || !strings.Contains(body, "503 Service Unavailable") {
		t.Fatalf("status fault: %d %q %v", code, body, err)
	}
	code, body, err = get(t, c, srv.URL+"/login/b")
	if err != nil || code != 200 || body != string(faulty.GarbageBody) {
		t.Fatalf("garbage fault: %d %q %v", code, body, err)
	}
	_, _, err = get(t, c, srv.URL+"/login/c")
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reset fault: err %v, want ECONNRESET", err)
	}
	_, _, err = get(t, c, srv.URL+"/login/d")
	if err == nil || errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("hangup fault: err %v, want EOF", err)
	}
	start := time.Now()
	code, body, err = get(t, c, srv.URL+"/login/e")
	if err != nil || code != 200 || body != "ok /login/e" || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("stall fault: %d %q %v after %v", code, body, err, time.Since(start))
	}
	// Exhausted: passed on.
	if code, _, err := get(t, c, srv.URL+"/login/f"); err != nil || code != 200 {
		t.Fatalf("after the faults: %d %v", code, err)
	}
	if h.Hits("/login") != 6 || h.Faulted("/login") != 5 || h.Hits("") != 7 || h.Pending() != 0 {
		t.Fatalf("hits %d faulted %d all %d pending %d", h.Hits("/login"), h.Faulted("/login"), h.Hits(""), h.Pending())
	}
	evs := h.Events("/login")
	want := []string{"503", "garbage", "reset", "hangup", "stall(300ms)", ""}
	for i, e := range evs {
		if e.Fault != want[i] {
			t.Errorf("event %d fault %q, want %q", i, e.Fault, want[i])
		}
	}
}

func TestForeverAndClear(t *testing.T) {
	h := faulty.Wrap(backend())
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := srv.Client()
	h.Fail("/", -1, faulty.Status(429))
	for range 3 {
		if code, _, _ := get(t, c, srv.URL+"/x"); code != 429 {
			t.Fatalf("forever fault: %d", code)
		}
	}
	if h.Pending() != -1 {
		t.Fatalf("pending = %d, want -1", h.Pending())
	}
	h.Clear()
	if code, _, _ := get(t, c, srv.URL+"/x"); code != 200 {
		t.Fatalf("after Clear: %d", code)
	}
}

func TestStallGivesUpWithClient(t *testing.T) {
	var reached atomic.Bool
	h := faulty.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached.Store(true) }))
	srv := httptest.NewServer(h)
	defer srv.Close()
	h.Fail("/", 1, faulty.Stall(time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/slow", nil)
	start := time.Now()
	if _, err := srv.Client().Do(req); err == nil {
		t.Fatal("a stalled request answered")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("the client's timeout did not end the stall")
	}
	srv.Close() // waits for the handler
	if reached.Load() {
		t.Fatal("a request abandoned during a stall reached the wrapped handler")
	}
}

func TestCloseReleasesStalls(t *testing.T) {
	h := faulty.Wrap(backend())
	srv := httptest.NewServer(h)
	defer srv.Close()
	h.Fail("/", 1, faulty.Stall(time.Hour))
	time.AfterFunc(100*time.Millisecond, h.Close)
	if code, body, err := get(t, srv.Client(), srv.URL+"/y"); err != nil || code != 200 || body != "ok /y" {
		t.Fatalf("after Close: %d %q %v", code, body, err)
	}
}

func TestResetOverHTTP2(t *testing.T) {
	h := faulty.Wrap(backend())
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	h.Fail("/", 1, faulty.Reset())
	c := srv.Client()
	if _, _, err := get(t, c, srv.URL+"/r"); err == nil {
		t.Fatal("reset over HTTP/2 answered")
	}
	code, _, err := get(t, c, srv.URL+"/r")
	if err != nil || code != 200 {
		t.Fatalf("after the reset: %d %v", code, err)
	}
}
