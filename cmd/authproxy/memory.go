package main

import (
	"context"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// idleTrimmer returns the memory a burst of traffic left behind to the OS
// once the proxy goes quiet. Go collects garbage only as it allocates, so a
// proxy that served a burst and then sits idle (its clients' connections
// still open) keeps the burst's garbage, its free heap and its grown
// goroutine stacks resident until the next burst: with 1,000 idle
// connections that was 10+ MiB of RSS (BENCHMARKS.md). One forced
// collection after traffic stops costs a few milliseconds of CPU, once per
// quiet period; while requests flow it does nothing but count them.
type idleTrimmer struct {
	activity atomic.Int64
}

// touch records traffic: a request or a connection.
func (t *idleTrimmer) touch() { t.activity.Add(1) }

// run trims after one quiet tick (no traffic for between every and 2*every)
// that followed traffic, until ctx ends.
func (t *idleTrimmer) run(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var seen, trimmed int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n := t.activity.Load()
		if n != seen {
			seen = n // busy: wait for a quiet tick
			continue
		}
		if n != trimmed {
			trimmed = n
			debug.FreeOSMemory()
		}
	}
}
