package auth

// Renewal ahead of expiry, fallbacks, lockouts and held refusals, seen
// through a Cache (the rules themselves: schedule_test.go).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authproxy/authproxy/auth/authtest"
)

func TestCacheRefreshAhead(t *testing.T) {
	clk := authtest.Fixed(t0)
	b := &refreshBroker{fakeBroker: &fakeBroker{now: clk.Now, life: 90 * time.Minute}}
	c := NewCache("acct", b, newMemStore(), CacheOptions{Now: clk.Now})
	ctx := t.Context()
	t1, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(44 * time.Minute)
	if got, _ := c.Token(ctx); got != t1 {
		t.Fatal("token changed before its refresh point")
	}
	if st := c.Status().State; st != StateReady {
		t.Fatalf("state before refresh point = %q, want ready (no refresh started)", st)
	}

	clk.Advance(2 * time.Minute) // past the midpoint at 45m
	b.gate = make(chan struct{})
	for range 20 {
		got, err := c.Token(ctx)
		if err != nil || got != t1 {
			t.Fatalf("Token during refresh = %v, %v; want the still-valid token", got, err)
		}
	}
	eventually(t, "refresh to start", func() bool { return b.refreshes.Load() == 1 })
	if st := c.Status().State; st != StateRefreshing {
		t.Errorf("state = %q, want refreshing", st)
	}
	close(b.gate)
	eventually(t, "new token", func() bool {
		got, _ := c.Token(ctx)
		return got != t1
	})
	if r, l := b.refreshes.Load(), b.logins.Load(); r != 1 || l != 1 {
		t.Errorf("refreshes, logins = %d, %d; want 1, 1", r, l)
	}
	if old := b.lastOld.Load(); old != t1 {
		t.Errorf("Refresh got %v, want the current token", old)
	}
}

func TestCacheShortLivedTokenNoStorm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &fakeBroker{now: time.Now, life: 20 * time.Second}
		c := NewCache("acct", b, newMemStore(), CacheOptions{}) // margin 15m, 15 renewals/hour
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()

		t1, err := c.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// No renewal call: a new login at three quarters of the life, not
		// at half-life.
		time.Sleep(14 * time.Second)
		synctest.Wait()
		if got := b.logins.Load(); got != 1 {
			t.Fatalf("logins before three quarters = %d, want 1", got)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := b.logins.Load(); got != 2 {
			t.Fatalf("logins after three quarters = %d, want 2", got)
		}
		if got, _ := c.Token(ctx); got == t1 || !got.Valid(time.Now()) {
			t.Fatal("not serving the renewed token")
		}

		time.Sleep(time.Hour - 17*time.Second)
		synctest.Wait()
		if got := b.logins.Load(); got != 1+DefaultRenewPerHour {
			t.Errorf("logins in the first hour = %d, want %d (1 + the hourly cap)", got, 1+DefaultRenewPerHour)
		}
		if st := c.Status(); st.State != StateExpired || st.HasToken {
			t.Errorf("idle, capped account: status %q HasToken=%v, want expired", st.State, st.HasToken)
		}
		time.Sleep(20 * time.Second) // the oldest renewal leaves the window
		synctest.Wait()
		if got := b.logins.Load(); got != 2+DefaultRenewPerHour {
			t.Errorf("logins after the window moved = %d, want %d", got, 2+DefaultRenewPerHour)
		}
		cancel()
		<-done
	})
}

func TestCacheRunRenewsWithoutTraffic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &refreshBroker{fakeBroker: &fakeBroker{now: time.Now, life: 90 * time.Minute}}
		c := NewCache("acct", b, newMemStore(), CacheOptions{})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		synctest.Wait() // Run idles with no token
		if b.logins.Load() != 0 {
			t.Fatal("Run logged in without a token to renew")
		}
		t1, err := c.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(44 * time.Minute)
		synctest.Wait()
		if got := b.refreshes.Load(); got != 0 {
			t.Fatalf("refreshes at 44m = %d, want 0", got)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if got := b.refreshes.Load(); got != 1 {
			t.Fatalf("refreshes at 46m = %d, want 1", got)
		}
		t2, _ := c.Token(ctx)
		if t2 == t1 {
			t.Fatal("still serving the old token")
		}
		time.Sleep(46 * time.Minute)
		synctest.Wait()
		if got := b.refreshes.Load(); got != 2 {
			t.Fatalf("refreshes at 92m = %d, want 2", got)
		}
		if got := b.logins.Load(); got != 1 {
			t.Errorf("logins = %d, want 1", got)
		}
		start := time.Now()
		cancel()
		<-done
		if d := time.Since(start); d != 0 {
			t.Errorf("Run took %s to stop", d)
		}
	})
}

func TestCacheFailedRefreshKeepsValidToken(t *testing.T) {
	clk := authtest.Fixed(t0)
	b := &refreshBroker{fakeBroker: &fakeBroker{now: clk.Now, life: 90 * time.Minute}}
	c := NewCache("acct", b, nil, CacheOptions{Now: clk.Now})
	ctx := t.Context()
	t1, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.setRefreshErr(errors.New("upstream 503 for access-1"))
	clk.Advance(50 * time.Minute)
	if got, err := c.Token(ctx); got != t1 || err != nil {
		t.Fatalf("Token = %v, %v; want the valid token", got, err)
	}
	eventually(t, "refresh failure", func() bool { return c.Status().Failures == 1 })
	for range 5 {
		if got, err := c.Token(ctx); got != t1 || err != nil {
			t.Fatalf("Token after failed refresh = %v, %v; want the valid token", got, err)
		}
	}
	st := c.Status()
	if st.State != StateReady || !st.HasToken {
		t.Errorf("state = %q, want ready", st.State)
	}
	if !strings.Contains(st.LastError, "upstream 503") || !strings.Contains(st.LastError, `"acct"`) {
		t.Errorf("LastError = %q, want the refresh error with the account", st.LastError)
	}
	if strings.Contains(st.LastError, "access-1") {
		t.Errorf("LastError leaks the token: %q", st.LastError)
	}
	// Spacing: no second attempt right away (a tenth of 90m = 9m).
	if got := b.refreshes.Load(); got != 1 {
		t.Errorf("refreshes = %d, want 1", got)
	}
	if got := b.logins.Load(); got != 1 {
		t.Errorf("logins = %d, want 1: a plain refresh error must not trigger a login", got)
	}
	clk.Advance(10 * time.Minute)
	b.setRefreshErr(nil)
	c.Token(ctx)
	eventually(t, "second refresh", func() bool {
		got, _ := c.Token(ctx)
		return got != t1
	})
}

func TestCacheRefreshFallback(t *testing.T) {
	t.Run("ErrRefreshImpossible falls back to Login", func(t *testing.T) {
		clk := authtest.Fixed(t0)
		b := &refreshBroker{fakeBroker: &fakeBroker{now: clk.Now, life: time.Hour}}
		b.setRefreshErr(fmt.Errorf("renew: %w", ErrRefreshImpossible))
		c := NewCache("acct", b, nil, CacheOptions{Now: clk.Now})
		t1, err := c.Token(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if r := b.refreshes.Load(); r != 0 {
			t.Fatalf("cold start refreshed %d times, want a login", r)
		}
		clk.Advance(31 * time.Minute)
		c.Token(t.Context())
		eventually(t, "fallback login", func() bool {
			got, _ := c.Token(t.Context())
			return got != t1
		})
		if r, l := b.refreshes.Load(), b.logins.Load(); r != 1 || l != 2 {
			t.Errorf("refreshes, logins = %d, %d; want 1, 2", r, l)
		}
	})
	t.Run("LoginError from Refresh of an expired token falls back", func(t *testing.T) {
		clk := authtest.Fixed(t0)
		b := &refreshBroker{fakeBroker: &fakeBroker{now: clk.Now, life: time.Hour, withRefresh: true}}
		c := NewCache("acct", b, nil, CacheOptions{Now: clk.Now})
		if _, err := c.Token(t.Context()); err != nil {
			t.Fatal(err)
		}
		b.setRefreshErr(&LoginError{Account: "acct", StatusCode: 401, Message: "expired"})
		clk.Advance(2 * time.Hour)
		if _, err := c.Token(t.Context()); err != nil {
			t.Fatalf("Token: %v", err)
		}
		if r, l := b.refreshes.Load(), b.logins.Load(); r != 1 || l != 2 {
			t.Errorf("refreshes, logins = %d, %d; want 1, 2", r, l)
		}
	})
	t.Run("LoginError from Refresh of a valid token is reported", func(t *testing.T) {
		clk := authtest.Fixed(t0)
		b := &refreshBroker{fakeBroker: &fakeBroker{now: clk.Now, life: time.Hour}}
		c := NewCache("acct", b, nil, CacheOptions{Now: clk.Now})
		t1, err := c.Token(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		b.setRefreshErr(&LoginError{Account: "acct", StatusCode: 403, Message: "no"})
		clk.Advance(31 * time.Minute)
		c.Token(t.Context())
		eventually(t, "refresh failure", func() bool { return c.Status().Failures == 1 })
		if got, _ := c.Token(t.Context()); got != t1 || b.logins.Load() != 1 {
			t.Errorf("after refused refresh: logins %d, token changed %v", b.logins.Load(), got != t1)
		}
	})
	t.Run("Relogin refreshes a rejected token that holds a refresh secret", func(t *testing.T) {
		clk := authtest.Fixed(t0)
		b := &refreshBroker{fakeBroker: &fakeBroker{now: clk.Now, life: time.Hour, withRefresh: true}}
		c := NewCache("acct", b, nil, CacheOptions{Now: clk.Now})
		t1, _ := c.Token(t.Context())
		t2, err := c.Relogin(t.Context(), t1)
		if err != nil || t2 == t1 {
			t.Fatalf("Relogin = %v, %v", t2, err)
		}
		if r, l := b.refreshes.Load(), b.logins.Load(); r != 1 || l != 1 {
			t.Errorf("refreshes, logins = %d, %d; want 1, 1", r, l)
		}
	})
}

func TestCacheBrowserOnlyBroker(t *testing.T) {
	b := &browserBroker{&fakeBroker{now: time.Now}}
	c := NewCache("acct", b, nil, CacheOptions{})
	if st := c.Status().State; st != StateNeedsLogin {
		t.Errorf("initial state = %q, want needs login", st)
	}
	_, err := c.Token(t.Context())
	if !errors.Is(err, ErrLoginRequired) || !strings.Contains(err.Error(), `"acct"`) {
		t.Fatalf("err = %v, want ErrLoginRequired naming the account", err)
	}
	if st := c.Status().State; st != StateNeedsLogin {
		t.Errorf("state = %q, want needs login", st)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if n := b.logins.Load(); n != 1 {
		t.Errorf("logins = %d, want 1 (Run must not log in)", n)
	}
}

func TestCacheNoGainRenewal(t *testing.T) {
	// 5paisa-like: every login's token expires at the same end of day.
	// synctest.Wait lets any login Token started finish before counting, so
	// "no login started" is checked without sleeping.
	synctest.Test(t, func(t *testing.T) {
		clk := authtest.Fixed(t0)
		eod := t0.Add(15 * time.Hour)
		var logins atomic.Int64
		b := loginFunc(func(context.Context) (*Token, error) {
			n := logins.Add(1)
			exp := eod
			if !clk.Now().Before(eod) {
				exp = eod.Add(24 * time.Hour)
			}
			return &Token{Access: Secret(fmt.Sprint("tok-", n)), Obtained: clk.Now(), Expiry: exp}, nil
		})
		c := NewCache("acct", b, nil, CacheOptions{Now: clk.Now})
		if _, err := c.Token(t.Context()); err != nil {
			t.Fatal(err)
		}
		clk.Advance(8 * time.Hour) // past the midpoint: no new login (no renewal call)
		c.Token(t.Context())       // a due renewal would start here
		synctest.Wait()
		if n, st := logins.Load(), c.Status().State; n != 1 || st != StateReady {
			t.Fatalf("at half-life: logins = %d, state %q; want 1, ready (no login started)", n, st)
		}
		clk.Set(eod.Add(-10 * time.Minute)) // within the margin
		c.Token(t.Context())
		synctest.Wait()
		if n, st := logins.Load(), c.Status().State; n != 2 || st != StateReady {
			t.Fatalf("within the margin: logins = %d, state %q; want 2, ready", n, st)
		}
		for _, d := range []time.Duration{time.Minute, 5 * time.Minute, 9*time.Minute + 59*time.Second} {
			clk.Set(eod.Add(-10 * time.Minute).Add(d))
			c.Token(t.Context())
			synctest.Wait()
			if n, st := logins.Load(), c.Status().State; n != 2 || st != StateReady {
				t.Fatalf("at %s: logins = %d, state %q; want 2, ready (renewal gains nothing before expiry)", clk.Now(), n, st)
			}
		}
		clk.Set(eod.Add(time.Second))
		tok, err := c.Token(t.Context())
		if err != nil || !tok.Expiry.After(eod) || logins.Load() != 3 {
			t.Fatalf("after end of day: %v, %v, logins %d", tok, err, logins.Load())
		}
	})
}

func TestCacheLockout(t *testing.T) {
	clk := authtest.Fixed(t0)
	b := &fakeBroker{now: clk.Now, life: time.Hour}
	until := t0.Add(5 * time.Minute)
	b.setErr(&RateLimitError{Account: "acct", Until: until, Message: "captcha"})
	var events eventLog
	c := NewCache("acct", b, nil, CacheOptions{Now: clk.Now, OnEvent: events.add})
	_, err := c.Token(t.Context())
	var rl *RateLimitError
	if !errors.As(err, &rl) || !rl.Until.Equal(until) {
		t.Fatalf("err = %v, want a *RateLimitError until %s", err, until)
	}
	for range 10 {
		clk.Advance(20 * time.Second)
		if _, err2 := c.Token(t.Context()); err2 != err {
			t.Fatalf("Token during lockout = %v, want the same error", err2)
		}
	}
	if got := b.logins.Load(); got != 1 {
		t.Fatalf("broker calls during lockout = %d, want 1", got)
	}
	st := c.Status()
	if st.State != StateLockedOut || !st.LockedUntil.Equal(until) {
		t.Errorf("status = %q until %s, want locked out until %s", st.State, st.LockedUntil, until)
	}
	if !events.has(EventRateLimited) {
		t.Errorf("events %v lack %q", events.kinds(), EventRateLimited)
	}
	clk.Set(until.Add(time.Second))
	b.setErr(nil)
	if _, err := c.Token(t.Context()); err != nil {
		t.Fatalf("Token after lockout: %v", err)
	}
	if got := b.logins.Load(); got != 2 {
		t.Errorf("broker calls = %d, want 2", got)
	}
	if st := c.Status(); st.State != StateReady || st.LastError != "" {
		t.Errorf("status after lockout = %+v", st)
	}
}

func TestCacheFailureHold(t *testing.T) {
	clk := authtest.Fixed(t0)
	b := &fakeBroker{now: clk.Now, life: time.Hour}
	b.setErr(&LoginError{Account: "acct", StatusCode: 401, Message: "bad password"})
	c := NewCache("acct", b, nil, CacheOptions{Now: clk.Now})
	_, err := c.Token(t.Context())
	var le *LoginError
	if !errors.As(err, &le) || le.Message != "bad password" {
		t.Fatalf("err = %v, want the *LoginError", err)
	}
	clk.Advance(9 * time.Second)
	if _, err2 := c.Token(t.Context()); err2 != err {
		t.Fatalf("Token within hold = %v, want the same error", err2)
	}
	if _, err2 := c.Relogin(t.Context(), nil); err2 != err {
		t.Fatalf("Relogin within hold = %v, want the same error", err2)
	}
	if got := b.logins.Load(); got != 1 {
		t.Fatalf("logins within hold = %d, want 1", got)
	}
	clk.Advance(2 * time.Second)
	if _, err := c.Token(t.Context()); !errors.As(err, &le) {
		t.Fatalf("err = %v, want *LoginError", err)
	}
	if got := b.logins.Load(); got != 2 {
		t.Errorf("logins after hold = %d, want 2", got)
	}
	if st := c.Status(); st.State != StateError || st.Failures != 2 || !strings.Contains(st.LastError, "bad password") {
		t.Errorf("status = %+v", st)
	}
}
