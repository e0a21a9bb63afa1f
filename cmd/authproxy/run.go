package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/certs"
	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/proxy"
)

var _ proxy.Cache = (*auth.Cache)(nil)

func cmdRun(ctx context.Context, args []string, e env) error {
	var cf commonFlags
	fs := newFlags("run", e)
	cf.register(fs, true)
	reload := fs.Bool("reload", false, "re-read rules.toml on SIGHUP: new and changed accounts take effect, unchanged ones keep their tokens")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("run takes no arguments, got %q", fs.Args())
	}
	cfg, err := loadConfig(&cf, e)
	if err != nil {
		return err
	}
	logOut := newBurstWriter(e.stderr, 5*time.Millisecond)
	defer logOut.Flush()
	logger := newLogger(logOut, &cf)
	var reread func() (*config.Config, error)
	if *reload {
		reread = func() (*config.Config, error) { return loadConfig(&cf, e) }
	}
	return serveReload(ctx, cfg, logger, nil, reread)
}

// serve runs the proxy until ctx is done. ready, when non-nil, receives the
// bound address once the proxy accepts connections.
func serve(ctx context.Context, cfg *config.Config, logger *slog.Logger, ready func(addr string, p *proxy.Proxy)) error {
	return serveReload(ctx, cfg, logger, ready, nil)
}

// serveReload is serve; with reread non-nil, SIGHUP re-reads the config
// and swaps in a proxy built from it on the same listener.
func serveReload(ctx context.Context, cfg *config.Config, logger *slog.Logger, ready func(addr string, p *proxy.Proxy), reread func() (*config.Config, error)) error {
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	// Before anything in it is opened: a dir others can write could hold a
	// planted CA, tokens or a lock-file symlink.
	if err := certs.CheckDir(cfg.StateDir); err != nil {
		return err
	}
	unlock, err := lockStateDir(cfg.StateDir)
	if err != nil {
		return err
	}
	defer unlock()

	ca, err := loadCA(cfg, logger)
	if err != nil {
		return err
	}
	ln, err := listen(ctx, cfg.Listen)
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	// OAuth redirect URIs default to the configured listen address; when it
	// asked for port 0 the real one is only known now.
	fixRedirects(cfg, addr)

	// Metrics and the dashboard read the status of whichever proxy serves
	// (a reload swaps it).
	live := &liveProxy{}
	trim := &idleTrimmer{}
	status := func() proxy.StatusReport { return live.current().Status() }
	metrics := proxy.NewMetrics(status)
	dash := proxy.NewDashboard(proxy.DashboardOptions{Config: cfg.Path, Status: status})
	pages := http.NewServeMux()
	pages.Handle("GET /metrics", metrics)
	pages.Handle("/", dash)
	hooks := []func(auth.Event){metrics.OnEvent, dash.OnEvent}
	w, err := wire(ctx, cfg, logger, time.Now, hooks...)
	if err != nil {
		ln.Close()
		return err
	}
	orderGuard, err := newGuard(cfg, logger)
	if err != nil {
		ln.Close()
		return err
	}
	defer orderGuard.Close()
	metrics.Registry().MustRegister(orderGuard.Collectors()...)
	dash.SetOrders(orderGuard.Recent)
	newProxy := func(w *wiring) (*proxy.Proxy, error) {
		cfg := w.cfg
		return proxy.New(proxy.Options{
			Extra:        pages,
			Observe:      func(rec proxy.RequestRecord) { trim.touch(); metrics.Observe(rec); dash.Observe(rec) },
			Logger:       logger,
			Listen:       addr,
			CA:           ca,
			Accounts:     w.accounts,
			Passthrough:  cfg.Passthrough,
			Upstream:     w.upstream,
			Users:        proxyUsers(cfg),
			UserAccounts: proxyUserAccounts(cfg),
			AllowPrivate: cfg.ProxyAuth != nil && cfg.ProxyAuth.AllowPrivateNetworks,
			MaxBody:      cfg.Limits.MaxBody,
			MaxTunnels:   cfg.Limits.MaxTunnels,
			IdleTimeout:  cfg.Limits.IdleTimeout,
			Guard:        orderGuard,
		})
	}
	p, err := newProxy(w)
	if err != nil {
		ln.Close()
		return err
	}
	live.p.Store(p)
	// A client that sends nothing within min(30 s, idle_timeout) is idle.
	srv := proxy.NewServer(logger, cfg.Limits.IdleTimeout)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		trim.touch()
		live.ServeHTTP(w, r)
	})

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	runner := newCacheRunner(runCtx)
	runner.set(w.caches)
	var wg sync.WaitGroup // old proxies draining after a reload
	wg.Add(1)
	go func() {
		defer wg.Done()
		warnExpiries(runCtx, status, logger)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		trim.run(runCtx, 500*time.Millisecond)
	}()
	callbacks, err := callbackListeners(ctx, cfg, addr, live.current, logger)
	if err != nil {
		ln.Close()
		return err
	}

	if err := writeRuntime(cfg.StateDir, addr); err != nil {
		logger.Warn("could not record the proxy address", "err", err)
	}
	defer os.Remove(filepath.Join(cfg.StateDir, "proxy.json"))

	for _, a := range cfg.Accounts {
		if msg := redirectMismatch(addr, a); msg != "" {
			logger.Warn("browser login will not come back to this proxy", "account", a.Name, "problem", msg)
		}
	}
	configured := 0
	for _, a := range w.accounts {
		if a.Source != nil {
			configured++
		}
	}
	logger.Info("authproxy listening", "addr", addr, "config", cfg.Path, "state_dir", cfg.StateDir,
		"accounts", len(w.accounts), "configured", configured, "ca", ca.CertPath())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln, handler) }()
	if ready != nil {
		ready(addr, p)
	}
	var hup chan os.Signal
	if reread != nil {
		hup = make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		logger.Info("send SIGHUP to re-read the config", "pid", os.Getpid(), "config", cfg.Path)
	}
serving:
	for {
		select {
		case <-ctx.Done():
			logger.Info("shutting down")
			break serving
		case err := <-errc:
			cancel()
			runner.wait()
			wg.Wait()
			return fmt.Errorf("serve: %w", err)
		case <-hup:
			nw, np, err := reloadProxy(runCtx, w, reread, addr, logger, hooks, newProxy)
			if err != nil {
				logger.Error("reload failed; still serving the previous config", "err", err)
				continue
			}
			old := live.current()
			live.p.Store(np)
			runner.set(nw.caches)
			orderGuard.SetLimits(orderLimits(nw.cfg))
			w = nw
			wg.Add(1)
			go func() {
				defer wg.Done()
				drainCtx, done := context.WithTimeout(runCtx, 30*time.Second)
				defer done()
				_ = old.Shutdown(drainCtx) // its open connections finish; new ones reach np
			}()
		}
	}
	shutCtx, done := context.WithTimeout(context.Background(), 8*time.Second)
	defer done()
	for _, s := range callbacks {
		_ = s.Shutdown(shutCtx)
	}
	_ = srv.Shutdown(shutCtx)
	_ = live.current().Shutdown(shutCtx)
	cancel()
	runner.wait()
	wg.Wait()
	logger.Info("stopped; tokens are saved", "state_dir", cfg.StateDir)
	return nil
}

// listen binds addr with SO_REUSEADDR (Go's default on Unix), so a restarted
// proxy can rebind at once. Accepted connections get no TCP keep-alive
// probes: their peers are local programs (or [proxy_auth] clients) whose
// idle connections idle_timeout closes, and the four setsockopt calls per
// connection were an eighth of the system calls of a new connection
// (BENCHMARKS.md).
func listen(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(ctx, "tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("listen on %s: %w: another program (perhaps another authproxy: `authproxy status` tells) already uses that port; stop it, or start this one elsewhere with --listen 127.0.0.1:PORT (or listen = ... in rules.toml)", addr, err)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

func fixRedirects(cfg *config.Config, addr string) {
	def := "http://" + cfg.Listen + "/callback/"
	for _, a := range cfg.Accounts {
		if ru := a.Values["redirect_uri"]; ru != "" && ru == def+a.Name && cfg.Listen != addr {
			a.Values["redirect_uri"] = "http://" + addr + "/callback/" + a.Name
		}
	}
}

// callbackListeners serves /callback/NAME on the host:port of any
// redirect_uri that is not the proxy's own address (a loopback listener).
func callbackListeners(ctx context.Context, cfg *config.Config, addr string, current func() *proxy.Proxy, logger *slog.Logger) ([]*http.Server, error) {
	seen := map[string]bool{addr: true}
	var out []*http.Server
	for _, a := range cfg.Accounts {
		ru := a.Values["redirect_uri"]
		if ru == "" || !a.Configured() {
			continue
		}
		u, err := url.Parse(ru)
		if err != nil || u.Scheme != "http" || seen[u.Host] {
			continue
		}
		host := u.Hostname()
		if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" {
			continue // not ours to serve: the broker redirects elsewhere
		}
		seen[u.Host] = true
		ln, err := listen(ctx, u.Host)
		if err != nil {
			return nil, fmt.Errorf("account %q redirect_uri %s: %w", a.Name, ru, err)
		}
		mux := http.NewServeMux()
		path := u.Path
		name := a.Name
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			r.SetPathValue("name", name)
			current().ServeCallback(w, r)
		})
		s := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = s.Serve(ln) }()
		logger.Info("serving OAuth callback", "account", a.Name, "addr", u.Host, "path", path)
		out = append(out, s)
	}
	return out, nil
}

// lockStateDir takes an exclusive lock so two proxies never share a state
// dir unknowingly.
func lockStateDir(dir string) (func(), error) {
	path := filepath.Join(dir, "authproxy.lock")
	// O_NOFOLLOW: a symlink planted as the lock file is never followed.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s (it must be a plain file, not a symlink): %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			other := ""
			if rt, err := readRuntime(dir); err == nil {
				other = fmt.Sprintf(" (pid %d on %s)", rt.PID, rt.Addr)
			}
			return nil, fmt.Errorf("another authproxy is already running with state dir %s%s; stop it, or give this one its own --state-dir", dir, other)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// runtimeInfo is state_dir/proxy.json: how other commands find the proxy.
type runtimeInfo struct {
	Addr string `json:"addr"`
	PID  int    `json:"pid"`
}

func writeRuntime(dir, addr string) error {
	data, _ := json.Marshal(runtimeInfo{Addr: addr, PID: os.Getpid()})
	tmp := filepath.Join(dir, ".proxy.json.tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "proxy.json"))
}

func readRuntime(dir string) (runtimeInfo, error) {
	var rt runtimeInfo
	data, err := os.ReadFile(filepath.Join(dir, "proxy.json"))
	if err != nil {
		return rt, err
	}
	err = json.Unmarshal(data, &rt)
	return rt, err
}

func proxyUsers(cfg *config.Config) map[string]auth.Secret {
	if cfg.ProxyAuth == nil {
		return nil
	}
	return cfg.ProxyAuth.Users
}

func proxyUserAccounts(cfg *config.Config) map[string][]string {
	if cfg.ProxyAuth == nil {
		return nil
	}
	return cfg.ProxyAuth.Accounts
}
