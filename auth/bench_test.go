package auth_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/tradingo"
)

// benchLoginBroker issues a long-lived token and counts its logins.
type benchLoginBroker struct{ logins atomic.Int64 }

func (b *benchLoginBroker) Login(context.Context) (*auth.Token, error) {
	b.logins.Add(1)
	now := time.Now()
	return &auth.Token{Access: "bench-access-token", Expiry: now.Add(24 * time.Hour), Obtained: now}, nil
}

func (b *benchLoginBroker) Inject(r *http.Request, t *auth.Token) error {
	r.Header.Set("Authorization", "Bearer "+t.Access.Reveal())
	return nil
}

func (b *benchLoginBroker) Rejected(resp *http.Response, _ func() []byte) bool {
	return resp.StatusCode == http.StatusUnauthorized
}

// warmCache returns a cache that has logged in once.
func warmCache(tb testing.TB) (*auth.Cache, *benchLoginBroker) {
	tb.Helper()
	b := &benchLoginBroker{}
	c := auth.NewCache("bench", b, nil, auth.CacheOptions{})
	if _, err := c.Token(context.Background()); err != nil {
		tb.Fatal(err)
	}
	if n := b.logins.Load(); n != 1 {
		tb.Fatalf("warm-up made %d logins, want 1", n)
	}
	return c, b
}

// BenchmarkCacheToken is the per-request token lookup on a warm cache.
func BenchmarkCacheToken(b *testing.B) {
	c, br := warmCache(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Token(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if n := br.logins.Load(); n != 1 {
		b.Fatalf("%d logins after warm-up, want none", n-1)
	}
}

// BenchmarkCacheTokenParallel checks the lookup does not contend.
func BenchmarkCacheTokenParallel(b *testing.B) {
	c, br := warmCache(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Token(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if n := br.logins.Load(); n != 1 {
		b.Fatalf("%d logins after warm-up, want none", n-1)
	}
}

// TestCacheTokenWarmMakesNoLogins: after one login, many lookups (serial and
// concurrent) reuse the token; counted, not timed.
func TestCacheTokenWarmMakesNoLogins(t *testing.T) {
	c, br := warmCache(t)
	first, err := c.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 8)
	for range 8 {
		go func() {
			for range 1000 {
				tok, err := c.Token(context.Background())
				if err != nil {
					done <- err
					return
				}
				if tok != first {
					done <- errNotSame
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := br.logins.Load(); n != 1 {
		t.Fatalf("8,000 lookups on a warm cache made %d logins, want 0", n-1)
	}
}

type benchErr string

func (e benchErr) Error() string { return string(e) }

const errNotSame = benchErr("a warm cache served a different token")

// BenchmarkTradingoInject is the header injection on every Tradingo request:
// remove any client Authorization, set the bearer.
func BenchmarkTradingoInject(b *testing.B) {
	br, err := tradingo.New(tradingo.Config{Account: "bench", ClientCode: "GO11240", MPIN: "4821",
		TOTPSecret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}, auth.NewHTTPClient(nil, nil, auth.RetryOptions{}), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	tok := &auth.Token{Access: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJHTzExMjQwIn0.c2lnbmF0dXJl", Expiry: time.Now().Add(time.Hour)}
	req, err := http.NewRequest(http.MethodPost, "https://tradingorestapi.swastika.co.in/kb/OrderBook/GetOrderBookList", http.NoBody)
	if err != nil {
		b.Fatal(err)
	}
	base := http.Header{
		"Content-Type":  {"application/json"},
		"Accept":        {"application/json"},
		"User-Agent":    {"python-requests/2.31.0"},
		"Authorization": {"Bearer stale-token-from-notebook"},
	}
	b.ReportAllocs()
	for b.Loop() {
		// The proxy hands Inject a header map it owns; refill it in place.
		clear(req.Header)
		for k, v := range base {
			req.Header[k] = v
		}
		if err := br.Inject(req, tok); err != nil {
			b.Fatal(err)
		}
	}
	if got := req.Header.Get("Authorization"); got != "Bearer "+tok.Access.Reveal() {
		b.Fatalf("Authorization = %q", got)
	}
}
