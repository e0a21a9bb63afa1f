package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
	n  int // writes
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	return l.b.Write(p)
}

func (l *lockedBuf) get() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String(), l.n
}

// TestBurstWriter: a line after a quiet moment goes out at once; lines in
// a burst go out together within the window; Flush sends what waits.
func TestBurstWriter(t *testing.T) {
	out := &lockedBuf{}
	w := newBurstWriter(out, 50*time.Millisecond)
	_, _ = w.Write([]byte("one\n"))
	if s, n := out.get(); s != "one\n" || n != 1 {
		t.Fatalf("a line after a quiet moment: %q in %d writes, want it at once", s, n)
	}
	_, _ = w.Write([]byte("two\n"))
	_, _ = w.Write([]byte("three\n"))
	if s, _ := out.get(); s != "one\n" {
		t.Fatalf("a burst went out line by line: %q", s)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, n := out.get()
		if s == "one\ntwo\nthree\n" {
			if n != 2 {
				t.Fatalf("the burst took %d writes, want 1", n-1)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the burst never went out: %q", s)
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, _ = w.Write([]byte("four\n")) // within the window of the last write: held
	w.Flush()
	if s, _ := out.get(); !strings.HasSuffix(s, "three\nfour\n") {
		t.Fatalf("Flush left a line behind: %q", s)
	}
	// A large burst goes out before the window ends.
	big := strings.Repeat("x", 70<<10)
	_, _ = w.Write([]byte(big))
	if s, _ := out.get(); !strings.HasSuffix(s, big) {
		t.Fatal("64 KiB waiting were not written at once")
	}
}
