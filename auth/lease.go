package auth

import (
	"context"
	"errors"
	"fmt"
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

// Watcher is implemented by a shared Store that announces changes.
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

// shared says how a flight went when the Store is a Leaser.
type shared struct {
	lease      Lease // held: save with its fence, then release
	adopted    bool  // the token came from the store
	fromMemory bool  // ... and the sync loop already serves it
}

func (s *shared) isAdopted() bool { return s != nil && s.adopted }

// release gives the lease up if it is still held.
func (s *shared) release(c *Cache) {
	if s == nil || s.lease == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), saveTimeout)
	defer cancel()
	if err := s.lease.Release(ctx); err != nil {
		c.log.Debug("could not release the token lease; it will expire", "err", err)
	}
	s.lease = nil
}

// obtainFlight is obtain, coordinated with other processes when the Store
// is a Leaser.
func (c *Cache) obtainFlight(ctx context.Context, f *flight, old *Token, usable, tryRefresh bool) (*Token, string, *shared, error) {
	if l, ok := c.store.(Leaser); ok {
		return c.obtainShared(ctx, l, f, old, usable, tryRefresh)
	}
	tok, kind, err := c.obtain(ctx, old, usable, tryRefresh)
	return tok, kind, nil, err
}

// obtainShared takes the account's lease, then uses a token another process
// saved meanwhile if there is one, else logs in or refreshes (starting from
// the newest token known, so a rotating refresh token is never spent twice).
// While another process holds the lease it waits for that process's token.
// When the store cannot be reached it postpones a renewal while the current
// token has life left, and otherwise goes ahead alone, loudly.
func (c *Cache) obtainShared(ctx context.Context, l Leaser, f *flight, old *Token, usable, tryRefresh bool) (*Token, string, *shared, error) {
	kind := EventLogin
	if tryRefresh {
		kind = EventRefresh
	}
	wait := time.NewTimer(0)
	<-wait.C
	defer wait.Stop()
	waited := false
	for {
		lease, err := l.Lease(ctx, c.name, c.leaseTTL)
		switch {
		case err == nil:
			c.storeHealth(nil)
			sh := &shared{lease: lease}
			st, _ := c.loadShared(ctx)
			now := c.now()
			if t := c.adoptable(st, old, f.proactive, now); t != nil {
				sh.adopted = true
				return t, EventSynced, sh, nil
			}
			base, baseUsable, refresh := old, usable, tryRefresh
			if st != nil && (old == nil || st.Obtained.After(old.Obtained)) && (st.Valid(now) || st.Refresh != "") {
				// Saved by another process since we last looked: renew that.
				_, refresher := c.broker.(Refresher)
				base, baseUsable = st, st.Valid(now)
				refresh = refresher && (baseUsable || st.Refresh != "")
				if refresh {
					kind = EventRefresh
				}
			}
			tok, k, err := c.obtain(ctx, base, baseUsable, refresh)
			return tok, k, sh, err

		case errors.Is(err, ErrLeaseHeld):
			c.storeHealth(nil)
			if !waited {
				waited = true
				c.log.Debug("another authproxy holds the token lease; waiting for its token")
			}
			c.mu.Lock()
			changed := c.changed
			c.mu.Unlock()
			now := c.now()
			if t := c.adoptable(c.cur.Load(), old, f.proactive, now); t != nil {
				return t, EventSynced, &shared{adopted: true, fromMemory: true}, nil
			}
			if st, err := c.loadShared(ctx); err == nil {
				if t := c.adoptable(st, old, f.proactive, c.now()); t != nil {
					return t, EventSynced, &shared{adopted: true}, nil
				}
			}
			wait.Reset(leasePoll)
			select {
			case <-ctx.Done():
				return nil, kind, nil, fmt.Errorf("waiting for another authproxy sharing the token store: %w", ctx.Err())
			case <-changed:
				if !wait.Stop() {
					<-wait.C
				}
			case <-wait.C:
			}

		case ctx.Err() != nil:
			return nil, kind, nil, fmt.Errorf("token lease: %w", ctx.Err())

		default:
			c.storeHealth(err)
			now := c.now()
			if usable && !c.lastResort(old, now) {
				return nil, kind, nil, fmt.Errorf("token store unreachable; renewal postponed while the current token is valid: %w", err)
			}
			c.log.Error("token store unreachable: getting a token without the shared lease; other authproxy processes sharing the store may do the same",
				"how", kind, "err", err)
			tok, k, err := c.obtain(ctx, old, usable, tryRefresh)
			return tok, k, nil, err
		}
	}
}

// adoptable returns st if it can be served instead of obtaining a new
// token: valid, not the token being replaced, and, for an ahead-of-expiry
// renewal, not itself due for renewal.
func (c *Cache) adoptable(st, old *Token, proactive bool, now time.Time) *Token {
	if !st.Valid(now) || (old != nil && st.Access == old.Access) {
		return nil
	}
	if proactive && !st.Expiry.IsZero() && !now.Before(c.refreshPoint(st)) {
		return nil
	}
	return st
}

// lastResort reports whether t is so close to expiry that it must be
// renewed even without the shared lease: within a fifth of its lifetime.
func (c *Cache) lastResort(t *Token, now time.Time) bool {
	if t == nil || t.Expiry.IsZero() {
		return false
	}
	window := t.Lifetime() / 5
	if window <= 0 {
		window = c.margin / 2
	}
	window = max(window, 2*minRenewSpacing)
	return !now.Before(t.Expiry.Add(-window))
}

// saveFlight stores a flight's token: with the lease's fence when one is
// held (then releases it), not at all when it came from the store.
func (c *Cache) saveFlight(ctx context.Context, t *Token, sh *shared) error {
	if sh == nil {
		err := c.save(ctx, t)
		if _, ok := c.store.(Leaser); ok {
			c.storeHealth(err)
		}
		return err
	}
	defer sh.release(c)
	if sh.adopted {
		return nil
	}
	l := c.store.(Leaser)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	defer cancel()
	err := l.SaveFenced(sctx, c.name, t, sh.lease.Fence())
	switch {
	case errors.Is(err, ErrLeaseLost):
		c.storeHealth(nil)
		c.log.Warn("another authproxy took over the token lease before this token was saved; serving it but not sharing it", "err", err)
	default:
		c.storeHealth(err)
	}
	return err
}

// loadShared reads the account's token from the store; nothing stored is
// (nil, nil). It records the store's health.
func (c *Cache) loadShared(ctx context.Context) (*Token, error) {
	lctx, cancel := context.WithTimeout(ctx, saveTimeout)
	defer cancel()
	t, err := c.store.Load(lctx, c.name)
	if errors.Is(err, ErrNotFound) {
		c.storeHealth(nil)
		return nil, nil
	}
	c.storeHealth(err)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// storeHealth records whether the last call to the shared store worked,
// logging each change.
func (c *Cache) storeHealth(err error) {
	c.mu.Lock()
	was := c.storeErr
	c.storeErr = err
	c.mu.Unlock()
	switch {
	case err != nil && was == nil:
		c.log.Warn("token store failing; serving tokens from memory", "err", err)
	case err == nil && was != nil:
		c.log.Info("token store reachable again")
	}
}

// syncLoop keeps the token in step with the shared store until ctx is
// done: it re-reads on every announcement and every SyncInterval.
func (c *Cache) syncLoop(ctx context.Context, w Watcher) {
	ch := w.Watch(ctx, c.name)
	tick := time.NewTicker(c.syncInterval)
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
		c.syncOnce(ctx)
	}
}

// syncOnce adopts a newer token another process saved, or puts this
// process's token back into a store that lost it (restarted empty, or was
// unreachable when the token was obtained).
func (c *Cache) syncOnce(ctx context.Context) {
	st, err := c.loadShared(ctx)
	if err != nil {
		return
	}
	now := c.now()
	c.mu.Lock()
	cur := c.cur.Load()
	ref := cur
	if ref == nil {
		ref = c.last // after Invalidate: the token the broker rejected
	}
	// A token whose fenced save was refused lost to the store's.
	superseded := errors.Is(c.saveErr, ErrLeaseLost)
	switch {
	case st.Valid(now) && (ref == nil || st.Access != ref.Access) &&
		(!cur.Valid(now) || superseded || !st.Obtained.Before(cur.Obtained)):
		if r, ok := c.broker.(Restorer); ok {
			r.Restore(st)
		}
		c.serveLocked(st, now, false, nil)
		c.saveErr = nil
		c.mu.Unlock()
		c.log.Info("picked up a token another authproxy saved", "expires", st.Expiry)
		c.emit(EventSynced, nil)
		return
	}
	push := cur.Valid(now) && c.flight == nil &&
		(!st.Valid(now) || (c.saveErr != nil && !superseded && st.Access != cur.Access && cur.Obtained.After(st.Obtained)))
	c.mu.Unlock()
	if push {
		c.push(ctx, cur)
	}
}

// push saves cur, the token being served, under the lease, unless the
// store got a newer one meanwhile.
func (c *Cache) push(ctx context.Context, cur *Token) {
	l, ok := c.store.(Leaser)
	if !ok {
		return
	}
	lease, err := l.Lease(ctx, c.name, c.leaseTTL)
	if err != nil {
		if !errors.Is(err, ErrLeaseHeld) {
			c.storeHealth(err)
		}
		return
	}
	sh := &shared{lease: lease}
	defer sh.release(c)
	st, err := c.loadShared(ctx)
	now := c.now()
	if err != nil || (st.Valid(now) && !cur.Obtained.After(st.Obtained)) {
		return
	}
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	if c.cur.Load() != cur {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, saveTimeout)
	defer cancel()
	err = l.SaveFenced(sctx, c.name, cur, lease.Fence())
	c.mu.Lock()
	if c.cur.Load() == cur {
		c.saveErr = err
	}
	c.mu.Unlock()
	if err != nil {
		c.log.Warn("could not put the token back into the token store", "err", err)
		return
	}
	c.storeHealth(nil)
	c.log.Info("token saved to the token store again", "expires", cur.Expiry)
	c.emit(EventSaved, nil)
}
