package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/proxy"
)

// loginOptions are `authproxy login`'s flags.
type loginOptions struct {
	timeout   time.Duration
	noBrowser bool
}

// cmdLogin runs an interactive (browser) login for one account: through
// the running proxy when there is one, else with a temporary callback
// server of its own on the account's redirect_uri.
func cmdLogin(ctx context.Context, args []string, e env) error {
	var cf commonFlags
	fs := newFlags("login", e)
	cf.register(fs, false)
	var opts loginOptions
	fs.DurationVar(&opts.timeout, "timeout", 10*time.Minute, "how long to wait for the browser login")
	fs.BoolVar(&opts.noBrowser, "no-browser", false, "print the login URL but do not open a browser")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("login takes one account name: authproxy login NAME [--config FILE]")
	}
	if opts.timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	cfg, err := loadConfig(&cf, e)
	if err != nil {
		return err
	}
	a := cfg.Account(pos[0])
	if a == nil {
		names := make([]string, 0, len(cfg.Accounts))
		for _, acc := range cfg.Accounts {
			names = append(names, acc.Name)
		}
		return usagef("no account %q in %s (accounts: %s)", pos[0], cfg.Path, strings.Join(names, ", "))
	}
	if !a.Configured() {
		return &auth.NotConfiguredError{Account: a.Name, Missing: a.Missing}
	}
	if addr, ok := runningProxy(ctx, cfg); ok {
		return loginViaProxy(ctx, cfg, a, addr, opts, e)
	}
	return loginLocally(ctx, cfg, a, opts, e)
}

// runningProxy returns the address of a proxy running for cfg (from
// state_dir/proxy.json, else the configured listen address) if it answers
// /healthz.
func runningProxy(ctx context.Context, cfg *config.Config) (string, bool) {
	var cands []string
	if rt, err := readRuntime(cfg.StateDir); err == nil && rt.Addr != "" {
		cands = append(cands, dialAddr(rt.Addr))
	}
	if _, port, err := net.SplitHostPort(cfg.Listen); err == nil && port != "0" {
		cands = append(cands, dialAddr(cfg.Listen))
	}
	client := ownClient()
	for _, addr := range cands {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, "http://"+addr+"/healthz", nil)
		if err != nil {
			cancel()
			continue
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
		}
		cancel()
		if err == nil && resp.StatusCode == http.StatusOK {
			return addr, true
		}
	}
	return "", false
}

// dialAddr turns a listen address into one a local client can reach.
func dialAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// loginViaProxy sends the person to the running proxy's /login/NAME and
// watches its /status until the account holds a newer token.
func loginViaProxy(ctx context.Context, cfg *config.Config, a *config.Account, addr string, opts loginOptions, e env) error {
	client := ownClient()
	user, pass := statusCredentials(cfg, a.Name)
	status := func(ctx context.Context) (*proxy.AccountStatus, error) {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, "http://"+addr+"/status", nil)
		if err != nil {
			return nil, err
		}
		if user != "" {
			req.SetBasicAuth(user, pass.Reveal())
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("proxy status: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("proxy status: HTTP %d", resp.StatusCode)
		}
		var rep proxy.StatusReport
		if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&rep); err != nil {
			return nil, fmt.Errorf("proxy status: %w", err)
		}
		for i := range rep.Accounts {
			if rep.Accounts[i].Name == a.Name {
				return &rep.Accounts[i], nil
			}
		}
		return nil, fmt.Errorf("the proxy running on %s has no account %q: restart it with %s", addr, a.Name, cfg.Path)
	}
	first, err := status(ctx)
	if err != nil {
		return err
	}
	if first.State == "unconfigured" {
		return fmt.Errorf("the proxy running on %s has account %q unconfigured (%s); restart it with those variables set",
			addr, a.Name, first.Reason)
	}
	if !first.Interactive {
		fmt.Fprintf(e.stdout, "Account %s (%s) logs in by itself; no browser login is needed.\n", a.Name, a.Type)
		if first.State == auth.StateReady {
			fmt.Fprintf(e.stdout, "The proxy on %s holds a token for it%s.\n", addr, untilText(first.Expiry))
			return nil
		}
		reason := first.State
		if r := firstNonEmpty(first.Reason, first.LastError); r != "" {
			reason += ": " + r
		}
		return fmt.Errorf("the proxy on %s has no token for %q (%s); it logs in on the next request", addr, a.Name, reason)
	}
	var baseline time.Time
	if first.Obtained != nil {
		baseline = *first.Obtained
	}
	loginURL := "http://" + addr + "/login/" + url.PathEscape(a.Name)
	fmt.Fprintf(e.stdout, "Log in to %s (%s) in your browser:\n\n    %s\n\n", a.Name, a.Type, loginURL)
	explainRedirect(e, addr, a)
	if user != "" {
		fmt.Fprintf(e.stdout, "The page asks for your [proxy_auth] user name and password.\n")
	}
	tellBrowser(e, loginURL, opts.noBrowser)

	var got *proxy.AccountStatus
	err = waitForLogin(ctx, e, a.Name, opts.timeout, time.Second, func(ctx context.Context) (bool, error) {
		st, err := status(ctx)
		if err != nil {
			return false, err
		}
		if st.State == auth.StateReady && st.Obtained != nil && st.Obtained.After(baseline) {
			got = st
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("%w; start again with `authproxy login %s` or open %s", err, a.Name, loginURL)
	}
	fmt.Fprintf(e.stdout, "Logged in: %s holds a new token%s.\n", a.Name, untilText(got.Expiry))
	return nil
}

// statusCredentials picks the [proxy_auth] user for the proxy's own pages:
// the one mapped to account, else the first by name.
func statusCredentials(cfg *config.Config, account string) (string, auth.Secret) {
	if cfg.ProxyAuth == nil || len(cfg.ProxyAuth.Users) == 0 {
		return "", ""
	}
	users := make([]string, 0, len(cfg.ProxyAuth.Users))
	for u := range cfg.ProxyAuth.Users {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		if slices.Contains(cfg.ProxyAuth.Accounts[u], account) || u == account {
			return u, cfg.ProxyAuth.Users[u]
		}
	}
	return users[0], cfg.ProxyAuth.Users[users[0]]
}

// loginLocally runs the login with no proxy running: a temporary loopback
// server on the account's redirect_uri serves /login/NAME and the callback,
// and the token goes to the store where the proxy will find it.
func loginLocally(ctx context.Context, cfg *config.Config, a *config.Account, opts loginOptions, e env) error {
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	w, err := wire(ctx, cfg, logger, time.Now)
	if err != nil {
		return err
	}
	var (
		pa    *proxy.Account
		cache *auth.Cache
	)
	for _, acc := range w.accounts {
		if acc.Name == a.Name {
			pa = acc
		}
	}
	for _, c := range w.caches {
		if c.Name() == a.Name {
			cache = c
		}
	}
	if pa == nil || cache == nil || pa.Broker == nil {
		return fmt.Errorf("account %q has no token source", a.Name)
	}
	if ia, ok := pa.Broker.(auth.Interactive); !ok || !ia.NeedsBrowser() {
		fmt.Fprintf(e.stdout, "Account %s (%s) logs in by itself; no browser login is needed. Fetching a token...\n", a.Name, a.Type)
		tctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		t, err := cache.Token(tctx)
		if err != nil {
			return err
		}
		exp := t.Expiry
		fmt.Fprintf(e.stdout, "%s holds a token%s.\n", a.Name, untilText(&exp))
		return nil
	}

	u, err := loopbackRedirect(a.Name, pa.RedirectURI)
	if err != nil {
		return err
	}
	logins := proxy.NewLogins(proxy.LoginsOptions{Logger: logger, Listen: u.Host, Accounts: w.accounts})
	ln, err := listen(ctx, u.Host)
	if err != nil {
		return fmt.Errorf("account %q: cannot serve its redirect_uri %s (is another program using the port?): %w", a.Name, pa.RedirectURI, err)
	}
	cbPath := u.Path
	if cbPath == "" {
		cbPath = "/"
	}
	mux := http.NewServeMux()
	mux.Handle("GET /login/{name}", proxy.LocalOnly(u.Host, logger, http.HandlerFunc(logins.ServeLogin)))
	name := a.Name
	mux.HandleFunc(cbPath, func(w http.ResponseWriter, r *http.Request) {
		r.SetPathValue("name", name)
		logins.ServeCallback(w, r)
	})
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodConnect || r.URL.IsAbs() {
				http.Error(w, "authproxy login: this is a temporary login server, not a proxy", http.StatusBadRequest)
				return
			}
			mux.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-served
	}()

	before := cache.Status()
	var baseline time.Time
	if before.HasToken {
		baseline = before.Obtained
	}
	loginURL := "http://" + u.Host + "/login/" + url.PathEscape(a.Name)
	fmt.Fprintf(e.stdout, "authproxy is not running; serving the login for %s on %s until it completes.\n", a.Name, u.Host)
	if before.HasToken {
		fmt.Fprintf(e.stdout, "(A token valid until %s is stored; a new login replaces it.)\n", before.Expiry.Local().Format("2006-01-02 15:04 MST"))
	}
	fmt.Fprintf(e.stdout, "Log in to %s (%s) in your browser:\n\n    %s\n\n", a.Name, a.Type, loginURL)
	explainRedirect(e, u.Host, a)
	tellBrowser(e, loginURL, opts.noBrowser)

	var got auth.Status
	err = waitForLogin(ctx, e, a.Name, opts.timeout, 200*time.Millisecond, func(context.Context) (bool, error) {
		st := cache.Status()
		if st.HasToken && st.Obtained.After(baseline) {
			got = st
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("%w; start again with `authproxy login %s`", err, a.Name)
	}
	if strings.HasPrefix(got.LastError, "save token") {
		return fmt.Errorf("account %q: logged in, but the token could not be saved: %s", a.Name, got.LastError)
	}
	exp := got.Expiry
	fmt.Fprintf(e.stdout, "Logged in: %s holds a new token%s, saved in %s.\n", a.Name, untilText(&exp), cfg.StateDir)
	return nil
}

// loopbackRedirect checks that redirectURI is an http URL on a loopback
// host with a fixed port, which `login` can serve itself.
func loopbackRedirect(account, redirectURI string) (*url.URL, error) {
	u, err := url.Parse(redirectURI)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("account %q: redirect_uri %q is not an http://127.0.0.1:PORT/... address; start the proxy (`authproxy run`) and run `authproxy login %s` again",
			account, redirectURI, account)
	}
	host, port := u.Hostname(), u.Port()
	if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" {
		return nil, fmt.Errorf("account %q: redirect_uri %s is not on this machine's loopback address; start the proxy that serves it and run `authproxy login %s` again",
			account, redirectURI, account)
	}
	if port == "" || port == "0" {
		return nil, fmt.Errorf("account %q: redirect_uri %s has no fixed port; set redirect_uri (as registered with the broker) or listen in the config", account, redirectURI)
	}
	if strings.HasPrefix(u.Path, "/login/") {
		return nil, fmt.Errorf("account %q: redirect_uri %s must not be under /login/", account, redirectURI)
	}
	return u, nil
}

// waitForLogin calls check every interval until it reports done, the
// timeout passes (an error) or ctx ends (Ctrl-C: an error). It shows a
// countdown on stderr: a spinner on a terminal, a line every 30s otherwise.
func waitForLogin(ctx context.Context, e env, account string, timeout, interval time.Duration,
	check func(context.Context) (bool, error)) error {
	deadline := time.Now().Add(timeout)
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	tty := isTerminal(e.stderr)
	frames := []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}
	redraw := 30 * time.Second
	if tty {
		redraw = 200 * time.Millisecond
	}
	poll := time.NewTicker(interval)
	defer poll.Stop()
	draw := time.NewTicker(redraw)
	defer draw.Stop()
	frame := 0
	var lastErr error
	show := func() {
		left := time.Until(deadline).Round(time.Second)
		note := ""
		if lastErr != nil {
			note = " (" + lastErr.Error() + ")"
		}
		if tty {
			fmt.Fprintf(e.stderr, "\r\033[K%s waiting for the browser login of %s: %s left%s", frames[frame%len(frames)], account, left, note)
			frame++
			return
		}
		fmt.Fprintf(e.stderr, "waiting for the browser login of %s: %s left%s\n", account, left, note)
	}
	erase := func() {
		if tty {
			fmt.Fprint(e.stderr, "\r\033[K")
		}
	}
	show()
	for {
		select {
		case <-wctx.Done():
			erase()
			if ctx.Err() != nil {
				return fmt.Errorf("login for %q interrupted", account)
			}
			return fmt.Errorf("no login for %q within %s", account, timeout)
		case <-draw.C:
			show()
		case <-poll.C:
			done, err := check(wctx)
			if done {
				erase()
				return nil
			}
			if wctx.Err() == nil {
				lastErr = err
			}
		}
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// tellBrowser opens loginURL in a browser when one can be started, and
// says what it did; it never fails the login.
func tellBrowser(e env, loginURL string, disabled bool) {
	if disabled {
		return
	}
	what, err := openBrowser(loginURL, e.getenv)
	if err != nil {
		fmt.Fprintf(e.stderr, "Open the URL above in a browser (%v).\n", err)
		return
	}
	fmt.Fprintf(e.stderr, "Opened the login page with %s.\n", what)
}

// openBrowser starts a browser on target without waiting for it: $BROWSER
// (a list of commands separated like PATH, "%s" standing for the URL),
// else `open` on macOS, else xdg-open when a display is likely. It returns
// the command it started.
func openBrowser(target string, getenv func(string) string) (string, error) {
	if b := getenv("BROWSER"); b != "" {
		for _, cand := range strings.Split(b, string(os.PathListSeparator)) {
			fields := strings.Fields(cand)
			if len(fields) == 0 {
				continue
			}
			path, err := exec.LookPath(fields[0])
			if err != nil {
				continue
			}
			args, replaced := fields[1:], false
			for i := range args {
				if strings.Contains(args[i], "%s") {
					args[i] = strings.ReplaceAll(args[i], "%s", target)
					replaced = true
				}
			}
			if !replaced {
				args = append(args, target)
			}
			if err := startDetached(path, args...); err != nil {
				continue
			}
			return fields[0], nil
		}
		return "", fmt.Errorf("no command in $BROWSER could be started")
	}
	var name string
	var args []string
	switch runtime.GOOS {
	case "darwin":
		name, args = "open", []string{target}
	case "windows":
		name, args = "rundll32", []string{"url.dll,FileProtocolHandler", target}
	default:
		if getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
			return "", errors.New("no display, so no browser was started")
		}
		name, args = "xdg-open", []string{target}
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found", name)
	}
	if err := startDetached(path, args...); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return name, nil
}

// startDetached starts a command with no stdio and reaps it in the
// background; authproxy does not wait for the browser.
func startDetached(path string, args ...string) error {
	cmd := exec.Command(path, args...)
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}

func untilText(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return ", valid until " + t.Local().Format("2006-01-02 15:04 MST")
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// explainRedirect says where the broker sends the browser after the login,
// and warns when that is not an address this proxy serves (the wait would
// never end).
func explainRedirect(e env, addr string, a *config.Account) {
	ru := a.Get("redirect_uri")
	if ru == "" {
		return
	}
	fmt.Fprintf(e.stdout, "After the login the broker sends your browser to %s (the redirect_uri registered with it).\n", ru)
	if msg := redirectMismatch(addr, a); msg != "" {
		fmt.Fprintf(e.stderr, "warning: %s\n", msg)
	}
}
