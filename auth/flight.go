package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// This file is the cache's single-flight core: one Login or Refresh at a
// time per account, on a context detached from the callers that started
// it and bounded by LoginTimeout; every caller waits for it bounded by its
// own context.

// flight is one Login/Refresh; waiters read tok and err after done closes.
type flight struct {
	done      chan struct{}
	proactive bool // started while a valid token was being served
	// afterReject: a Relogin after the broker rejected a token waits for
	// this flight; its token becomes the suspect (see FreshAfterRejection).
	afterReject bool
	tok         *Token
	err         error
}

// fetch returns a valid token, joining or starting a login.
func (c *Cache) fetch(ctx context.Context) (*Token, error) { return c.fetchFor(ctx, false) }

// fetchFor is fetch; afterReject marks the login as one made because the
// broker rejected the previous token.
func (c *Cache) fetchFor(ctx context.Context, afterReject bool) (*Token, error) {
	var err error
	// A failed ahead-of-expiry renewal is not a failed login: its waiters
	// try once more with a login of their own. Two rounds at most.
	for range 2 {
		c.mu.Lock()
		now := c.now()
		if t := c.cur.Load(); t.Valid(now) {
			c.mu.Unlock()
			return t, nil
		}
		if herr := c.sched.heldErr(now); herr != nil {
			c.mu.Unlock()
			return nil, herr
		}
		f := c.flight
		if f == nil {
			f = c.startFlightLocked(ctx, now, false)
		}
		if afterReject {
			f.afterReject = true
		}
		c.mu.Unlock()

		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("account %q: waiting for login: %w", c.name, ctx.Err())
		}
		if f.err == nil {
			return f.tok, nil
		}
		err = f.err
		if !f.proactive {
			break
		}
	}
	return nil, err
}

// startRenewal starts a background renewal if one is due and allowed. It
// returns the flight in progress, or nil when none is due.
func (c *Cache) startRenewal(ctx context.Context) *flight {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.flight != nil {
		return c.flight
	}
	now := c.now()
	at, ok := c.sched.next(now, c.cur.Load(), false)
	if !ok {
		c.nextRenew.Store(math.MaxInt64)
		return nil
	}
	if now.Before(at) {
		c.nextRenew.Store(at.UnixNano())
		return nil
	}
	return c.startFlightLocked(ctx, now, true)
}

// startFlightLocked starts a Login/Refresh. background marks an
// ahead-of-expiry renewal, which counts against RenewPerHour.
func (c *Cache) startFlightLocked(parent context.Context, now time.Time, background bool) *flight {
	a := c.sched.plan(c.cur.Load(), c.last, now)
	if background || a.refresh {
		c.sched.record(now)
	}
	f := &flight{done: make(chan struct{}), proactive: a.usable}
	c.flight = f
	c.nextRenew.Store(math.MaxInt64)
	go c.runFlight(context.WithoutCancel(parent), f, a)
	return f
}

// runFlight does one Login/Refresh (or adopts the token another process
// sharing the store obtained) and publishes its result.
func (c *Cache) runFlight(base context.Context, f *flight, a attempt) {
	ctx, cancel := context.WithTimeout(base, c.loginTimeout)
	defer cancel()
	start := time.Now()
	kind := EventLogin
	if a.refresh {
		kind = EventRefresh
	}
	var tok *Token
	tk, err := c.store.begin(ctx, f.proactive, a)
	if err == nil {
		defer c.store.end(tk)
		if tk.adopt != nil {
			c.adopted(f, a.base, tk)
			return
		}
		tok, kind, err = c.obtain(ctx, tk.attempt)
	}
	now := c.now()
	if err == nil {
		tok, err = c.check(tok, now)
	}
	if err != nil {
		f.err = fmt.Errorf("account %q: %s: %w", c.name, kind, err)
		c.store.end(tk)
		c.failed(f, kind, now, time.Since(start))
		close(f.done)
		return
	}

	c.saveMu.Lock()
	saveErr := c.store.keep(base, tok, tk)
	c.mu.Lock()
	c.serveLocked(tok, now, f.proactive && a.base != nil && !a.base.Expiry.IsZero() && !tok.Expiry.After(a.base.Expiry), f)
	c.saveErr = saveErr
	if f.afterReject {
		c.suspect.Store(tok)
	}
	c.mu.Unlock()
	c.saveMu.Unlock()

	if kind == EventRefresh {
		c.refreshes.Add(1)
	} else {
		c.logins.Add(1)
	}
	c.log.Info("got token", "how", kind, "expires", tok.Expiry, "took", time.Since(start).Round(time.Millisecond))
	c.emit(kind, nil)
	if saveErr != nil {
		c.log.Warn("token in use but not saved", "err", saveErr)
	}
	c.emit(EventSaved, saveErr)
	f.tok = tok
	close(f.done)
}

// adopted ends f with tk.adopt, the token another process obtained.
func (c *Cache) adopted(f *flight, old *Token, tk *ticket) {
	tok, now := tk.adopt, c.now()
	c.store.end(tk)
	c.saveMu.Lock()
	c.mu.Lock()
	c.serveLocked(tok, now, f.proactive && old != nil && !old.Expiry.IsZero() && !tok.Expiry.After(old.Expiry), f)
	c.saveErr = nil
	if f.afterReject {
		c.suspect.Store(tok)
	}
	c.mu.Unlock()
	c.saveMu.Unlock()

	if c.restorer != nil {
		c.restorer.Restore(tok)
	}
	if tk.fromMemory {
		c.log.Debug("waiting flight ends with the token picked up from the store", "expires", tok.Expiry)
	} else {
		c.log.Info("picked up the token another authproxy obtained", "expires", tok.Expiry)
	}
	c.emit(EventSynced, nil)
	f.tok = tok
	close(f.done)
}

// obtain refreshes when a says so and the broker can, and logs in
// otherwise. kind is EventRefresh or EventLogin: whichever call produced
// the result.
func (c *Cache) obtain(ctx context.Context, a attempt) (*Token, string, error) {
	if a.refresh && c.refresher != nil {
		tok, err := c.refresher.Refresh(ctx, a.base)
		if err == nil {
			return tok, EventRefresh, nil
		}
		var le *LoginError
		if !errors.Is(err, ErrRefreshImpossible) && !(errors.As(err, &le) && !a.usable) {
			return nil, EventRefresh, err
		}
		c.log.Info("refresh not possible; logging in", "err", err)
	}
	tok, err := c.login.Login(ctx)
	return tok, EventLogin, err
}

// check rejects what cannot be served and stamps Obtained.
func (c *Cache) check(t *Token, now time.Time) (*Token, error) {
	if t == nil || t.Access == "" {
		return nil, errors.New("broker returned no token")
	}
	t = stamp(t, now)
	if !t.Valid(now) {
		return nil, fmt.Errorf("broker returned a token that expired at %s", t.Expiry.UTC().Format(time.RFC3339))
	}
	return t, nil
}

// stamp returns t with Obtained set, copying rather than changing t.
func stamp(t *Token, now time.Time) *Token {
	if !t.Obtained.IsZero() {
		return t
	}
	cp := *t
	cp.Obtained = now
	return &cp
}

// serveLocked makes t the current token. f, if not nil, is the flight that
// produced it.
func (c *Cache) serveLocked(t *Token, now time.Time, noGain bool, f *flight) {
	c.cur.Store(t)
	c.last = t
	c.sched.served(t, noGain)
	c.lastErr = nil
	c.needsLogin = false
	if f != nil && c.flight == f {
		c.flight = nil
	}
	c.updateNextRenewLocked(now)
	c.notifyLocked()
}

// failed records f's error.
func (c *Cache) failed(f *flight, kind string, now time.Time, took time.Duration) {
	err := f.err
	ev := EventLoginFailed
	if kind == EventRefresh {
		ev = EventRefreshFailed
	}
	c.mu.Lock()
	c.lastErr = err
	needsLogin := errors.Is(err, ErrLoginRequired)
	c.needsLogin = needsLogin
	if c.sched.failed(now, err) {
		ev = EventRateLimited
	}
	if c.flight == f {
		c.flight = nil
	}
	c.updateNextRenewLocked(now)
	c.notifyLocked()
	c.mu.Unlock()

	c.failures.Add(1)
	level := slog.LevelWarn
	if needsLogin {
		level = slog.LevelInfo
	}
	if f.proactive {
		c.log.Log(context.Background(), level, "renewal failed; still serving the current token",
			"how", kind, "err", err, "took", took.Round(time.Millisecond))
	} else {
		c.log.Log(context.Background(), level, "no token", "how", kind, "err", err,
			"took", took.Round(time.Millisecond))
	}
	c.emit(ev, err)
}
