package main

import (
	"context"
	"log/slog"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/proxy"
)

// liveProxy is the listener's handler: `run --reload` swaps the proxy
// behind it without closing the port.
type liveProxy struct{ p atomic.Pointer[proxy.Proxy] }

func (l *liveProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) { l.p.Load().ServeHTTP(w, r) }

func (l *liveProxy) current() *proxy.Proxy { return l.p.Load() }

// cacheRunner runs each token cache's refresh loop and stops the loops of
// caches a reload dropped.
type cacheRunner struct {
	ctx  context.Context
	wg   sync.WaitGroup
	mu   sync.Mutex
	stop map[*auth.Cache]context.CancelFunc
}

func newCacheRunner(ctx context.Context) *cacheRunner {
	return &cacheRunner{ctx: ctx, stop: map[*auth.Cache]context.CancelFunc{}}
}

// set makes the running loops exactly those of caches.
func (r *cacheRunner) set(caches []*auth.Cache) {
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := map[*auth.Cache]bool{}
	for _, c := range caches {
		keep[c] = true
		if _, ok := r.stop[c]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(r.ctx)
		r.stop[c] = cancel
		r.wg.Add(1)
		go func() { defer r.wg.Done(); c.Run(ctx) }()
	}
	for c, cancel := range r.stop {
		if !keep[c] {
			cancel()
			delete(r.stop, c)
		}
	}
}

func (r *cacheRunner) wait() { r.wg.Wait() }

// rewire builds the wiring for a re-read config. An account whose table
// is unchanged keeps its broker, token cache and counters (no new login);
// a new account loads its saved token, if any; a changed one starts afresh
// (its credentials may name another user). When [upstream], [store] or the
// refresh margin changed, every account is rebuilt (tokens still come from
// the store). It returns what changed, for the log.
func rewire(ctx context.Context, old *wiring, cfg *config.Config, logger *slog.Logger, now func() time.Time, onEvent []func(auth.Event)) (w *wiring, added, changed, removed, kept []string, err error) {
	oldByName := map[string]*config.Account{}
	for _, a := range old.cfg.Accounts {
		oldByName[a.Name] = a
	}
	global := !reflect.DeepEqual(old.cfg.Upstream, cfg.Upstream) || !reflect.DeepEqual(old.cfg.Store, cfg.Store) ||
		old.cfg.Limits.RefreshAhead != cfg.Limits.RefreshAhead
	if global {
		w, err = wire(ctx, cfg, logger, now, onEvent...)
		if err != nil {
			return nil, nil, nil, nil, nil, err
		}
	} else {
		w = &wiring{cfg: cfg, log: logger, store: old.store, client: old.client, upstream: old.upstream}
	}
	seen := map[string]bool{}
	for _, a := range cfg.Accounts {
		seen[a.Name] = true
		prev, existed := oldByName[a.Name]
		switch {
		case !existed:
			added = append(added, a.Name)
		case !reflect.DeepEqual(prev, a):
			changed = append(changed, a.Name)
		default:
			kept = append(kept, a.Name)
		}
		if global {
			continue
		}
		if existed && reflect.DeepEqual(prev, a) {
			for i, pa := range old.accounts {
				if pa.Name == a.Name {
					w.accounts = append(w.accounts, pa)
					if pa.Source != nil {
						w.caches = append(w.caches, old.cacheOf(i))
					}
				}
			}
			continue
		}
		if err := w.addAccount(ctx, a, now, !existed, onEvent); err != nil {
			return nil, nil, nil, nil, nil, err
		}
	}
	for name := range oldByName {
		if !seen[name] {
			removed = append(removed, name)
		}
	}
	return w, added, changed, removed, kept, nil
}

// cacheOf returns the token cache of w.accounts[i] (which has a Source).
func (w *wiring) cacheOf(i int) *auth.Cache {
	c, _ := w.accounts[i].Source.(*auth.Cache)
	return c
}

// reloadProxy re-reads the config and builds the proxy for it. listen and
// state_dir cannot change without a restart: they keep their values, with
// a warning.
func reloadProxy(ctx context.Context, old *wiring, reread func() (*config.Config, error), addr string, logger *slog.Logger,
	hooks []func(auth.Event), newProxy func(*wiring) (*proxy.Proxy, error)) (*wiring, *proxy.Proxy, error) {
	cfg, err := reread()
	if err != nil {
		return nil, nil, err
	}
	if cfg.Listen != old.cfg.Listen {
		logger.Warn("reload: listen changed; restart authproxy to move it", "listen", old.cfg.Listen, "new", cfg.Listen)
		cfg.Listen = old.cfg.Listen
	}
	if cfg.StateDir != old.cfg.StateDir {
		logger.Warn("reload: state_dir changed; restart authproxy to use it", "state_dir", old.cfg.StateDir, "new", cfg.StateDir)
		cfg.StateDir = old.cfg.StateDir
	}
	fixRedirects(cfg, addr)
	w, added, changed, removed, kept, err := rewire(ctx, old, cfg, logger, time.Now, hooks)
	if err != nil {
		return nil, nil, err
	}
	p, err := newProxy(w)
	if err != nil {
		return nil, nil, err
	}
	for _, a := range cfg.Accounts {
		if msg := redirectMismatch(addr, a); msg != "" {
			logger.Warn("browser login will not come back to this proxy", "account", a.Name, "problem", msg)
		}
	}
	logger.Info("reloaded the config", "config", cfg.Path, "added", added, "changed", changed, "removed", removed, "unchanged", kept)
	return w, p, nil
}
