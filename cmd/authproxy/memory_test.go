package main

import (
	"runtime"
	"testing"
)

func TestDefaultProcsIsHalfAtLeastOne(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 1, 3: 1, 4: 2, 8: 4, 64: 32} {
		if got := defaultProcs(n); got != want {
			t.Errorf("defaultProcs(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestSetProcsLeavesAnExplicitGOMAXPROCS(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	setProcs(func(k string) (string, bool) { return "3", k == "GOMAXPROCS" })
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Fatalf("GOMAXPROCS changed from %d to %d although the user set it", before, got)
	}
}
