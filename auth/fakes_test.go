package auth

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeBroker mints numbered tokens of a fixed lifetime. Login optionally
// waits for gate and fails with whatever setErr installed.
type fakeBroker struct {
	now         func() time.Time
	life        time.Duration // 0: tokens never expire
	withRefresh bool          // give tokens a Refresh secret
	gate        chan struct{} // nil: no waiting

	mu  sync.Mutex
	err error

	logins     atomic.Int64
	seq        atomic.Int64
	ctxDoneEnd atomic.Int64 // logins that ended with their ctx already done
}

func (b *fakeBroker) setErr(err error) {
	b.mu.Lock()
	b.err = err
	b.mu.Unlock()
}

func (b *fakeBroker) wait(ctx context.Context) error {
	if b.gate == nil {
		return nil
	}
	select {
	case <-b.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *fakeBroker) Login(ctx context.Context) (*Token, error) {
	b.logins.Add(1)
	if err := b.wait(ctx); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		b.ctxDoneEnd.Add(1)
	}
	b.mu.Lock()
	err := b.err
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return b.mint(), nil
}

func (b *fakeBroker) mint() *Token {
	n := b.seq.Add(1)
	now := b.now()
	t := &Token{
		Access:   Secret(fmt.Sprintf("access-%d", n)),
		Obtained: now,
		Meta:     map[string]string{"n": fmt.Sprint(n)},
	}
	if b.life > 0 {
		t.Expiry = now.Add(b.life)
	}
	if b.withRefresh {
		t.Refresh = Secret(fmt.Sprintf("refresh-%d", n))
	}
	return t
}

func (b *fakeBroker) Inject(r *http.Request, t *Token) error {
	r.Header.Set("Authorization", "Bearer "+t.Access.Reveal())
	return nil
}

func (b *fakeBroker) Rejected(resp *http.Response, _ func() []byte) bool {
	return resp.StatusCode == http.StatusUnauthorized
}

// refreshBroker adds Refresh to fakeBroker.
type refreshBroker struct {
	*fakeBroker
	refreshes  atomic.Int64
	refreshErr atomic.Pointer[error]
	lastOld    atomic.Pointer[Token]
}

func (b *refreshBroker) setRefreshErr(err error) { b.refreshErr.Store(&err) }

func (b *refreshBroker) Refresh(ctx context.Context, old *Token) (*Token, error) {
	b.refreshes.Add(1)
	b.lastOld.Store(old)
	if err := b.wait(ctx); err != nil {
		return nil, err
	}
	if p := b.refreshErr.Load(); p != nil && *p != nil {
		return nil, *p
	}
	return b.mint(), nil
}

// browserBroker logs in only through a browser.
type browserBroker struct{ *fakeBroker }

func (b *browserBroker) Login(ctx context.Context) (*Token, error) {
	b.logins.Add(1)
	return nil, fmt.Errorf("account needs a browser: %w", ErrLoginRequired)
}
func (b *browserBroker) AuthURL(state, redirectURI string) string { return "https://example.test/auth" }
func (b *browserBroker) Exchange(ctx context.Context, redirectURI string, cb url.Values) (*Token, error) {
	return b.mint(), nil
}
func (b *browserBroker) NeedsBrowser() bool { return true }

// memStore is an in-memory Store. Save optionally waits for gate.
type memStore struct {
	mu     sync.Mutex
	tokens map[string]*Token
	saves  atomic.Int64
	gate   chan struct{}
	err    error
	onSave func(key string, t *Token)
}

func newMemStore() *memStore { return &memStore{tokens: map[string]*Token{}} }

func (s *memStore) Load(ctx context.Context, key string) (*Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[key]
	if !ok {
		return nil, fmt.Errorf("memstore %q: %w", key, ErrNotFound)
	}
	return t, nil
}

func (s *memStore) Save(ctx context.Context, key string, t *Token) error {
	s.saves.Add(1)
	if s.onSave != nil {
		s.onSave(key, t)
	}
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.err != nil {
		return s.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[key] = t
	return nil
}

func (s *memStore) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, key)
	return nil
}

func (s *memStore) get(key string) *Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens[key]
}

// eventually polls cond for up to 5s (for tests outside synctest).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
