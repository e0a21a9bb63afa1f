package guard

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth/authtest"
)

// fakeClock is authtest's clock plus timers that fire when it is advanced.
type fakeClock struct {
	*authtest.Clock
	mu     sync.Mutex
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{Clock: authtest.Fixed(time.Date(2026, 12, 7, 9, 15, 0, 0, IST()))}
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.Now().Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// advance moves the clock by d in small steps, firing due timers in order.
func (c *fakeClock) advance(d time.Duration) {
	end := c.Now().Add(d)
	for {
		c.mu.Lock()
		sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.stopped {
				next = t
				break
			}
		}
		if next == nil || next.at.After(end) {
			c.mu.Unlock()
			c.Set(end)
			return
		}
		next.stopped = true
		c.mu.Unlock()
		if next.at.After(c.Now()) {
			c.Set(next.at)
		}
		next.f()
	}
}

func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped {
			n++
		}
	}
	return n
}

func TestLimiterUnderLimitPassesAtOnce(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(3, time.Second, time.Second, clk)
	for i := 0; i < 3; i++ {
		rel, err := l.Acquire(t.Context())
		if err != nil {
			t.Fatalf("order %d: %v", i, err)
		}
		rel()
	}
	if NewLimiter(0, time.Second, time.Second, clk) != nil {
		t.Fatal("limit 0 must be off (nil limiter)")
	}
	var off *Limiter
	if _, err := off.Acquire(t.Context()); err != nil {
		t.Fatalf("nil limiter: %v", err)
	}
}

type grant struct {
	i  int
	at time.Time
}

// TestLimiterFIFOAndWindow: a burst of 7 with limit 3 and an instant
// broker: 3 go now, the next 3 exactly one second later in arrival order,
// the 7th waits its full second and is turned away with a Retry-After.
func TestLimiterFIFOAndWindow(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(3, time.Second, time.Second, clk)
	start := clk.Now()
	grants := make(chan grant, 10)
	errs := make(chan error, 10)
	var wg sync.WaitGroup
	for i := 0; i < 7; i++ {
		// Enqueue one at a time so that arrival order is known.
		before := clk.pending()
		wg.Add(1)
		go func() {
			defer wg.Done()
			rel, err := l.Acquire(context.Background())
			if err != nil {
				errs <- err
				return
			}
			grants <- grant{i, clk.Now()}
			rel()
		}()
		if i >= 3 {
			waitFor(t, func() bool { return clk.pending() > before })
		} else {
			waitFor(t, func() bool { return len(grants) == i+1 })
		}
	}
	clk.advance(999 * time.Millisecond)
	if len(grants) != 3 {
		t.Fatalf("before a second passed: %d granted, want 3", len(grants))
	}
	clk.advance(time.Millisecond)
	waitFor(t, func() bool { return len(grants) == 6 })
	clk.advance(10 * time.Millisecond)
	wg.Wait()
	close(grants)
	close(errs)
	var got []grant
	for g := range grants {
		got = append(got, g)
	}
	sort.Slice(got, func(a, b int) bool {
		return got[a].at.Before(got[b].at) || got[a].at.Equal(got[b].at) && got[a].i < got[b].i
	})
	for k, g := range got {
		if k >= 3 {
			if g.i != k {
				t.Errorf("grant %d went to order %d: not FIFO", k, g.i)
			}
			if d := g.at.Sub(start); d != time.Second {
				t.Errorf("order %d granted after %v, want 1s", g.i, d)
			}
		}
	}
	var rl *RateLimitedError
	n := 0
	for err := range errs {
		n++
		if !errors.As(err, &rl) || rl.RetryAfter <= 0 || rl.Limit != 3 {
			t.Errorf("turned-away order: %v, want a RateLimitedError with a Retry-After", err)
		}
	}
	if n != 1 {
		t.Errorf("%d orders turned away, want 1", n)
	}
}

// TestLimiterCountsInFlight: a slot is held while the broker works and for
// a second after its answer, so slow answers cannot bunch arrivals.
func TestLimiterCountsInFlight(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(1, time.Second, time.Second, clk)
	rel, err := l.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		r, err := l.Acquire(context.Background())
		if err == nil {
			r()
		}
		done <- err
	}()
	waitFor(t, func() bool { return clk.pending() == 1 })
	clk.advance(500 * time.Millisecond) // the broker is still working
	rel()                               // answered at +0.5s: the slot frees at +1.5s
	select {
	case err := <-done:
		t.Fatalf("second order let through while the first's slot was held: %v", err)
	default:
	}
	clk.advance(500 * time.Millisecond) // +1.0s: the waiter's second is up
	var rl *RateLimitedError
	if err := <-done; !errors.As(err, &rl) {
		t.Fatalf("got %v, want rate limited", err)
	}
	if rl.RetryAfter != 500*time.Millisecond {
		t.Errorf("Retry-After %v, want 500ms (when the slot frees)", rl.RetryAfter)
	}
}

func TestLimiterContextCancelLeavesQueue(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(1, time.Second, time.Second, clk)
	rel, _ := l.Acquire(t.Context())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := l.Acquire(ctx); done <- err }()
	waitFor(t, func() bool { return clk.pending() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	rel()
	clk.advance(time.Second)
	r2, err := l.Acquire(t.Context())
	if err != nil {
		t.Fatalf("after the window: %v", err)
	}
	r2()
}

// waitFor polls cond (bounded: 5 s) while goroutines reach their waits.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
