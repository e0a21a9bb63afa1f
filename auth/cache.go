package auth

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Cache defaults; see CacheOptions.
const (
	DefaultMargin       = 15 * time.Minute
	DefaultLoginTimeout = 60 * time.Second
	DefaultRenewPerHour = 15
	DefaultFailureHold  = 10 * time.Second

	// minRenewSpacing is the shortest gap between two renewals of one
	// account whatever the token's lifetime.
	minRenewSpacing = time.Second
	// saveTimeout bounds one Store.Save made on behalf of a login.
	saveTimeout = 10 * time.Second
)

// Event kinds passed to CacheOptions.OnEvent.
const (
	EventLogin         = "login"          // a Login succeeded (or Set stored an interactive login)
	EventRefresh       = "refresh"        // a Refresh succeeded
	EventLoginFailed   = "login_failed"   // a Login failed; Err says why
	EventRefreshFailed = "refresh_failed" // a Refresh failed and no Login followed; Err says why
	EventInvalidated   = "invalidated"    // the broker rejected the current token
	EventRateLimited   = "rate_limited"   // the broker locked the account out; Err is a *RateLimitError chain
	EventSaved         = "saved"          // a new token was written to the Store; Err is set when that failed
	EventRejectedAgain = "rejected_again" // the broker refused a freshly obtained token too (RejectedAgain)
)

// DefaultRejectHold is how long an account whose fresh token was rejected
// too gets no more logins on rejections (DESIGN.md: at most 30s).
const DefaultRejectHold = 30 * time.Second

// CacheOptions tune a Cache. Zero fields take the defaults.
type CacheOptions struct {
	Now    func() time.Time // default time.Now
	Margin time.Duration    // refresh this long before expiry; default 15m
	Logger *slog.Logger     // nil discards
	// LoginTimeout bounds one Login or Refresh; default 60s.
	LoginTimeout time.Duration
	// RenewPerHour caps refreshes and ahead-of-expiry renewals in any
	// rolling hour (Tradovate allows 15); default 15, negative: no cap.
	// Logins made because there is no valid token are not capped.
	RenewPerHour int
	// FailureHold: after a *LoginError, calls needing a new token get the
	// same error without a broker call for this long; default 10s.
	FailureHold time.Duration
	// OnEvent, when set, is called synchronously (from the goroutine that
	// did the work, never under a lock) for each Event.
	OnEvent func(Event)
	// LeaseTTL: with a Store that is a Leaser, how long the account's lease
	// outlives a holder that died; default 10s.
	LeaseTTL time.Duration
	// SyncInterval: with a Leaser Store that is a Watcher, how often Run re-reads
	// the store besides every announcement; default 5s.
	SyncInterval time.Duration
	// RejectHold: after RejectedAgain, how long rejections cause no new
	// login (unless a request succeeds first); default and maximum 30s.
	RejectHold time.Duration
}

// Event reports something a Cache did, for metrics and status pages.
type Event struct {
	Account string
	Kind    string // one of the Event* constants
	Err     error
}

// Login is what a Cache needs of its broker: a login without a person. A
// Login that is also a Refresher renews through Refresh; one that is a
// Restorer is told about every token loaded from the store or picked up
// from another process; one that is an Interactive needing a browser is
// never renewed in the background. Every Broker is a Login.
type Login interface {
	// Login obtains a fresh token (see Broker.Login).
	Login(ctx context.Context) (*Token, error)
}

// Cache holds one account's token: it serves a valid token at once, renews
// it ahead of expiry (when: schedule.go), runs at most one Login or Refresh
// at a time no matter how many callers wait (flight.go), and saves every new
// token to its Store before serving it (through a keeper: keeper.go, and
// lease.go for a Store shared by several processes). All methods are safe
// for concurrent use.
type Cache struct {
	name      string
	login     Login
	refresher Refresher // nil: the broker cannot renew within its session
	restorer  Restorer  // nil: the broker need not know about stored tokens
	store     keeper
	now       func() time.Time
	log       *slog.Logger
	event     func(Event)

	loginTimeout time.Duration

	cur       atomic.Pointer[Token] // the token being served; nil after Invalidate
	nextRenew atomic.Int64          // unix ns at which Token starts a background renewal; MaxInt64: never

	saveMu sync.Mutex // held across "save to store, then serve" so store and memory agree

	mu         sync.Mutex
	last       *Token  // newest token known, even if expired or rejected (its Refresh may still work)
	flight     *flight // the Login/Refresh in progress
	changed    chan struct{}
	sched      schedule
	lastErr    error
	saveErr    error
	needsLogin bool

	holdUntil atomic.Int64          // unix ns of sched.heldUntil, 0: no hold (read on every request)
	suspect   atomic.Pointer[Token] // obtained after a rejection and not yet accepted

	logins, refreshes, failures, rejections atomic.Int64
}

// NewCache returns the cache for account name, whose tokens l obtains. s
// may be nil (nothing is persisted). Any Broker is a Login.
func NewCache(name string, l Login, s Store, opts CacheOptions) *Cache {
	c := &Cache{
		name:         name,
		login:        l,
		now:          opts.Now,
		event:        opts.OnEvent,
		loginTimeout: opts.LoginTimeout,
		changed:      make(chan struct{}),
	}
	if c.now == nil {
		c.now = time.Now
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c.log = logger.With("account", name)
	if c.loginTimeout <= 0 {
		c.loginTimeout = DefaultLoginTimeout
	}
	c.refresher, _ = l.(Refresher)
	c.restorer, _ = l.(Restorer)
	c.sched.policy = newPolicy(opts, l)
	leaseTTL, syncInterval := opts.LeaseTTL, opts.SyncInterval
	if leaseTTL <= 0 {
		leaseTTL = DefaultLeaseTTL
	}
	if syncInterval <= 0 {
		syncInterval = DefaultSyncInterval
	}
	c.store = newKeeper(name, s, sharedOptions{
		name: name, log: c.log, now: c.now, policy: c.sched.policy,
		leaseTTL: leaseTTL, syncInterval: syncInterval, emit: c.emit, mem: c,
	})
	c.nextRenew.Store(math.MaxInt64)
	return c
}

// newPolicy is opts' renewal rules, defaults filled in, for l.
func newPolicy(opts CacheOptions, l Login) policy {
	p := policy{
		margin:       opts.Margin,
		failureHold:  opts.FailureHold,
		renewPerHour: opts.RenewPerHour,
		rejectHold:   opts.RejectHold,
	}
	if p.margin <= 0 {
		p.margin = DefaultMargin
	}
	if p.failureHold <= 0 {
		p.failureHold = DefaultFailureHold
	}
	if p.renewPerHour == 0 {
		p.renewPerHour = DefaultRenewPerHour
	}
	if p.rejectHold <= 0 || p.rejectHold > DefaultRejectHold {
		p.rejectHold = DefaultRejectHold
	}
	_, p.renews = l.(Refresher)
	p.canRenew = p.renews
	if !p.renews {
		ia, ok := l.(Interactive)
		p.canRenew = !ok || !ia.NeedsBrowser()
	}
	return p
}

// Name is the account name.
func (c *Cache) Name() string { return c.name }

// Load reads the account's token from the store; call it once at startup. A
// valid stored token is served with no login; an expired one is kept only
// for its Refresh secret. Nothing stored is not an error.
func (c *Cache) Load(ctx context.Context) error {
	t, err := c.store.load(ctx)
	if err != nil {
		return fmt.Errorf("account %q: load token: %w", c.name, err)
	}
	if t == nil {
		return nil
	}
	if c.restorer != nil {
		c.restorer.Restore(t)
	}
	c.mu.Lock()
	now := c.now()
	used := false
	if c.cur.Load() == nil && c.last == nil {
		switch {
		case t.Valid(now):
			c.cur.Store(t)
			c.last = t
			used = true
		case t.Refresh != "":
			c.last = t
		}
	}
	c.updateNextRenewLocked(now)
	c.notifyLocked()
	c.mu.Unlock()
	switch {
	case used:
		c.log.Info("using stored token", "expires", t.Expiry)
	case !t.Valid(now):
		c.log.Info("stored token has expired", "expired", t.Expiry)
	}
	return nil
}

// Token returns a valid token. A cached one is returned at once; past its
// refresh point one background renewal starts and the still-valid token is
// returned. Without a valid token the caller waits (bounded by ctx) for the
// single login in progress, which runs on a context of its own so that one
// caller giving up does not abort it for the others. An expired token is
// never returned.
func (c *Cache) Token(ctx context.Context) (*Token, error) {
	if t := c.Current(ctx); t != nil {
		return t, nil
	}
	return c.fetch(ctx)
}

// Current returns the token if one is valid now (starting a renewal in the
// background when one is due), nil otherwise; it never waits.
func (c *Cache) Current(ctx context.Context) *Token {
	now := c.now()
	if t := c.cur.Load(); t.Valid(now) {
		if now.UnixNano() >= c.nextRenew.Load() {
			c.startRenewal(ctx)
		}
		return t
	}
	return nil
}

// Invalidate drops t after the broker rejected it. It is a no-op if t is no
// longer the current token. The store is left alone: the next login
// overwrites it.
func (c *Cache) Invalidate(t *Token) {
	if t == nil {
		return
	}
	c.mu.Lock()
	if !c.cur.CompareAndSwap(t, nil) {
		c.mu.Unlock()
		return
	}
	c.last = t
	c.sched.noGain = nil
	c.updateNextRenewLocked(c.now())
	c.notifyLocked()
	c.mu.Unlock()
	c.rejections.Add(1)
	c.log.Info("broker rejected token; dropped it")
	c.emit(EventInvalidated, nil)
}

// Relogin invalidates rejected and returns a fresh token: refreshed if the
// broker can, else a new login. Concurrent calls for the same rejected token
// share one login with each other and with Token callers.
func (c *Cache) Relogin(ctx context.Context, rejected *Token) (*Token, error) {
	c.Invalidate(rejected)
	return c.fetchFor(ctx, true)
}

// Set serves t, a token from an interactive login, after saving it to the
// store. t is served even when saving fails; the error then reports the
// failed save.
func (c *Cache) Set(ctx context.Context, t *Token) error {
	if t == nil || t.Access == "" {
		return fmt.Errorf("account %q: set: empty token", c.name)
	}
	now := c.now()
	t = stamp(t, now)
	if !t.Valid(now) {
		return fmt.Errorf("account %q: set: token expired at %s", c.name, t.Expiry.UTC().Format(time.RFC3339))
	}
	c.saveMu.Lock()
	saveErr := c.store.save(ctx, t)
	c.mu.Lock()
	c.serveLocked(t, now, false, nil)
	c.saveErr = saveErr
	c.mu.Unlock()
	c.saveMu.Unlock()

	c.logins.Add(1)
	c.log.Info("stored interactive login", "expires", t.Expiry)
	c.emit(EventLogin, nil)
	c.emit(EventSaved, saveErr)
	if saveErr != nil {
		return fmt.Errorf("account %q: token in use but not saved: %w", c.name, saveErr)
	}
	return nil
}

// Run renews the token ahead of expiry, with or without traffic, until ctx
// is done. It does nothing for brokers that only log in through a browser
// and cannot refresh. With a Leaser Store that is a Watcher it also picks up
// tokens other processes save.
func (c *Cache) Run(ctx context.Context) {
	done := make(chan struct{})
	go func() { defer close(done); c.store.watch(ctx) }()
	defer func() { <-done }()
	if !c.sched.canRenew {
		<-ctx.Done()
		return
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		c.mu.Lock()
		changed := c.changed
		busy := c.flight != nil
		at, ok := c.sched.next(c.now(), c.cur.Load(), busy)
		c.mu.Unlock()

		var fire <-chan time.Time
		if !busy && ok {
			d := at.Sub(c.now())
			if d <= 0 {
				if f := c.startRenewal(ctx); f != nil {
					select {
					case <-f.done:
					case <-ctx.Done():
						return
					}
					continue
				}
				d = minRenewSpacing
			}
			timer.Reset(d)
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-fire:
		}
		timer.Stop()
	}
}

func (c *Cache) updateNextRenewLocked(now time.Time) {
	at, ok := c.sched.next(now, c.cur.Load(), c.flight != nil)
	if !ok {
		c.nextRenew.Store(math.MaxInt64)
		return
	}
	c.nextRenew.Store(at.UnixNano())
}

// notifyLocked wakes Run.
func (c *Cache) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *Cache) emit(kind string, err error) {
	if c.event != nil {
		c.event(Event{Account: c.name, Kind: kind, Err: err})
	}
}
