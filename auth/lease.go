package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Leaser is implemented by a Store that several authproxy processes share
// (redisstore). With it, a Cache takes the account's lease around every
// Login and Refresh, so that one process at a time talks to the broker, and
// the others pick up the token it saves.
type Leaser interface {
	// Lease takes key's lease for ttl and returns at once: an error wrapping
	// ErrLeaseHeld when another holder has it, any other error when the
	// store cannot be reached. The implementation keeps a held lease alive
	// until Release; a holder that dies loses it ttl later.
	Lease(ctx context.Context, key string, ttl time.Duration) (Lease, error)
	// SaveFenced is Save, refused with an error wrapping ErrLeaseLost (and
	// nothing stored) when a lease newer than the one that gave fence has
	// been granted since.
	SaveFenced(ctx context.Context, key string, t *Token, fence int64) error
}

// Lease is a held lease.
type Lease interface {
	// Fence is the lease's fencing token: larger for every later lease.
	Fence() int64
	// Release gives the lease up; calling it twice is harmless.
	Release(ctx context.Context) error
}

// Watcher is implemented by a shared Store (a Leaser) that announces
// changes; a Cache watches only a Store that is a Leaser too.
type Watcher interface {
	// Watch returns a channel that receives a value soon after any process
	// saves key's token, and when the connection to the store is lost or
	// re-established. Values coalesce; the channel is closed once ctx is
	// done.
	Watch(ctx context.Context, key string) <-chan struct{}
}

// Lease errors. Test with errors.Is.
var (
	ErrLeaseHeld = errors.New("lease held by another process")
	ErrLeaseLost = errors.New("lease superseded by another holder")
)

// Shared-store defaults; see CacheOptions.
const (
	DefaultLeaseTTL     = 10 * time.Second
	DefaultSyncInterval = 5 * time.Second

	// leasePoll is how often a Cache waiting for another process's login
	// re-reads the store and retries the lease.
	leasePoll = 100 * time.Millisecond
)

// EventSynced: a token another process obtained was picked up from the
// shared Store (no broker call).
const EventSynced = "synced"

// sharedOptions configure a sharedStore.
type sharedOptions struct {
	name         string
	log          *slog.Logger
	now          func() time.Time
	policy       policy // for which stored tokens may be adopted
	leaseTTL     time.Duration
	syncInterval time.Duration
	emit         func(kind string, err error)
	mem          local // the cache the store is kept in step with

	plain   plainStore // the same Store, for plain loads and saves
	leaser  Leaser
	watcher Watcher // nil: the store announces nothing
}

// sharedStore is a Store several authproxy processes share: every login
// takes the account's lease, so that one process at a time talks to the
// broker, and the others pick up the token it saves (with watch, as soon
// as it is announced).
type sharedStore struct {
	sharedOptions

	mu  sync.Mutex
	err error // the last store call's failure, nil while it works
}

func (s *sharedStore) health() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// setHealth records whether the last call to the store worked, logging
// each change.
func (s *sharedStore) setHealth(err error) {
	s.mu.Lock()
	was := s.err
	s.err = err
	s.mu.Unlock()
	switch {
	case err != nil && was == nil:
		s.log.Warn("token store failing; serving tokens from memory", "err", err)
	case err == nil && was != nil:
		s.log.Info("token store reachable again")
	}
}

func (s *sharedStore) load(ctx context.Context) (*Token, error) { return s.plain.load(ctx) }

func (s *sharedStore) save(ctx context.Context, t *Token) error { return s.plain.save(ctx, t) }

// begin takes the account's lease, then adopts a token another process
// saved meanwhile if there is one, else lets the broker call go ahead
// (starting from the newest token known, so a rotating refresh token is
// never spent twice). While another process holds the lease it waits for
// that process's token. When the store cannot be reached it postpones a
// renewal while the current token has life left, and otherwise lets the
// call go ahead without the lease, loudly.
func (s *sharedStore) begin(ctx context.Context, proactive bool, a attempt) (*ticket, error) {
	wait := time.NewTimer(0)
	<-wait.C
	defer wait.Stop()
	waited := false
	for {
		lease, err := s.leaser.Lease(ctx, s.name, s.leaseTTL)
		switch {
		case err == nil:
			s.setHealth(nil)
			tk := &ticket{attempt: a, lease: lease}
			st, _ := s.loadHealth(ctx)
			now := s.now()
			if t := s.policy.adoptable(st, a.base, proactive, now); t != nil {
				tk.adopt = t
				return tk, nil
			}
			if st != nil && (a.base == nil || st.Obtained.After(a.base.Obtained)) && (st.Valid(now) || st.Refresh != "") {
				// Saved by another process since we last looked: renew that.
				tk.attempt = s.policy.plan(st, st, now)
			}
			return tk, nil

		case errors.Is(err, ErrLeaseHeld):
			s.setHealth(nil)
			if !waited {
				waited = true
				s.log.Debug("another authproxy holds the token lease; waiting for its token")
			}
			cur, changed := s.mem.current()
			if t := s.policy.adoptable(cur, a.base, proactive, s.now()); t != nil {
				return &ticket{attempt: a, adopt: t, fromMemory: true}, nil
			}
			if st, err := s.loadHealth(ctx); err == nil {
				if t := s.policy.adoptable(st, a.base, proactive, s.now()); t != nil {
					return &ticket{attempt: a, adopt: t}, nil
				}
			}
			wait.Reset(leasePoll)
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("waiting for another authproxy sharing the token store: %w", ctx.Err())
			case <-changed:
				if !wait.Stop() {
					<-wait.C
				}
			case <-wait.C:
			}

		case ctx.Err() != nil:
			return nil, fmt.Errorf("token lease: %w", ctx.Err())

		default:
			s.setHealth(err)
			if a.usable && !s.policy.lastResort(a.base, s.now()) {
				return nil, fmt.Errorf("token store unreachable; renewal postponed while the current token is valid: %w", err)
			}
			how := EventLogin
			if a.refresh {
				how = EventRefresh
			}
			s.log.Error("token store unreachable: getting a token without the shared lease; other authproxy processes sharing the store may do the same",
				"how", how, "err", err)
			return &ticket{attempt: a}, nil
		}
	}
}

// keep stores t with the lease's fence when one is held (then releases
// it), plainly when the store could not be reached for the lease.
func (s *sharedStore) keep(ctx context.Context, t *Token, tk *ticket) error {
	if tk.lease == nil {
		err := s.plain.save(ctx, t)
		s.setHealth(err)
		return err
	}
	defer s.end(tk)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	defer cancel()
	err := s.leaser.SaveFenced(sctx, s.name, t, tk.lease.Fence())
	switch {
	case errors.Is(err, ErrLeaseLost):
		s.setHealth(nil)
		s.log.Warn("another authproxy took over the token lease before this token was saved; serving it but not sharing it", "err", err)
	default:
		s.setHealth(err)
	}
	return err
}

// end releases tk's lease if it is still held.
func (s *sharedStore) end(tk *ticket) {
	if tk == nil || tk.lease == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), saveTimeout)
	defer cancel()
	if err := tk.lease.Release(ctx); err != nil {
		s.log.Debug("could not release the token lease; it will expire", "err", err)
	}
	tk.lease = nil
}

// loadHealth reads the account's token from the store; nothing stored is
// (nil, nil). It records the store's health.
func (s *sharedStore) loadHealth(ctx context.Context) (*Token, error) {
	lctx, cancel := context.WithTimeout(ctx, saveTimeout)
	defer cancel()
	t, err := s.plain.load(lctx)
	s.setHealth(err)
	return t, err
}

// watch keeps the cache in step with the store until ctx is done: it
// re-reads on every announcement and every SyncInterval.
func (s *sharedStore) watch(ctx context.Context) {
	if s.watcher == nil {
		return
	}
	ch := s.watcher.Watch(ctx, s.name)
	tick := time.NewTicker(s.syncInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ch:
			if !ok {
				ch = nil
			}
		case <-tick.C:
		}
		s.syncOnce(ctx, s.mem)
	}
}

// syncOnce lets c adopt a newer token another process saved, or puts c's
// token back into a store that lost it (restarted empty, or was
// unreachable when the token was obtained).
func (s *sharedStore) syncOnce(ctx context.Context, c local) {
	st, err := s.loadHealth(ctx)
	if err != nil {
		return
	}
	if cur := c.pickup(st); cur != nil {
		s.push(ctx, c, cur)
	}
}

// push saves cur, the token c serves, under the lease, unless the store
// got a newer one meanwhile.
func (s *sharedStore) push(ctx context.Context, c local, cur *Token) {
	lease, err := s.leaser.Lease(ctx, s.name, s.leaseTTL)
	if err != nil {
		if !errors.Is(err, ErrLeaseHeld) {
			s.setHealth(err)
		}
		return
	}
	tk := &ticket{lease: lease}
	defer s.end(tk)
	st, err := s.loadHealth(ctx)
	if err != nil || (st.Valid(s.now()) && !cur.Obtained.After(st.Obtained)) {
		return
	}
	ok, err := c.putBack(cur, func() error {
		sctx, cancel := context.WithTimeout(ctx, saveTimeout)
		defer cancel()
		return s.leaser.SaveFenced(sctx, s.name, cur, lease.Fence())
	})
	switch {
	case !ok:
	case err != nil:
		s.log.Warn("could not put the token back into the token store", "err", err)
	default:
		s.setHealth(nil)
		s.log.Info("token saved to the token store again", "expires", cur.Expiry)
		s.emit(EventSaved, nil)
	}
}
