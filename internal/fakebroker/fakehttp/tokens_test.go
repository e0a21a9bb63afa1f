package fakehttp

import (
	"testing"
	"time"
)

func TestTokens(t *testing.T) {
	now := time.Unix(1000, 0)
	ts := Tokens{"a": {Expiry: now.Add(time.Minute)}, "b": {Expiry: now}}
	if !ts.Live("a", now) || ts.Live("b", now) || ts.Live("c", now) {
		t.Fatal("Live before RevokeAll")
	}
	ts.RevokeAll()
	if ts.Live("a", now) {
		t.Fatal("a revoked token is live")
	}
}
