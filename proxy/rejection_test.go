package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/authtest"
)

var _ rejectionHolder = (*auth.Cache)(nil)

// loginBroker issues tok-1, tok-2, ... and counts its logins; block, when
// set, makes Login wait for its context.
type loginBroker struct {
	fakeBroker
	n     atomic.Int64
	block chan struct{}
}

func (b *loginBroker) Login(ctx context.Context) (*auth.Token, error) {
	if b.block != nil {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-b.block:
			return nil, context.Canceled
		}
	}
	n := b.n.Add(1)
	return &auth.Token{Access: auth.Secret(fmt.Sprintf("tok-%d", n)), Expiry: time.Now().Add(time.Hour)}, nil
}

// TestRejectionsThatLoginsCannotCure: a broker that refuses every token
// costs one re-login, then its answers are passed on with no more logins,
// the status says "rejected by broker" with its words, and the first request
// after it accepts tokens again works.
func TestRejectionsThatLoginsCannotCure(t *testing.T) {
	b := &loginBroker{}
	clock := authtest.Fixed(time.Now())
	cache := auth.NewCache("acct", b, nil, auth.CacheOptions{Now: clock.Now})
	e := newTestEnv(t, func(o *Options) {
		o.Accounts[0].Broker = b
		o.Accounts[0].Source = cache
	})
	e.up.valid = "never"
	for i := range 30 {
		resp, _ := e.do(t, "GET", "/orders", "", nil)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("X-Authproxy-Error") != "" {
			t.Fatalf("request %d: status %d, error %q; want the broker's own 401", i, resp.StatusCode, resp.Header.Get("X-Authproxy-Error"))
		}
	}
	if n := b.n.Load(); n != 2 {
		t.Fatalf("30 rejected requests cost %d logins, want 2 (the first and one re-login)", n)
	}
	st := cache.Status()
	if st.State != auth.StateRejected || !strings.Contains(st.LastError, "401") {
		t.Fatalf("status %q %q, want %q with the broker's answer", st.State, st.LastError, auth.StateRejected)
	}
	// The hold ends after at most 30s: one more re-login then.
	clock.Advance(31 * time.Second)
	e.do(t, "GET", "/orders", "", nil)
	if n := b.n.Load(); n != 3 {
		t.Fatalf("after the hold: %d logins, want 3", n)
	}
	// The broker accepts tokens again: the next request works, the hold ends.
	e.up.mu.Lock()
	e.up.valid = "tok-3"
	e.up.mu.Unlock()
	if resp, body := e.do(t, "GET", "/orders", "", nil); resp.StatusCode != 200 {
		t.Fatalf("after recovery: %d %q", resp.StatusCode, body)
	}
	if st := cache.Status(); st.State != auth.StateReady {
		t.Fatalf("after recovery state %q, want ready", st.State)
	}
}

// TestConcurrentRejectionsCostAHandfulOfLogins: dozens of rejected requests
// at once share logins.
func TestConcurrentRejectionsCostAHandfulOfLogins(t *testing.T) {
	b := &loginBroker{}
	cache := auth.NewCache("acct", b, nil, auth.CacheOptions{})
	e := newTestEnv(t, func(o *Options) {
		o.Accounts[0].Broker = b
		o.Accounts[0].Source = cache
	})
	e.up.valid = "never"
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", "https://"+brokerHost+"/x", nil)
			resp, err := e.client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("status %d, want the broker's 401", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	if n := b.n.Load(); n > 5 {
		t.Fatalf("40 concurrent rejected requests cost %d logins, want at most 5", n)
	}
}

// TestLoginWaitIsBoundedByUpstreamTimeout: a login that hangs answers the
// client with `timeout` (504) and Retry-After after [upstream] timeout.
func TestLoginWaitIsBoundedByUpstreamTimeout(t *testing.T) {
	b := &loginBroker{block: make(chan struct{})}
	t.Cleanup(func() { close(b.block) })
	cache := auth.NewCache("acct", b, nil, auth.CacheOptions{LoginTimeout: 5 * time.Second})
	e := newTestEnv(t, func(o *Options) {
		o.Accounts[0].Broker = b
		o.Accounts[0].Source = cache
		o.Upstream.Timeout = 300 * time.Millisecond
	})
	resp, body := e.do(t, "GET", "/orders", "", nil)
	if resp.StatusCode != http.StatusGatewayTimeout || resp.Header.Get("X-Authproxy-Error") != CodeTimeout || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d error %q Retry-After %q body %s", resp.StatusCode, resp.Header.Get("X-Authproxy-Error"), resp.Header.Get("Retry-After"), body)
	}
	if got := e.up.seen(); len(got) != 0 {
		t.Fatalf("the broker saw %d requests, want none", len(got))
	}
}

type failingBody struct {
	r   io.Reader
	err error
}

func (f *failingBody) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}
func (f *failingBody) Close() error { return nil }

// TestAnswerCutOff: an answer that breaks off before the client got a byte
// is upstream_unreachable (502); one that breaks off later is counted as a
// failure.
func TestAnswerCutOff(t *testing.T) {
	var (
		mu   sync.Mutex
		recs []RequestRecord
	)
	e := newTestEnv(t, func(o *Options) {
		o.Transport = roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			resp := &http.Response{StatusCode: 200, Header: http.Header{}, Request: r, ProtoMajor: 1, ProtoMinor: 1}
			if r.URL.Path == "/small" {
				resp.ContentLength = 100
				resp.Body = &failingBody{r: strings.NewReader(`{"status":"o`), err: io.ErrUnexpectedEOF}
			} else {
				resp.ContentLength = -1
				resp.Body = &failingBody{r: strings.NewReader(strings.Repeat("x", 100<<10)), err: io.ErrUnexpectedEOF}
			}
			return resp, nil
		})
		o.Observe = func(rec RequestRecord) { mu.Lock(); recs = append(recs, rec); mu.Unlock() }
	})
	resp, body := e.do(t, "GET", "/small", "", nil)
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("X-Authproxy-Error") != CodeUpstreamUnreachable {
		t.Fatalf("status %d error %q body %s", resp.StatusCode, resp.Header.Get("X-Authproxy-Error"), body)
	}
	req, _ := http.NewRequest("GET", "https://"+brokerHost+"/big", nil)
	if resp, err := e.client.Do(req); err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatal("a broken-off answer reached the client as complete")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(recs)
		var outs []string
		for _, r := range recs {
			outs = append(outs, r.Outcome)
		}
		mu.Unlock()
		if n == 2 {
			if outs[0] != CodeUpstreamUnreachable || outs[1] != CodeUpstreamUnreachable {
				t.Fatalf("outcomes %q, want both %s", outs, CodeUpstreamUnreachable)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records, want 2", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
