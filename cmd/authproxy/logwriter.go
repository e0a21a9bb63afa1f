package main

import (
	"io"
	"sync"
	"time"
)

// burstWriter writes a log line at once unless another went out less than
// window ago; lines that come faster are collected and written together
// window after the last write (or when 64 KiB are waiting). A quiet proxy
// logs every line as it happens; a busy one writes its request lines a few
// per system call. Each blocking write wakes the Go runtime's monitor
// thread on an otherwise quiet moment: one per request was a fifth of the
// proxy's CPU per keep-alive request (BENCHMARKS.md). Close writes what is
// waiting.
type burstWriter struct {
	w      io.Writer
	window time.Duration

	mu    sync.Mutex
	buf   []byte
	last  time.Time // of the last write to w
	timer *time.Timer
}

func newBurstWriter(w io.Writer, window time.Duration) *burstWriter {
	return &burstWriter{w: w, window: window}
}

func (b *burstWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if len(b.buf) == 0 && now.Sub(b.last) >= b.window {
		b.last = now
		return b.w.Write(p)
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= 64<<10 {
		b.flushLocked()
		return len(p), nil
	}
	if b.timer == nil {
		b.timer = time.AfterFunc(b.window, b.Flush)
	}
	return len(p), nil
}

// Flush writes what is waiting.
func (b *burstWriter) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
}

func (b *burstWriter) flushLocked() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if len(b.buf) == 0 {
		return
	}
	_, _ = b.w.Write(b.buf)
	b.last = time.Now()
	if cap(b.buf) > 256<<10 {
		b.buf = nil // do not keep a burst's buffer
	} else {
		b.buf = b.buf[:0]
	}
}
