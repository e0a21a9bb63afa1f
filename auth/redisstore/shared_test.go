package redisstore

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/authtest"
	"github.com/authproxy/authproxy/auth/redisstore/redistest"
)

// broker is one broker account that several authproxy processes share. It
// counts logins and refreshes, rotates refresh tokens and records any
// refresh token used twice.
type broker struct {
	now   func() time.Time
	life  time.Duration
	delay time.Duration // each Login takes this long

	mu       sync.Mutex
	seq      int
	used     map[string]bool
	live     map[string]bool // refresh tokens issued and not yet used
	reused   []string
	block    chan struct{} // when set, Login waits for it to close
	inLogin  chan struct{} // when set, closed when a Login starts
	loginsN  atomic.Int64
	refreshN atomic.Int64
}

func newBroker(life time.Duration) *broker {
	return &broker{now: time.Now, life: life, used: map[string]bool{}, live: map[string]bool{}}
}

func (b *broker) mint() *auth.Token {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	now := b.now()
	ref := fmt.Sprintf("refresh-%d", b.seq)
	b.live[ref] = true
	return &auth.Token{Access: auth.Secret(fmt.Sprintf("access-%d", b.seq)), Refresh: auth.Secret(ref),
		Obtained: now, Expiry: now.Add(b.life)}
}

func (b *broker) Login(ctx context.Context) (*auth.Token, error) {
	b.mu.Lock()
	block, in := b.block, b.inLogin
	b.inLogin = nil
	b.mu.Unlock()
	if in != nil {
		close(in)
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if b.delay > 0 {
		select {
		case <-time.After(b.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	b.loginsN.Add(1)
	return b.mint(), nil
}

func (b *broker) Refresh(ctx context.Context, old *auth.Token) (*auth.Token, error) {
	ref := old.Refresh.Reveal()
	b.mu.Lock()
	if b.used[ref] {
		b.reused = append(b.reused, ref)
		b.mu.Unlock()
		return nil, fmt.Errorf("refresh token used twice: %w", auth.ErrRefreshImpossible)
	}
	b.used[ref] = true
	b.mu.Unlock()
	b.refreshN.Add(1)
	return b.mint(), nil
}

func (b *broker) Inject(r *http.Request, t *auth.Token) error { return nil }
func (b *broker) Rejected(*http.Response, func() []byte) bool { return false }

func (b *broker) reusedTokens() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.reused...)
}

// process is one authproxy process: its own Store (connections) and Cache.
type process struct {
	store *Store
	cache *auth.Cache
	stop  context.CancelFunc
	done  chan struct{}
}

func startProcess(t *testing.T, url string, b auth.Broker, opts auth.CacheOptions) *process {
	t.Helper()
	s := newStore(t, url, testKey)
	return startProcessWith(t, s, s, b, opts)
}

// startProcessWith runs a Cache on store st (which may wrap s) and its Run
// loop until the test ends.
func startProcessWith(t *testing.T, s *Store, st auth.Store, b auth.Broker, opts auth.CacheOptions) *process {
	t.Helper()
	if opts.SyncInterval == 0 {
		opts.SyncInterval = 200 * time.Millisecond
	}
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = time.Second
	}
	if opts.RenewPerHour == 0 {
		opts.RenewPerHour = -1
	}
	c := auth.NewCache("acct", b, st, opts)
	if err := c.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &process{store: s, cache: c, stop: cancel, done: make(chan struct{})}
	go func() { defer close(p.done); c.Run(ctx) }()
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *process) kill() {
	p.stop()
	<-p.done
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !cond() {
		t.Fatalf("%s: not within %s", what, d)
	}
}

func TestSharedColdStartOneLogin(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	b := newBroker(time.Hour)
	b.delay = 300 * time.Millisecond
	procs := []*process{
		startProcess(t, srv.URL(), b, auth.CacheOptions{}),
		startProcess(t, srv.URL(), b, auth.CacheOptions{}),
		startProcess(t, srv.URL(), b, auth.CacheOptions{}),
	}
	const perProc = 30
	var wg sync.WaitGroup
	toks := make(chan string, 3*perProc)
	errs := make(chan error, 3*perProc)
	for _, p := range procs {
		for range perProc {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
				defer cancel()
				tok, err := p.cache.Token(ctx)
				if err != nil {
					errs <- err
					return
				}
				toks <- tok.Access.Reveal()
			})
		}
	}
	wg.Wait()
	close(toks)
	close(errs)
	for err := range errs {
		t.Fatalf("Token: %v", err)
	}
	seen := map[string]int{}
	for tok := range toks {
		seen[tok]++
	}
	if len(seen) != 1 || b.loginsN.Load() != 1 {
		t.Fatalf("%d logins, tokens served %v; want 1 login shared by all", b.loginsN.Load(), seen)
	}
	var logins int64
	for _, p := range procs {
		logins += p.cache.Status().Logins
	}
	if logins != 1 {
		t.Errorf("caches report %d logins, want 1", logins)
	}
}

func TestSharedRenewalOncePerPeriod(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	const life = 2 * time.Second // renewed at its midpoint: every second
	b := newBroker(life)
	procs := []*process{
		startProcess(t, srv.URL(), b, auth.CacheOptions{Margin: 100 * time.Millisecond}),
		startProcess(t, srv.URL(), b, auth.CacheOptions{Margin: 100 * time.Millisecond}),
		startProcess(t, srv.URL(), b, auth.CacheOptions{Margin: 100 * time.Millisecond}),
	}
	if _, err := procs[0].cache.Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// Steady traffic on every process; never an expired or failed token.
	var wg sync.WaitGroup
	var failures atomic.Int64
	for _, p := range procs {
		wg.Go(func() {
			for time.Since(start) < 5500*time.Millisecond {
				tok, err := p.cache.Token(t.Context())
				if err != nil || !tok.Valid(time.Now()) {
					failures.Add(1)
				}
				time.Sleep(25 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if n := failures.Load(); n != 0 {
		t.Errorf("%d calls failed or got an expired token", n)
	}
	if r := b.reusedTokens(); len(r) != 0 {
		t.Errorf("refresh tokens used twice: %v", r)
	}
	periods := int64(elapsed / (life / 2))
	got := b.refreshN.Load()
	if got < 2 || got > periods+1 || b.loginsN.Load() != 1 {
		t.Errorf("in %s (%d renewal periods): %d refreshes and %d logins across 3 processes; want one refresh per period and 1 login",
			elapsed.Round(time.Millisecond), periods, got, b.loginsN.Load())
	}
	var refreshes int64
	for _, p := range procs {
		refreshes += p.cache.Status().Refreshes
	}
	if refreshes != got {
		t.Errorf("caches report %d refreshes, the broker saw %d", refreshes, got)
	}
}

// dyingLeaser hands out leases whose holder then "dies": no keep-alive and
// no release, as when the process is killed mid-login.
type dyingLeaser struct {
	*Store
	t *testing.T
}

func (d dyingLeaser) Lease(ctx context.Context, key string, ttl time.Duration) (auth.Lease, error) {
	l, err := d.Store.Lease(ctx, key, ttl)
	if err == nil {
		stopKeepAlive(d.t, l)
	}
	return l, err
}

func TestSharedCrashedHolder(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	b := newBroker(time.Hour)
	const ttl = time.Second
	sa := newStore(t, srv.URL(), testKey)
	a := startProcessWith(t, sa, dyingLeaser{sa, t}, b, auth.CacheOptions{LeaseTTL: ttl})
	bProc := startProcess(t, srv.URL(), b, auth.CacheOptions{LeaseTTL: ttl})

	// A starts a login under the lease and hangs there.
	block, in := make(chan struct{}), make(chan struct{})
	b.mu.Lock()
	b.block, b.inLogin = block, in
	b.mu.Unlock()
	aDone := make(chan error, 1)
	go func() {
		_, err := a.cache.Token(t.Context())
		aDone <- err
	}()
	select {
	case <-in:
	case <-time.After(5 * time.Second):
		t.Fatal("A never started its login")
	}
	b.mu.Lock()
	b.block = nil
	b.mu.Unlock()

	// B needs a token: it waits for A's lease to lapse, then logs in.
	start := time.Now()
	tok, err := bProc.cache.Token(t.Context())
	took := time.Since(start)
	if err != nil {
		t.Fatalf("B: %v", err)
	}
	if took > ttl+2*time.Second {
		t.Errorf("B got a token after %s; want within the %s lease", took, ttl)
	}
	if b.loginsN.Load() != 1 {
		t.Errorf("logins = %d, want 1 (B's)", b.loginsN.Load())
	}

	// A wakes up with its own token: its save is refused (fenced), B's
	// token stays in the store, and A switches to it.
	close(block)
	if err := <-aDone; err != nil {
		t.Fatalf("A: %v", err)
	}
	got, err := bProc.store.Load(t.Context(), "acct")
	if err != nil || got.Access != tok.Access {
		t.Fatalf("stored token = %v, %v; want B's", got, err)
	}
	eventually(t, 5*time.Second, "A serves B's token", func() bool {
		at, err := a.cache.Token(t.Context())
		return err == nil && at.Access == tok.Access
	})
	if got, _ := bProc.store.Load(t.Context(), "acct"); got == nil || got.Access != tok.Access {
		t.Errorf("A's stale token overwrote B's in the store")
	}
}

func TestSharedStoreDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	b := newBroker(time.Hour)
	p := startProcess(t, srv.URL(), b, auth.CacheOptions{SyncInterval: 100 * time.Millisecond})
	ctx := t.Context()
	tok, err := p.cache.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	eventually(t, 5*time.Second, "status reports the store down", func() bool {
		st := p.cache.Status()
		return st.StoreError != "" && strings.Contains(st.LastError, "token store") && st.State == auth.StateReady
	})
	for range 20 {
		got, err := p.cache.Token(ctx)
		if err != nil || got.Access != tok.Access {
			t.Fatalf("with Redis down: %v, %v; want the token from memory", got, err)
		}
	}
	if n := b.loginsN.Load(); n != 1 {
		t.Errorf("logins = %d, want 1", n)
	}
	// Redis comes back empty: the health flag clears and the token is
	// shared again.
	srv.Restart()
	eventually(t, 10*time.Second, "store healthy and the token back in it", func() bool {
		got, err := p.store.Load(ctx, "acct")
		return p.cache.Status().StoreError == "" && err == nil && got.Access == tok.Access
	})
	if st := p.cache.Status(); st.LastError != "" {
		t.Errorf("last error after recovery: %q", st.LastError)
	}
}

func TestSharedLoginWhileStoreDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	b := newBroker(time.Hour)
	p := startProcess(t, srv.URL(), b, auth.CacheOptions{SyncInterval: 100 * time.Millisecond})
	srv.Stop()
	// No token and no store: the login goes ahead locally rather than
	// failing the request.
	tok, err := p.cache.Token(t.Context())
	if err != nil {
		t.Fatalf("login with Redis down: %v", err)
	}
	st := p.cache.Status()
	if st.StoreError == "" || !strings.Contains(st.LastError, "save token") || b.loginsN.Load() != 1 {
		t.Errorf("after a login with Redis down: %+v, %d logins", st, b.loginsN.Load())
	}
	srv.Restart()
	eventually(t, 10*time.Second, "the token saved once Redis is back", func() bool {
		got, err := p.store.Load(t.Context(), "acct")
		return err == nil && got.Access == tok.Access
	})
	q := startProcess(t, srv.URL(), b, auth.CacheOptions{})
	got, err := q.cache.Token(t.Context())
	if err != nil || got.Access != tok.Access || b.loginsN.Load() != 1 {
		t.Errorf("a new process got %v, %v after %d logins; want the saved token, no login", got, err, b.loginsN.Load())
	}
}

func TestSharedRenewalPostponedWhileStoreDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	clk := authtest.Fixed(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	b := newBroker(60 * time.Minute)
	b.now = clk.Now
	s := newStore(t, srv.URL(), testKey)
	c := auth.NewCache("acct", b, s, auth.CacheOptions{Now: clk.Now, Margin: 15 * time.Minute, RenewPerHour: -1, LeaseTTL: time.Second})
	ctx := t.Context()
	tok, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()

	// Past the refresh point (the 30m midpoint, earlier than expiry-margin):
	// the renewal is postponed, the token still served.
	clk.Advance(31 * time.Minute)
	if got, err := c.Token(ctx); err != nil || got != tok {
		t.Fatalf("past the refresh point: %v %v", got, err)
	}
	eventually(t, 10*time.Second, "the postponed renewal is recorded", func() bool {
		st := c.Status()
		return st.Failures == 1 && st.State == auth.StateReady && strings.Contains(st.LastError, "postponed")
	})
	if n := b.refreshN.Load() + b.loginsN.Load() - 1; n != 0 {
		t.Fatalf("%d broker calls while the renewal should wait for the store", n)
	}

	// In the last fifth of its life it is renewed anyway, alone.
	clk.Advance(19 * time.Minute)
	if got, err := c.Token(ctx); err != nil || got != tok {
		t.Fatalf("in the last fifth: %v %v", got, err)
	}
	eventually(t, 10*time.Second, "renewed without the store", func() bool {
		got, err := c.Token(ctx)
		return err == nil && got != tok && b.refreshN.Load() == 1
	})
}
