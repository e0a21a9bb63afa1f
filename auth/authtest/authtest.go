// Package authtest holds small helpers shared by the tests of the whole
// repository: the one test clock, and a log buffer that is safe to write
// from several goroutines. Production code never imports it.
package authtest

import (
	"bytes"
	"sync"
	"time"
)

// Clock is a test clock. The zero Clock follows the real time (so timers and
// TOTP steps move on), shifted by whatever Advance added; a Clock made with
// Fixed stands still except when advanced or set. Safe for concurrent use.
type Clock struct {
	mu   sync.Mutex
	base time.Time // zero: real time
	off  time.Duration
}

// Fixed returns a Clock standing at t.
func Fixed(t time.Time) *Clock { return &Clock{base: t} }

// Now is the clock's time; pass the method value as a Now func.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.base.IsZero() {
		return time.Now().Add(c.off)
	}
	return c.base.Add(c.off)
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// Set makes the clock stand at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base, c.off = t, 0
}

// LogBuffer collects log output written from several goroutines.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
