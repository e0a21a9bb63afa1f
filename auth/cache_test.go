package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authproxy/authproxy/auth/authtest"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// loginFunc is a Broker whose Login is a function.
type loginFunc func(ctx context.Context) (*Token, error)

func (f loginFunc) Login(ctx context.Context) (*Token, error) { return f(ctx) }
func (loginFunc) Inject(r *http.Request, t *Token) error      { return nil }
func (loginFunc) Rejected(*http.Response, func() []byte) bool { return false }

func TestCacheColdSingleFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &fakeBroker{now: time.Now, life: time.Hour, gate: make(chan struct{})}
		store := newMemStore()
		c := NewCache("acct", b, store, CacheOptions{})
		const n = 50
		toks := make([]*Token, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { toks[i], errs[i] = c.Token(t.Context()) })
		}
		synctest.Wait()
		if got := b.logins.Load(); got != 1 {
			t.Fatalf("logins while %d callers wait = %d, want 1", n, got)
		}
		if st := c.Status().State; st != StateRefreshing {
			t.Errorf("state during login = %q, want %q", st, StateRefreshing)
		}
		close(b.gate)
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if toks[i] != toks[0] {
				t.Fatalf("caller %d got a different token", i)
			}
		}
		if got := b.logins.Load(); got != 1 {
			t.Errorf("logins = %d, want 1", got)
		}
		if got := store.get("acct"); got != toks[0] {
			t.Errorf("stored token = %v, want the served one", got)
		}
		st := c.Status()
		if st.State != StateReady || !st.HasToken || st.Logins != 1 {
			t.Errorf("status = %+v, want ready with 1 login", st)
		}
	})
}

func TestCacheReloginSingleFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &fakeBroker{now: time.Now, life: time.Hour}
		c := NewCache("acct", b, newMemStore(), CacheOptions{})
		t1, err := c.Token(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		b.gate = make(chan struct{})

		const n = 50
		toks := make([]*Token, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { toks[i], errs[i] = c.Relogin(t.Context(), t1) })
		}
		synctest.Wait()
		if got := b.logins.Load(); got != 2 {
			t.Fatalf("logins = %d, want 2 (one cold, one relogin)", got)
		}
		close(b.gate)
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if toks[i] != toks[0] || toks[i] == t1 {
				t.Fatalf("caller %d: got %v, want one new token", i, toks[i].Access.Reveal())
			}
		}
		// A late Relogin with the stale token gets the new one, no login.
		t3, err := c.Relogin(t.Context(), t1)
		if err != nil || t3 != toks[0] {
			t.Fatalf("late relogin = %v, %v; want the new token", t3, err)
		}
		if got := b.logins.Load(); got != 2 {
			t.Errorf("logins = %d, want 2", got)
		}
		if got := c.Status().Rejections; got != 1 {
			t.Errorf("rejections = %d, want 1", got)
		}
	})
}

func TestCacheNeverReturnsExpiredToken(t *testing.T) {
	clk := authtest.Fixed(t0)
	b := &fakeBroker{now: clk.Now, life: time.Hour}
	c := NewCache("acct", b, nil, CacheOptions{Now: clk.Now})
	if _, err := c.Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	b.setErr(errors.New("network down"))
	clk.Advance(61 * time.Minute)
	tok, err := c.Token(t.Context())
	if tok != nil || err == nil {
		t.Fatalf("Token after expiry with failing broker = %v, %v; want an error", tok, err)
	}
	if !strings.Contains(err.Error(), "network down") || !strings.Contains(err.Error(), `"acct"`) {
		t.Errorf("error %q lacks the cause or the account", err)
	}

	// A broker handing out an already expired token is an error too.
	past := loginFunc(func(context.Context) (*Token, error) {
		return &Token{Access: "stale", Expiry: clk.Now().Add(-time.Minute)}, nil
	})
	c2 := NewCache("acct2", past, nil, CacheOptions{Now: clk.Now})
	if tok, err := c2.Token(t.Context()); tok != nil || err == nil {
		t.Fatalf("Token from broker returning expired token = %v, %v; want an error", tok, err)
	}
}

func TestCacheNotConfiguredPassesThrough(t *testing.T) {
	b := loginFunc(func(context.Context) (*Token, error) {
		return nil, &NotConfiguredError{Account: "acct", Missing: []string{"TV_PASSWORD"}}
	})
	c := NewCache("acct", b, nil, CacheOptions{})
	_, err := c.Token(t.Context())
	var nc *NotConfiguredError
	if !errors.As(err, &nc) || nc.Missing[0] != "TV_PASSWORD" {
		t.Fatalf("err = %v, want *NotConfiguredError", err)
	}
}

func TestCacheWaiterCancelDoesNotAbortLogin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &fakeBroker{now: time.Now, life: time.Hour, gate: make(chan struct{})}
		c := NewCache("acct", b, nil, CacheOptions{})
		ctx1, cancel1 := context.WithCancel(t.Context())
		var err1, err2 error
		var tok2 *Token
		var wg sync.WaitGroup
		wg.Go(func() { _, err1 = c.Token(ctx1) })
		wg.Go(func() { tok2, err2 = c.Token(t.Context()) })
		synctest.Wait()
		cancel1()
		synctest.Wait()
		time.Sleep(time.Second)
		close(b.gate)
		wg.Wait()
		if !errors.Is(err1, context.Canceled) {
			t.Errorf("cancelled waiter: err = %v, want context.Canceled", err1)
		}
		if err2 != nil || tok2 == nil {
			t.Errorf("other waiter: %v, %v; want a token", tok2, err2)
		}
		if n := b.ctxDoneEnd.Load(); n != 0 {
			t.Errorf("login context was cancelled by a waiter")
		}
	})
}

func TestCacheLoginTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &fakeBroker{now: time.Now, life: time.Hour, gate: make(chan struct{})}
		c := NewCache("acct", b, nil, CacheOptions{LoginTimeout: 5 * time.Second})
		start := time.Now()
		_, err := c.Token(t.Context())
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Errorf("login gave up after %s, want 5s", d)
		}
	})
}

func TestCacheEvents(t *testing.T) {
	clk := authtest.Fixed(t0)
	var events eventLog
	b := &fakeBroker{now: clk.Now, life: time.Hour}
	c := NewCache("acct", b, newMemStore(), CacheOptions{Now: clk.Now, OnEvent: events.add})
	t1, _ := c.Token(t.Context())
	c.Invalidate(t1)
	c.Invalidate(t1) // no-op
	b.setErr(&LoginError{Account: "acct", Message: "no"})
	c.Token(t.Context())
	want := []string{EventLogin, EventSaved, EventInvalidated, EventLoginFailed}
	if got := events.kinds(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events = %v, want %v", got, want)
	}
	for _, e := range events.all() {
		if e.Account != "acct" {
			t.Errorf("event %+v lacks the account", e)
		}
	}
}

// eventLog collects OnEvent calls.
type eventLog struct {
	mu sync.Mutex
	ev []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	l.ev = append(l.ev, e)
	l.mu.Unlock()
}

func (l *eventLog) all() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.ev...)
}

func (l *eventLog) kinds() []string {
	var k []string
	for _, e := range l.all() {
		k = append(k, e.Kind)
	}
	return k
}

func (l *eventLog) has(kind string) bool {
	for _, k := range l.kinds() {
		if k == kind {
			return true
		}
	}
	return false
}
