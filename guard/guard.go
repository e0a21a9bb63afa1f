// Package guard is authproxy's order guard (DESIGN.md "The order guard"):
// for the requests a broker package declares as orders, a kill switch
// (Pauses, kept in the state dir), a rate guard (Limiter: at most
// max_orders_per_second orders in any rolling second at the broker, excess
// orders queued FIFO for at most a second) and a journal (one fsynced JSON
// line per order in <state_dir>/journal/<IST date>.jsonl).
//
// guard knows no broker and no HTTP server: the proxy's pipeline asks it.
package guard

import (
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxOrdersPerSecond is SEBI's threshold above which a retail
// user's API orders need an exchange-registered algo.
const DefaultMaxOrdersPerSecond = 10

// MaxWait is the longest an order waits in line for the rate guard.
const MaxWait = time.Second

// Options configure a Guard.
type Options struct {
	StateDir string
	// Limits maps an account to its max_orders_per_second (0: no limit).
	Limits map[string]int
	Logger *slog.Logger
	Now    func() time.Time
	Clock  Clock // for the limiters; default real time
}

// Guard holds the kill switch, one limiter per account and the journal.
type Guard struct {
	pauses  *Pauses
	journal *Journal
	clock   Clock
	log     *slog.Logger
	now     func() time.Time

	mu       sync.RWMutex // guards limiters and limits (SetLimits on a reload)
	limiters map[string]*Limiter
	limits   map[string]int

	orders  *prometheus.CounterVec
	changes *prometheus.CounterVec
	paused  *prometheus.GaugeVec
}

// New opens the kill switch state and the journal under opts.StateDir.
func New(opts Options) (*Guard, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ps, err := OpenPauses(opts.StateDir)
	if err != nil {
		return nil, err
	}
	j, err := OpenJournal(JournalDir(opts.StateDir), opts.Now())
	if err != nil {
		return nil, err
	}
	g := &Guard{pauses: ps, journal: j, clock: opts.Clock, limiters: map[string]*Limiter{}, limits: map[string]int{},
		log: opts.Logger, now: opts.Now,
		orders: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "authproxy_orders_total",
			Help: "Order requests (place, modify, cancel) by account and outcome: ok, broker_error, paused, rate_limited, or the proxy's error code."},
			[]string{"account", "outcome"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "authproxy_pause_changes_total",
			Help: "Kill switch changes by account and action (pause, resume)."}, []string{"account", "action"}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "authproxy_account_paused",
			Help: "1 while the account's orders are stopped by the kill switch."}, []string{"account"}),
	}
	g.SetLimits(opts.Limits)
	for name := range opts.Limits {
		v := 0.0
		if _, ok := ps.Paused(name); ok {
			v = 1
		}
		g.paused.WithLabelValues(name).Set(v)
	}
	for _, name := range ps.All() {
		g.log.Warn("orders are paused (kill switch); `authproxy resume "+name+"` lets them through", "account", name)
	}
	return g, nil
}

// Collectors are the guard's metrics, for a Prometheus registry.
func (g *Guard) Collectors() []prometheus.Collector {
	return []prometheus.Collector{g.orders, g.changes, g.paused}
}

// Paused reports whether account's orders are stopped.
func (g *Guard) Paused(account string) bool {
	_, ok := g.pauses.Paused(account)
	return ok
}

// PausedSince reports since when account is paused.
func (g *Guard) PausedSince(account string) (time.Time, bool) {
	i, ok := g.pauses.Paused(account)
	return i.Since, ok
}

// PausedAccounts lists the paused accounts, sorted.
func (g *Guard) PausedAccounts() []string { return g.pauses.All() }

// SetLimits sets every account's max_orders_per_second (0: no limit), as
// at start and after a config reload. An account whose limit is unchanged
// keeps its limiter (and the orders in its line); one that is gone loses it.
func (g *Guard) SetLimits(limits map[string]int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	next := make(map[string]*Limiter, len(limits))
	for name, n := range limits {
		if old, ok := g.limiters[name]; ok && g.limits[name] == n {
			next[name] = old
			continue
		}
		next[name] = NewLimiter(n, time.Second, MaxWait, g.clock)
	}
	g.limiters = next
	g.limits = maps.Clone(limits)
}

// Limit is account's max_orders_per_second (0: off).
func (g *Guard) Limit(account string) int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.limits[account]
}

// Limiter returns account's limiter (nil: no limit).
func (g *Guard) Limiter(account string) *Limiter {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.limiters[account]
}

// SetPaused pauses or resumes accounts; the change is on disk and in effect
// when it returns, logged and counted. It returns the accounts that changed.
func (g *Guard) SetPaused(accounts []string, paused bool, by string) ([]string, error) {
	sort.Strings(accounts)
	changed, err := g.pauses.Set(accounts, paused, by, g.now())
	if err != nil {
		return nil, err
	}
	action, v := "resume", 0.0
	if paused {
		action, v = "pause", 1
	}
	for _, a := range changed {
		g.changes.WithLabelValues(a, action).Inc()
		g.paused.WithLabelValues(a).Set(v)
		if paused {
			g.log.Warn("orders paused (kill switch): order requests now get 423 paused", "account", a, "by", by)
		} else {
			g.log.Info("orders resumed (kill switch)", "account", a, "by", by)
		}
	}
	return changed, nil
}

// Record journals one order request and counts it. A journal that cannot be
// written is logged at error level (the order's answer is not held back).
func (g *Guard) Record(e Entry) {
	g.orders.WithLabelValues(e.Account, e.Outcome).Inc()
	if err := g.journal.Append(e); err != nil {
		g.log.Error("could not write the order journal", "account", e.Account, "err", err)
	}
}

// Recent returns up to n of the latest journal entries, newest first.
func (g *Guard) Recent(n int) []Entry { return g.journal.Recent(n) }

// Close closes the journal.
func (g *Guard) Close() error {
	if err := g.journal.Close(); err != nil {
		return fmt.Errorf("order journal: %w", err)
	}
	return nil
}
