package redisstore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/redisstore/redistest"
)

func TestLeaseExclusiveAndKeptAlive(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := newStore(t, srv.URL(), testKey)
	b := newStore(t, srv.URL(), testKey)
	ctx := t.Context()
	const ttl = 300 * time.Millisecond

	la, err := a.Lease(ctx, "acct", ttl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lease(ctx, "acct", ttl); !errors.Is(err, auth.ErrLeaseHeld) {
		t.Fatalf("second lease: %v, want ErrLeaseHeld", err)
	}
	// Another account's lease is independent.
	lo, err := b.Lease(ctx, "other", ttl)
	if err != nil {
		t.Fatalf("lease on another account: %v", err)
	}
	_ = lo.Release(ctx)

	// The holder keeps it alive well past its ttl.
	time.Sleep(3 * ttl)
	if _, err := b.Lease(ctx, "acct", ttl); !errors.Is(err, auth.ErrLeaseHeld) {
		t.Fatalf("lease after 3 ttl while held: %v, want ErrLeaseHeld", err)
	}
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := la.Release(ctx); err != nil {
		t.Errorf("second release: %v", err)
	}
	lb, err := b.Lease(ctx, "acct", ttl)
	if err != nil {
		t.Fatalf("lease after release: %v", err)
	}
	defer lb.Release(ctx)
	if lb.Fence() <= la.Fence() {
		t.Errorf("fence went from %d to %d, want it to grow", la.Fence(), lb.Fence())
	}
	if _, err := a.Lease(ctx, "acct", time.Millisecond); err == nil {
		t.Error("a 1ms lease was accepted")
	}
}

func TestLeaseExpiresWhenHolderDies(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := newStore(t, srv.URL(), testKey)
	b := newStore(t, srv.URL(), testKey)
	ctx := t.Context()
	const ttl = 400 * time.Millisecond

	la, err := a.Lease(ctx, "acct", ttl)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stopKeepAlive(t, la) // the holder "crashes"
	var lb auth.Lease
	for time.Since(start) < 5*ttl {
		lb, err = b.Lease(ctx, "acct", ttl)
		if err == nil {
			break
		}
		if !errors.Is(err, auth.ErrLeaseHeld) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	if lb == nil {
		t.Fatalf("lease of a dead holder not free after %s", took)
	}
	defer lb.Release(ctx)
	if took < ttl/2 || took > ttl+time.Second {
		t.Errorf("dead holder's lease freed after %s, want about %s", took, ttl)
	}
}

func TestFencingRejectsStaleHolder(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := newStore(t, srv.URL(), testKey)
	b := newStore(t, srv.URL(), testKey)
	ctx := t.Context()
	const ttl = 200 * time.Millisecond
	now := time.Now()
	tokA, tokB := secretToken(now), secretToken(now)
	tokA.Access, tokB.Access = "token-from-A-stale", "token-from-B-fresh"

	// A takes the lease, then stalls past its ttl (a GC pause, a partition).
	la, err := a.Lease(ctx, "acct", ttl)
	if err != nil {
		t.Fatal(err)
	}
	stopKeepAlive(t, la)
	lb := leaseWhenFree(t, b, "acct", ttl)
	if err := b.SaveFenced(ctx, "acct", tokB, lb.Fence()); err != nil {
		t.Fatalf("current holder's save: %v", err)
	}
	// A wakes up and tries to save: refused, B's token stays.
	if err := a.SaveFenced(ctx, "acct", tokA, la.Fence()); !errors.Is(err, auth.ErrLeaseLost) {
		t.Fatalf("stale holder's save: %v, want ErrLeaseLost", err)
	}
	if got, err := b.Load(ctx, "acct"); err != nil || got.Access != tokB.Access {
		t.Fatalf("stored token after the refused save: %v %v", got, err)
	}
	// A's release does not free B's lease.
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Lease(ctx, "acct", ttl); !errors.Is(err, auth.ErrLeaseHeld) {
		t.Fatalf("after the stale holder released: %v, want B's lease still held", err)
	}
	if err := lb.Release(ctx); err != nil {
		t.Fatal(err)
	}

	// A lease that expired with nobody taking over was not superseded: its
	// holder's token is still the newest and is saved.
	lc, err := a.Lease(ctx, "acct", ttl)
	if err != nil {
		t.Fatal(err)
	}
	stopKeepAlive(t, lc)
	time.Sleep(2 * ttl)
	if err := a.SaveFenced(ctx, "acct", tokA, lc.Fence()); err != nil {
		t.Errorf("save after an expiry nobody took over: %v", err)
	}
	_ = lc.Release(ctx)

	// A plain Save (an interactive login) supersedes the holder.
	ld, err := a.Lease(ctx, "acct", ttl)
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Release(ctx)
	if err := b.Save(ctx, "acct", tokB); err != nil {
		t.Fatal(err)
	}
	if err := a.SaveFenced(ctx, "acct", tokA, ld.Fence()); !errors.Is(err, auth.ErrLeaseLost) {
		t.Errorf("holder's save after a plain save: %v, want ErrLeaseLost", err)
	}
	if got, _ := b.Load(ctx, "acct"); got == nil || got.Access != tokB.Access {
		t.Errorf("stored token = %v, want the plain save's", got)
	}
}

func leaseWhenFree(t *testing.T, s *Store, key string, ttl time.Duration) auth.Lease {
	t.Helper()
	deadline := time.Now().Add(10 * ttl)
	for time.Now().Before(deadline) {
		l, err := s.Lease(t.Context(), key, ttl)
		if err == nil {
			return l
		}
		if !errors.Is(err, auth.ErrLeaseHeld) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("lease on %s not free within %s", key, 10*ttl)
	return nil
}

// expectSignal waits up to d for a value on ch.
func expectSignal(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: watch channel closed", what)
		}
	case <-time.After(d):
		t.Fatalf("%s: no notification within %s", what, d)
	}
}

func TestWatchPubSub(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := newStore(t, srv.URL(), testKey)
	b := newStore(t, srv.URL(), testKey)
	raw := rawClient(t, srv)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	ch := a.Watch(ctx, "acct")
	expectSignal(t, ch, 3*time.Second, "subscribed")

	// What is published is an announcement, never the token.
	sub := raw.Subscribe(ctx, a.Channel("acct"))
	defer sub.Close()
	if _, err := sub.ReceiveTimeout(ctx, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	tok := secretToken(time.Now())
	if err := b.Save(ctx, "acct", tok); err != nil {
		t.Fatal(err)
	}
	expectSignal(t, ch, 3*time.Second, "after another process saved")
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(msg.Payload, "S3CRET") || msg.Payload != savedMessage {
		t.Errorf("published payload = %q", msg.Payload)
	}
	if got, err := a.Load(ctx, "acct"); err != nil || got.Access != tok.Access {
		t.Fatalf("watcher's load: %v %v", got, err)
	}

	// A save for another account does not wake this watcher.
	if err := b.Save(ctx, "other", tok); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Error("notified for another account's save")
	case <-time.After(300 * time.Millisecond):
	}

	// Redis goes away and comes back: the watcher says so both times and
	// then hears saves again.
	srv.Stop()
	expectSignal(t, ch, 5*time.Second, "connection lost")
	srv.Restart()
	expectSignal(t, ch, 8*time.Second, "resubscribed after the restart")
	if err := b.Save(ctx, "acct", tok); err != nil {
		t.Fatal(err)
	}
	expectSignal(t, ch, 3*time.Second, "save after the restart")

	cancel()
	deadline := time.After(3 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("watch channel not closed within 3s of cancel")
		}
	}
}
