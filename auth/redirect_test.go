package auth_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/authproxy/authproxy/auth"
)

// A login endpoint that redirects gets no second request: the credentials
// are never re-sent, and the error is a LoginError naming the Location host.
func TestLoginClientNeverFollowsRedirects(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
	}))
	defer other.Close()
	for _, code := range []int{301, 302, 303, 307, 308} {
		var hits atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			w.Header().Set("Location", "http://collector.evil.test:8080/steal?code=1")
			w.WriteHeader(code)
		}))
		c := auth.NewHTTPClient(srv.Client().Transport, nil, auth.RetryOptions{})
		req, _ := http.NewRequest("POST", srv.URL+"/auth/TOTP/VerifyTotp", strings.NewReader(`{"MPIN":"1234"}`))
		resp, err := c.Do(context.Background(), req, true)
		if resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		var le *auth.LoginError
		if !errors.As(err, &le) || le.StatusCode != code {
			t.Fatalf("%d: err %v, want a LoginError with status %d", code, err, code)
		}
		if msg := err.Error(); !strings.Contains(msg, "collector.evil.test") || strings.Contains(msg, "code=1") {
			t.Errorf("%d: error %q should name the Location host and not its query", code, msg)
		}
		if hits.Load() != 1 {
			t.Errorf("%d: login endpoint hit %d times, want 1", code, hits.Load())
		}
		srv.Close()
	}
	if elsewhere.Load() != 0 {
		t.Fatal("a redirect was followed")
	}
}
