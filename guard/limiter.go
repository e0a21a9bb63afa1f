package guard

import (
	"context"
	"sync"
	"time"
)

// Clock is the limiter's time source; tests use a fake one.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f once d has passed; stop cancels it if it has not run.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// RateLimitedError is an order the limiter turned away after it waited its
// longest; RetryAfter is when a slot is expected to be free.
type RateLimitedError struct {
	Limit      int
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string {
	return "more than the allowed orders per second"
}

// Limiter keeps at most Limit orders in any rolling window at the broker.
//
// An order holds a slot from the moment it is let through until Window after
// the broker's answer (or the failure) came back. Its arrival at the broker
// lies in between, so any window of length Window at the broker sees at most
// Limit arrivals, whatever the network delays. Orders over the limit wait in
// arrival order (FIFO) for at most MaxWait, then get a *RateLimitedError.
type Limiter struct {
	limit   int
	window  time.Duration
	maxWait time.Duration
	clock   Clock

	mu       sync.Mutex
	inflight int
	done     []time.Time // when answered orders' slots were released, ascending
	queue    []*waiter
	wakeStop func() bool
	wakeAt   time.Time
}

type waiter struct {
	ch      chan struct{}
	settled bool
	granted bool
	stop    func() bool
	err     error
}

// NewLimiter returns a limiter for limit orders per window; limit <= 0 means
// no limit (nil is returned, and a nil *Limiter lets everything through).
func NewLimiter(limit int, window, maxWait time.Duration, clock Clock) *Limiter {
	if limit <= 0 {
		return nil
	}
	if clock == nil {
		clock = realClock{}
	}
	return &Limiter{limit: limit, window: window, maxWait: maxWait, clock: clock}
}

// Acquire waits for a slot. On success the caller must call release once the
// broker's answer (or a failure) is back. It returns ctx's error if ctx ends
// first, and a *RateLimitedError after MaxWait.
func (l *Limiter) Acquire(ctx context.Context) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	l.mu.Lock()
	l.prune(l.clock.Now())
	if len(l.queue) == 0 && l.inflight+len(l.done) < l.limit {
		l.inflight++
		l.mu.Unlock()
		return l.releaser(), nil
	}
	w := &waiter{ch: make(chan struct{})}
	l.queue = append(l.queue, w)
	w.stop = l.clock.AfterFunc(l.maxWait, func() { l.expire(w) })
	l.schedule()
	l.mu.Unlock()

	select {
	case <-w.ch:
	case <-ctx.Done():
		l.mu.Lock()
		if !w.settled {
			w.settled = true
			w.err = ctx.Err()
			l.remove(w)
			w.stop()
			close(w.ch)
			l.dispatch()
		}
		l.mu.Unlock()
	}
	if w.granted {
		if ctx.Err() != nil {
			l.releaser()()
			return nil, ctx.Err()
		}
		return l.releaser(), nil
	}
	return nil, w.err
}

func (l *Limiter) releaser() func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.inflight--
			l.done = append(l.done, l.clock.Now())
			l.dispatch()
		})
	}
}

// expire turns a waiter away once it has waited MaxWait.
func (l *Limiter) expire(w *waiter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dispatch() // a slot freeing at this very instant still counts
	if w.settled {
		return
	}
	w.settled = true
	l.remove(w)
	retry := time.Second
	if len(l.done) > 0 {
		if d := l.done[0].Add(l.window).Sub(l.clock.Now()); d > 0 {
			retry = d
		}
	}
	w.err = &RateLimitedError{Limit: l.limit, RetryAfter: retry}
	close(w.ch)
}

// prune drops released slots older than the window. Called with mu held.
func (l *Limiter) prune(now time.Time) {
	n := 0
	for n < len(l.done) && !l.done[n].Add(l.window).After(now) {
		n++
	}
	l.done = l.done[n:]
}

// dispatch grants slots to the front of the queue. Called with mu held.
func (l *Limiter) dispatch() {
	l.prune(l.clock.Now())
	for len(l.queue) > 0 && l.inflight+len(l.done) < l.limit {
		w := l.queue[0]
		l.queue = l.queue[1:]
		w.settled, w.granted = true, true
		w.stop()
		l.inflight++
		close(w.ch)
	}
	l.schedule()
}

// schedule arranges a dispatch when the oldest released slot leaves the
// window, while orders wait. Called with mu held.
func (l *Limiter) schedule() {
	if len(l.queue) == 0 || len(l.done) == 0 {
		return
	}
	at := l.done[0].Add(l.window)
	if l.wakeStop != nil && !l.wakeAt.After(at) {
		return
	}
	if l.wakeStop != nil {
		l.wakeStop()
	}
	l.wakeAt = at
	l.wakeStop = l.clock.AfterFunc(at.Sub(l.clock.Now()), func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.wakeStop = nil
		l.dispatch()
	})
}

func (l *Limiter) remove(w *waiter) {
	for i, q := range l.queue {
		if q == w {
			l.queue = append(l.queue[:i], l.queue[i+1:]...)
			return
		}
	}
}
