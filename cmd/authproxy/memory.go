package main

import (
	"context"
	"math"
	"runtime"
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

// defaultMemoryLimit is the soft limit on the Go runtime's memory (heap,
// stacks, metadata; not the executable's ~15 MiB of file-backed pages)
// unless GOMEMLIMIT is set. A quiet or moderately busy proxy stays far
// below it (~10 MiB at 32 keep-alive clients) and pays nothing; near it the
// collector runs sooner instead of letting the heap double (GOGC=100), which
// kept RSS at 256 busy clients around 50-55 MiB instead of <= 40
// (BENCHMARKS.md). It is soft: live memory above it is never refused, and
// the runtime caps the collector at half the CPU.
const defaultMemoryLimit = 26 << 20

// setMemoryLimit applies defaultMemoryLimit to the process unless the user
// chose a limit (GOMEMLIMIT) or turned the collector off (GOGC=off). Only
// main calls it: tests that run commands in-process keep their own runtime.
func setMemoryLimit(lookup func(string) (string, bool)) {
	if _, ok := lookup("GOMEMLIMIT"); ok {
		return
	}
	if v, _ := lookup("GOGC"); v == "off" {
		return
	}
	if debug.SetMemoryLimit(-1) == math.MaxInt64 {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}

// setProcs gives the proxy half of the processors the Go runtime would use
// (at least one) unless GOMAXPROCS is set. authproxy sits between a client
// and a broker connection on the user's own machine, and each request is a
// chain of short hand-offs (read, write upstream, read, write back): with a
// P for every core, each hand-off wakes an idle thread that spins looking
// for work, which on a 2-core machine cost a third of the proxy's CPU per
// keep-alive request and took that CPU from the client (BENCHMARKS.md:
// 275 -> 184 µs per request). One P still serves thousands of requests a
// second, far beyond any broker's rate limits. Only main calls it.
func setProcs(lookup func(string) (string, bool)) {
	if _, ok := lookup("GOMAXPROCS"); ok {
		return
	}
	runtime.GOMAXPROCS(defaultProcs(runtime.GOMAXPROCS(0)))
}

// defaultProcs is half of n, at least one.
func defaultProcs(n int) int { return max(1, n/2) }
