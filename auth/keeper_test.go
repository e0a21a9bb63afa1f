package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth/authtest"
)

// leaseStore is a memStore that is a Leaser (and counts its leases), for
// checking which stores get lease code.
type leaseStore struct {
	*memStore
	leases, fenced int
	err            error // Lease's answer when set
}

type memLease struct{ fence int64 }

func (l memLease) Fence() int64                { return l.fence }
func (memLease) Release(context.Context) error { return nil }

func (s *leaseStore) Lease(context.Context, string, time.Duration) (Lease, error) {
	s.leases++
	if s.err != nil {
		return nil, s.err
	}
	return memLease{fence: int64(s.leases)}, nil
}

func (s *leaseStore) SaveFenced(ctx context.Context, key string, t *Token, _ int64) error {
	s.fenced++
	return s.Save(ctx, key, t)
}

func TestNewKeeper(t *testing.T) {
	if _, ok := newKeeper("a", nil, sharedOptions{}).(plainStore); !ok {
		t.Error("no store: not plain")
	}
	if _, ok := newKeeper("a", newMemStore(), sharedOptions{}).(plainStore); !ok {
		t.Error("a Store that is not a Leaser: not plain")
	}
	k, ok := newKeeper("a", &leaseStore{memStore: newMemStore()}, sharedOptions{}).(*sharedStore)
	if !ok || k.watcher != nil {
		t.Errorf("a Leaser: %T, want *sharedStore without a watcher", k)
	}
}

// TestSharedStoreLogin: with a Leaser store every login holds the lease
// and saves with its fence; a token another process saved meanwhile is
// adopted without a broker call.
func TestSharedStoreLogin(t *testing.T) {
	clk := authtest.Fixed(t0)
	b := &fakeBroker{now: clk.Now, life: time.Hour}
	st := &leaseStore{memStore: newMemStore()}
	c := NewCache("acct", b, st, CacheOptions{Now: clk.Now})
	tok, err := c.Token(t.Context())
	if err != nil || st.leases != 1 || st.fenced != 1 || st.get("acct") != tok {
		t.Fatalf("first login: %v %v, leases %d, fenced saves %d", tok, err, st.leases, st.fenced)
	}

	other := &Token{Access: "from-another-process", Obtained: t0, Expiry: t0.Add(time.Hour)}
	st.memStore.tokens["acct"] = other
	got, err := c.Relogin(t.Context(), tok)
	if err != nil || got != other || b.logins.Load() != 1 {
		t.Fatalf("after a rejection: %v %v after %d logins; want the stored token, no login", got, err, b.logins.Load())
	}

	// The store fails: a login without a valid token goes ahead alone.
	st.err = errors.New("connection refused")
	st.memStore.err = st.err
	c.Invalidate(other)
	if _, err := c.Token(t.Context()); err != nil || b.logins.Load() != 2 || st.fenced != 1 {
		t.Fatalf("store down: %v after %d logins", err, b.logins.Load())
	}
	if s := c.Status(); s.StoreError == "" {
		t.Errorf("status shows no store error: %+v", s)
	}
}
