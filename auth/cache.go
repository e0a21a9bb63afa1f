package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
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
	// maxErrorText bounds Status.LastError.
	maxErrorText = 512
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

// Status states, in words a person reads at a glance.
const (
	StateReady      = "ready"
	StateRefreshing = "refreshing"
	StateNeedsLogin = "needs login"
	StateError      = "error"
	StateLockedOut  = "locked out"
	StateExpired    = "expired"
	StateEmpty      = "empty"
	// StateRejected: the broker refused a freshly obtained token too, so a
	// new login will not help for now (expired password, a broker-side
	// block); LastError holds the broker's message. See RejectedAgain.
	StateRejected = "rejected by broker"
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
	// SyncInterval: with a Store that is a Watcher, how often Run re-reads
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

// Status is a snapshot of one account's token state. It holds no secrets.
type Status struct {
	Account     string
	State       string // one of the State* constants
	Expiry      time.Time
	Obtained    time.Time
	LockedUntil time.Time
	LastError   string // redacted text, "" if none
	Logins      int64
	Refreshes   int64
	Failures    int64
	Rejections  int64
	HasToken    bool // a valid token is being served
	// StoreError is why the last call to a shared token store (Leaser)
	// failed, "" while it works. Valid tokens are served from memory
	// meanwhile.
	StoreError string
}

// Cache holds one account's token: it serves a valid token at once, renews
// it ahead of expiry (see refreshPoint; rate-limited), runs at most one Login or Refresh at a time no
// matter how many callers wait, and saves every new token to its Store
// before serving it. All methods are safe for concurrent use.
type Cache struct {
	name   string
	broker Broker
	store  Store
	now    func() time.Time
	log    *slog.Logger
	event  func(Event)

	margin       time.Duration
	loginTimeout time.Duration
	failureHold  time.Duration
	renewPerHour int
	canRenew     bool // the broker can get a token without a person
	renews       bool // the broker is a Refresher: renewal keeps its session

	cur       atomic.Pointer[Token] // the token being served; nil after Invalidate
	nextRenew atomic.Int64          // unix ns at which Token starts a background renewal; MaxInt64: never

	saveMu sync.Mutex // held across "save to store, then serve" so store and memory agree

	mu          sync.Mutex
	last        *Token  // newest token known, even if expired or rejected (its Refresh may still work)
	flight      *flight // the Login/Refresh in progress
	changed     chan struct{}
	noGain      *Token // renewed without a later expiry: renew it again only once it expires
	attempts    []time.Time
	lastAttempt time.Time
	lockedUntil time.Time
	lockErr     error
	failUntil   time.Time
	failErr     error
	lastErr     error
	saveErr     error
	needsLogin  bool

	rejectHold time.Duration
	rejectMsg  string    // the broker's words for the last rejection of a fresh token
	heldUntil  time.Time // RejectedAgain's hold; guarded by mu, mirrored in holdUntil

	holdUntil atomic.Int64          // unix ns of heldUntil, 0: no hold (read on every request)
	suspect   atomic.Pointer[Token] // obtained after a rejection and not yet accepted

	leaseTTL     time.Duration // shared store: see lease.go
	syncInterval time.Duration
	storeErr     error

	logins, refreshes, failures, rejections atomic.Int64
}

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

// NewCache returns the cache for account name. s may be nil (nothing is
// persisted).
func NewCache(name string, b Broker, s Store, opts CacheOptions) *Cache {
	c := &Cache{
		name:         name,
		broker:       b,
		store:        s,
		now:          opts.Now,
		event:        opts.OnEvent,
		margin:       opts.Margin,
		loginTimeout: opts.LoginTimeout,
		failureHold:  opts.FailureHold,
		renewPerHour: opts.RenewPerHour,
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
	if c.margin <= 0 {
		c.margin = DefaultMargin
	}
	if c.loginTimeout <= 0 {
		c.loginTimeout = DefaultLoginTimeout
	}
	if c.failureHold <= 0 {
		c.failureHold = DefaultFailureHold
	}
	if c.renewPerHour == 0 {
		c.renewPerHour = DefaultRenewPerHour
	}
	c.rejectHold = opts.RejectHold
	if c.rejectHold <= 0 || c.rejectHold > DefaultRejectHold {
		c.rejectHold = DefaultRejectHold
	}
	c.leaseTTL, c.syncInterval = opts.LeaseTTL, opts.SyncInterval
	if c.leaseTTL <= 0 {
		c.leaseTTL = DefaultLeaseTTL
	}
	if c.syncInterval <= 0 {
		c.syncInterval = DefaultSyncInterval
	}
	_, refresher := b.(Refresher)
	c.canRenew = refresher
	c.renews = refresher
	if !refresher {
		ia, ok := b.(Interactive)
		c.canRenew = !ok || !ia.NeedsBrowser()
	}
	c.nextRenew.Store(math.MaxInt64)
	return c
}

// Name is the account name.
func (c *Cache) Name() string { return c.name }

// Broker is the account's broker.
func (c *Cache) Broker() Broker { return c.broker }

// Load reads the account's token from the store; call it once at startup. A
// valid stored token is served with no login; an expired one is kept only
// for its Refresh secret. Nothing stored is not an error.
func (c *Cache) Load(ctx context.Context) error {
	if c.store == nil {
		return nil
	}
	t, err := c.store.Load(ctx, c.name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("account %q: load token: %w", c.name, err)
	}
	if t == nil {
		return nil
	}
	if r, ok := c.broker.(Restorer); ok {
		r.Restore(t)
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
	now := c.now()
	if t := c.cur.Load(); t.Valid(now) {
		if now.UnixNano() >= c.nextRenew.Load() {
			c.startRenewal(ctx)
		}
		return t, nil
	}
	return c.fetch(ctx)
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
	c.noGain = nil
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
	saveErr := c.save(ctx, t)
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
// and cannot refresh. With a Store that is a Watcher it also picks up
// tokens other processes save.
func (c *Cache) Run(ctx context.Context) {
	if w, ok := c.store.(Watcher); ok {
		done := make(chan struct{})
		go func() { defer close(done); c.syncLoop(ctx, w) }()
		defer func() { <-done }()
	}
	if !c.canRenew {
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
		at, ok := c.nextRenewalLocked(c.now())
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

// Status returns a snapshot of the account's state.
func (c *Cache) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	cur := c.cur.Load()
	st := Status{
		Account:    c.name,
		Logins:     c.logins.Load(),
		Refreshes:  c.refreshes.Load(),
		Failures:   c.failures.Load(),
		Rejections: c.rejections.Load(),
		HasToken:   cur.Valid(now),
	}
	shown := cur
	if shown == nil {
		shown = c.last
	}
	if shown != nil {
		st.Expiry, st.Obtained = shown.Expiry, shown.Obtained
	}
	if now.Before(c.lockedUntil) {
		st.LockedUntil = c.lockedUntil
	}
	switch {
	case c.lastErr != nil:
		st.LastError = c.redactLocked(c.lastErr.Error())
	case c.saveErr != nil:
		st.LastError = c.redactLocked("save token: " + c.saveErr.Error())
	case c.storeErr != nil:
		st.LastError = c.redactLocked("token store: " + c.storeErr.Error())
	}
	if c.storeErr != nil {
		st.StoreError = c.redactLocked(c.storeErr.Error())
	}
	held := now.Before(c.heldUntil)
	if held && c.rejectMsg != "" {
		st.LastError = c.redactLocked(c.rejectMsg)
	}
	switch {
	case !st.LockedUntil.IsZero():
		st.State = StateLockedOut
	case held:
		st.State = StateRejected
	case c.flight != nil:
		st.State = StateRefreshing
	case st.HasToken:
		st.State = StateReady
	case c.needsLogin || !c.canRenew:
		st.State = StateNeedsLogin
	case c.lastErr != nil:
		st.State = StateError
	case shown != nil:
		st.State = StateExpired
	default:
		st.State = StateEmpty
	}
	return st
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
		if herr := c.heldErrLocked(now); herr != nil {
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

// heldErrLocked is the error to return without a broker call: a lockout or
// a recent refused login.
func (c *Cache) heldErrLocked(now time.Time) error {
	if now.Before(c.lockedUntil) {
		return c.lockErr
	}
	if now.Before(c.failUntil) {
		return c.failErr
	}
	return nil
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
	at, ok := c.nextRenewalLocked(now)
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
	cur := c.cur.Load()
	old := cur
	if old == nil {
		old = c.last
	}
	usable := cur.Valid(now)
	_, refresher := c.broker.(Refresher)
	tryRefresh := refresher && old != nil && (usable || old.Refresh != "")
	if background || tryRefresh {
		c.recordAttemptLocked(now)
	}
	f := &flight{done: make(chan struct{}), proactive: usable}
	c.flight = f
	c.nextRenew.Store(math.MaxInt64)
	go c.runFlight(context.WithoutCancel(parent), f, old, usable, tryRefresh)
	return f
}

// runFlight does one Login/Refresh and publishes its result.
func (c *Cache) runFlight(base context.Context, f *flight, old *Token, usable, tryRefresh bool) {
	ctx, cancel := context.WithTimeout(base, c.loginTimeout)
	defer cancel()
	start := time.Now()
	tok, kind, sh, err := c.obtainFlight(ctx, f, old, usable, tryRefresh)
	defer sh.release(c)
	now := c.now()
	if err == nil && !sh.isAdopted() {
		tok, err = c.check(tok, now)
	}
	if err != nil {
		f.err = fmt.Errorf("account %q: %s: %w", c.name, kind, err)
		sh.release(c)
		c.failed(f, kind, now, time.Since(start))
		close(f.done)
		return
	}

	c.saveMu.Lock()
	saveErr := c.saveFlight(base, tok, sh)
	c.mu.Lock()
	c.serveLocked(tok, now, f.proactive && old != nil && !old.Expiry.IsZero() && !tok.Expiry.After(old.Expiry), f)
	c.saveErr = saveErr
	if f.afterReject {
		c.suspect.Store(tok)
	}
	c.mu.Unlock()
	c.saveMu.Unlock()

	if sh.isAdopted() {
		if r, ok := c.broker.(Restorer); ok {
			r.Restore(tok)
		}
		if sh.fromMemory {
			c.log.Debug("waiting flight ends with the token picked up from the store", "expires", tok.Expiry)
		} else {
			c.log.Info("picked up the token another authproxy obtained", "expires", tok.Expiry)
		}
		c.emit(EventSynced, nil)
		f.tok = tok
		close(f.done)
		return
	}

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

// obtain refreshes when it can and logs in otherwise. kind is EventRefresh
// or EventLogin: whichever call produced the result.
func (c *Cache) obtain(ctx context.Context, old *Token, usable, tryRefresh bool) (*Token, string, error) {
	if tryRefresh {
		r := c.broker.(Refresher)
		tok, err := r.Refresh(ctx, old)
		if err == nil {
			return tok, EventRefresh, nil
		}
		var le *LoginError
		if !errors.Is(err, ErrRefreshImpossible) && !(errors.As(err, &le) && !usable) {
			return nil, EventRefresh, err
		}
		c.log.Info("refresh not possible; logging in", "err", err)
	}
	tok, err := c.broker.Login(ctx)
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

// save writes t to the store on a context detached from any one caller.
func (c *Cache) save(ctx context.Context, t *Token) error {
	if c.store == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	defer cancel()
	return c.store.Save(ctx, c.name, t)
}

// serveLocked makes t the current token. f, if not nil, is the flight that
// produced it.
func (c *Cache) serveLocked(t *Token, now time.Time, noGain bool, f *flight) {
	c.cur.Store(t)
	c.last = t
	c.noGain = nil
	if noGain {
		c.noGain = t
	}
	c.lastErr, c.failErr, c.lockErr = nil, nil, nil
	c.failUntil, c.lockedUntil = time.Time{}, time.Time{}
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
	var (
		rl *RateLimitError
		le *LoginError
	)
	c.mu.Lock()
	c.lastErr = err
	needsLogin := errors.Is(err, ErrLoginRequired)
	c.needsLogin = needsLogin
	switch {
	case errors.As(err, &rl):
		ev = EventRateLimited
		c.lockedUntil = rl.Until
		if floor := now.Add(c.failureHold); c.lockedUntil.Before(floor) {
			c.lockedUntil = floor
		}
		c.lockErr = err
	case errors.As(err, &le) && le.StatusCode < 500 && !errors.Is(err, ErrBrokerFault):
		// A refusal is held; a broker's 5xx or an unreadable answer is a
		// fault, not a verdict on the credentials: the next request after
		// it recovers logs in.
		c.failUntil = now.Add(c.failureHold)
		c.failErr = err
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

// refreshPoint is when t should be renewed. A broker that renews within its
// session (a Refresher) renews at the earlier of Expiry-Margin and the
// lifetime's midpoint (a token shorter than the margin at its midpoint;
// with Obtained unknown, at Expiry-Margin). A broker without renewal logs in
// again only within the margin of expiry: see loginPoint.
func (c *Cache) refreshPoint(t *Token) time.Time {
	early := t.Expiry.Add(-c.margin)
	life := t.Lifetime()
	if life <= 0 {
		return early
	}
	if !c.renews {
		return loginPoint(t, early, life)
	}
	mid := t.Obtained.Add(life / 2)
	if !early.After(t.Obtained) || mid.Before(early) {
		return mid
	}
	return early
}

// nextRenewalLocked is when the next ahead-of-expiry renewal may start, or
// false when none is planned (no token, no expiry, a login in progress, or
// a broker that needs a person).
func (c *Cache) nextRenewalLocked(now time.Time) (time.Time, bool) {
	t := c.cur.Load()
	if !c.canRenew || c.flight != nil || t == nil || t.Expiry.IsZero() {
		return time.Time{}, false
	}
	at := c.refreshPoint(t)
	if c.noGain == t {
		// Renewing again before it expires would bring the same expiry.
		at = t.Expiry
	}
	at = latest(at, c.allowedLocked(now, t), c.lockedUntil, c.failUntil)
	return at, true
}

// allowedLocked is the earliest time the renewal limits allow: at most
// renewPerHour attempts in any hour, and attempts at least a tenth of the
// token's lifetime apart.
func (c *Cache) allowedLocked(now time.Time, t *Token) time.Time {
	var at time.Time
	if !c.lastAttempt.IsZero() {
		gap := t.Lifetime() / 10
		if gap <= 0 {
			gap = c.margin / 10
		}
		at = c.lastAttempt.Add(max(gap, minRenewSpacing))
	}
	if c.renewPerHour > 0 {
		c.pruneAttemptsLocked(now)
		if len(c.attempts) >= c.renewPerHour {
			at = latest(at, c.attempts[len(c.attempts)-c.renewPerHour].Add(time.Hour))
		}
	}
	return at
}

func (c *Cache) recordAttemptLocked(now time.Time) {
	c.lastAttempt = now
	if c.renewPerHour > 0 {
		c.pruneAttemptsLocked(now)
		c.attempts = append(c.attempts, now)
	}
}

// pruneAttemptsLocked forgets attempts older than an hour (and keeps the
// slice bounded should the clock jump back).
func (c *Cache) pruneAttemptsLocked(now time.Time) {
	cut := now.Add(-time.Hour)
	i := 0
	for i < len(c.attempts) && !c.attempts[i].After(cut) {
		i++
	}
	c.attempts = c.attempts[i:]
	if n := len(c.attempts); n > 4*c.renewPerHour {
		c.attempts = c.attempts[n-4*c.renewPerHour:]
	}
}

func (c *Cache) updateNextRenewLocked(now time.Time) {
	at, ok := c.nextRenewalLocked(now)
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

// redactLocked removes the account's token values from s, in case a broker
// echoed one into an error.
func (c *Cache) redactLocked(s string) string {
	for _, t := range []*Token{c.cur.Load(), c.last} {
		if t == nil {
			continue
		}
		vals := []Secret{t.Access, t.Refresh}
		for _, v := range t.Aux {
			vals = append(vals, v)
		}
		for _, v := range vals {
			if len(v) >= 4 {
				s = strings.ReplaceAll(s, v.Reveal(), Redacted)
			}
		}
	}
	if len(s) > maxErrorText {
		s = s[:maxErrorText] + "…"
	}
	return s
}

// latest returns the latest of ts.
func latest(ts ...time.Time) time.Time {
	var m time.Time
	for _, t := range ts {
		if t.After(m) {
			m = t
		}
	}
	return m
}
