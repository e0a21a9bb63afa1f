package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/redisstore"
	"github.com/authproxy/authproxy/certs"
	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/proxy"
)

// commonFlags are shared by every subcommand that reads the config.
type commonFlags struct {
	config    string
	listen    string
	stateDir  string
	logFormat string
	verbose   bool
	quiet     bool
}

func (c *commonFlags) register(fsAdd interface {
	StringVar(*string, string, string, string)
	BoolVar(*bool, string, bool, string)
}, withRun bool) {
	fsAdd.StringVar(&c.config, "config", "", "rules.toml to use")
	if withRun {
		fsAdd.StringVar(&c.listen, "listen", "", "address to listen on (overrides rules.toml)")
		fsAdd.StringVar(&c.stateDir, "state-dir", "", "state directory (overrides rules.toml)")
		fsAdd.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
		fsAdd.BoolVar(&c.verbose, "verbose", false, "debug logging")
		fsAdd.BoolVar(&c.quiet, "quiet", false, "log warnings and errors only")
	}
}

// loadConfig finds and loads the config, applying flag overrides.
func loadConfig(c *commonFlags, e env) (*config.Config, error) {
	path, err := config.Find(c.config, e.getenv)
	if err != nil {
		return nil, err
	}
	cfg, err := schema().Load(path, e.lookupEnv)
	if err != nil {
		return nil, &configError{path: path, err: err}
	}
	if c.listen != "" {
		// The same rule as listen in rules.toml: a flag must not open the
		// proxy to the network behind the config's back.
		if cfg.ProxyAuth == nil && !config.IsLoopbackListen(c.listen) {
			return nil, fmt.Errorf("--listen %q is not a loopback address: add [proxy_auth] users to %s so that only they can use the proxy, or listen on 127.0.0.1", c.listen, path)
		}
		cfg.Listen = c.listen
	}
	if c.stateDir != "" {
		abs, err := filepath.Abs(c.stateDir)
		if err != nil {
			return nil, err
		}
		cfg.StateDir = abs
	}
	return cfg, nil
}

// configError prints every problem on its own line.
type configError struct {
	path string
	err  error
}

func (e *configError) Error() string {
	probs := config.Problems(e.err)
	if len(probs) == 0 {
		return fmt.Sprintf("%s: %v", e.path, e.err)
	}
	lines := make([]string, len(probs))
	for i, p := range probs {
		lines[i] = p.Error()
	}
	return "invalid config:\n" + strings.Join(lines, "\n")
}

func (e *configError) Unwrap() error { return e.err }

func newLogger(w io.Writer, c *commonFlags) *slog.Logger {
	level := slog.LevelInfo
	if c.verbose {
		level = slog.LevelDebug
	}
	if c.quiet {
		level = slog.LevelWarn
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// knownDomains are the brokers' registrable domains; the local CA's name
// constraints always permit them, so adding an account never needs a new CA.
func knownDomains() []string {
	var out []string
	for _, k := range kinds() {
		out = append(out, k.Domains...)
	}
	return out
}

// permittedDomains derives the CA's name constraints from the config.
func permittedDomains(cfg *config.Config) []string {
	set := map[string]bool{}
	for _, d := range knownDomains() {
		set[d] = true
	}
	for _, a := range cfg.Accounts {
		for _, h := range a.Hosts {
			set[registrable(strings.TrimPrefix(h, "*."))] = true
		}
	}
	out := make([]string, 0, len(set))
	for d := range set {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// registrable approximates a host's registrable domain: the last two labels,
// or three under a two-letter country code with a generic second level
// (swastika.co.in).
func registrable(host string) string {
	if net.ParseIP(host) != nil {
		return host
	}
	labels := strings.Split(host, ".")
	n := len(labels)
	if n <= 2 {
		return host
	}
	switch labels[n-2] {
	case "co", "com", "net", "org", "gov", "ac", "edu", "ltd", "plc":
		if len(labels[n-1]) == 2 && n >= 3 {
			return strings.Join(labels[n-3:], ".")
		}
	}
	return strings.Join(labels[n-2:], ".")
}

// loadCA loads (or creates) the CA and checks it covers every broker host.
func loadCA(cfg *config.Config, logger *slog.Logger) (*certs.CA, error) {
	ca, err := certs.LoadOrCreate(cfg.StateDir, certs.Options{PermittedDNS: permittedDomains(cfg), Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("local CA in %s: %w", cfg.StateDir, err)
	}
	for _, a := range cfg.Accounts {
		for _, h := range a.Hosts {
			if !ca.Covers(strings.TrimPrefix(h, "*.")) {
				return nil, fmt.Errorf("the local CA's name constraints do not cover %s (account %q); run `authproxy ca rotate` to issue a CA for the current hosts, then re-trust %s",
					h, a.Name, ca.CertPath())
			}
		}
	}
	return ca, nil
}

// wiring is everything built from a config that more than one command uses.
type wiring struct {
	cfg      *config.Config
	log      *slog.Logger
	store    auth.Store
	accounts []*proxy.Account
	caches   []*auth.Cache
	client   *auth.HTTPClient
	upstream proxy.UpstreamOptions
}

// wire builds brokers and caches for every account. listen is the address
// the proxy is reachable on (for default redirect URIs). Each onEvent hook
// receives every cache event (metrics, dashboard).
func wire(ctx context.Context, cfg *config.Config, logger *slog.Logger, now func() time.Time, onEvent ...func(auth.Event)) (*wiring, error) {
	w := &wiring{cfg: cfg, log: logger}
	w.upstream = proxy.UpstreamOptions{CAFile: cfg.Upstream.CAFile, Resolve: cfg.Upstream.Resolve, Timeout: cfg.Upstream.Timeout, Proxy: cfg.Upstream.Proxy}
	tr, err := proxy.NewTransport(w.upstream)
	if err != nil {
		return nil, err
	}
	if u, err := proxy.ParseEgress(cfg.Upstream.Proxy); err == nil {
		logger.Info("broker connections leave through the egress proxy", "proxy", u.Scheme+"://"+u.Host)
	}
	w.client = auth.NewHTTPClient(tr, logger, auth.RetryOptions{})
	store, err := newStore(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	w.store = store
	for _, a := range cfg.Accounts {
		if err := w.addAccount(ctx, a, now, true, onEvent); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// addAccount builds the broker and token cache of one account (loading its
// saved token when loadSaved) and appends them to w.
func (w *wiring) addAccount(ctx context.Context, a *config.Account, now func() time.Time, loadSaved bool, onEvent []func(auth.Event)) error {
	cfg, logger := w.cfg, w.log
	kind, ok := kindOf(a.Type)
	if !ok {
		return fmt.Errorf("account %q: broker type %q is not supported", a.Name, a.Type)
	}
	pa := &proxy.Account{Name: a.Name, Type: a.Type, Display: kind.Display, Hosts: a.Hosts, Missing: a.Missing, RedirectURI: a.Get("redirect_uri")}
	pa.Orders = kind.Orders
	w.accounts = append(w.accounts, pa)
	if !a.Configured() {
		pa.Bypass = kind.Bypass
		logger.Warn("account is unconfigured: its requests get not_configured", "account", a.Name,
			"type", a.Type, "missing", strings.Join(a.Missing, ","))
		return nil
	}
	b, err := kind.New(auth.Settings{Account: a.Name, Values: a.Values},
		auth.Deps{Client: w.client, Now: now, Logger: logger, StateDir: cfg.StateDir})
	if err != nil {
		return fmt.Errorf("account %q: %w", a.Name, err)
	}
	pa.Broker = b
	c := auth.NewCache(a.Name, b, w.store, auth.CacheOptions{Now: now, Margin: cfg.Limits.RefreshAhead,
		Logger: logger, OnEvent: fanOut(onEvent)}) // the cache adds "account" itself
	if loadSaved {
		if err := c.Load(ctx); err != nil {
			logger.Warn("could not read the saved token", "account", a.Name, "err", err)
		}
	}
	pa.Source = c
	w.caches = append(w.caches, c)
	return nil
}

// fanOut calls every hook; nil when there are none.
func fanOut(hooks []func(auth.Event)) func(auth.Event) {
	if len(hooks) == 0 {
		return nil
	}
	return func(ev auth.Event) {
		for _, h := range hooks {
			h(ev)
		}
	}
}

// newStore opens the token store named by [store].
func newStore(ctx context.Context, cfg *config.Config, logger *slog.Logger) (auth.Store, error) {
	switch cfg.Store.Kind {
	case "", "file":
		return auth.NewFileStore(filepath.Join(cfg.StateDir, "tokens.json")), nil
	case "redis":
		key, err := redisstore.ParseKey(cfg.Store.Key)
		if err != nil {
			return nil, fmt.Errorf("[store] key: %w", err)
		}
		redisstore.RouteClientLogs(logger)
		s, err := redisstore.New(redisstore.Options{URL: cfg.Store.URL, Key: key, Logger: logger})
		if err != nil {
			return nil, err
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := s.Ping(pctx); err != nil {
			if redisstore.IsRefused(err) {
				_ = s.Close()
				return nil, fmt.Errorf("[store] url: %w", err)
			}
			// Not fatal: valid tokens are served from memory and logins
			// go ahead alone until Redis answers (README).
			logger.Warn("the Redis token store does not answer; continuing without sharing until it does", "err", err)
		}
		return s, nil
	default:
		return nil, fmt.Errorf("[store] kind %q is not supported by this build", cfg.Store.Kind)
	}
}
