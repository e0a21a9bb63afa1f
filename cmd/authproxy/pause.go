package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/guard"
	"github.com/authproxy/authproxy/proxy"
)

// cmdPause is `authproxy pause [NAME...]` (paused) and `authproxy resume
// [NAME...]`: the running proxy applies the change before answering, so it
// is in effect when the command returns. With no proxy running the state
// file is changed directly and the next start honours it.
func cmdPause(ctx context.Context, args []string, e env, paused bool) error {
	verb := "resume"
	if paused {
		verb = "pause"
	}
	var cf commonFlags
	fs := newFlags(verb, e)
	cf.register(fs, false)
	names, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(&cf, e)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, a := range cfg.Accounts {
		known[a.Name] = true
	}
	for _, n := range names {
		if !known[n] {
			return usagef("no account %q in %s (accounts: %s)", n, cfg.Path, strings.Join(accountNames(cfg), ", "))
		}
	}
	targets := names
	if len(targets) == 0 {
		targets = accountNames(cfg)
	}
	rep, live, err := pauseRemote(ctx, cfg, names, verb)
	if err != nil {
		return err
	}
	if !live {
		rep, err = pauseOffline(cfg, targets, paused)
		if err != nil {
			return err
		}
	}
	printPause(e.stdout, rep, targets, paused, live)
	return nil
}

func accountNames(cfg *config.Config) []string {
	out := make([]string, 0, len(cfg.Accounts))
	for _, a := range cfg.Accounts {
		out = append(out, a.Name)
	}
	return out
}

// pauseRemote asks the running proxy. live is false when no proxy answers
// (connection refused): then the caller changes the state file itself.
func pauseRemote(ctx context.Context, cfg *config.Config, names []string, verb string) (proxy.PauseReply, bool, error) {
	var rep proxy.PauseReply
	addr := proxyAddr(cfg)
	paths := []string{"/" + verb}
	if len(names) > 0 {
		paths = paths[:0]
		for _, n := range names {
			paths = append(paths, "/"+verb+"/"+url.PathEscape(n))
		}
	}
	client := ownClient()
	for i, p := range paths {
		acct := ""
		if len(names) > 0 {
			acct = names[i]
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		req, err := ownRequest(rctx, cfg, http.MethodPost, p, acct, strings.NewReader("{}"))
		if err != nil {
			cancel()
			return rep, false, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "authproxy-cli")
		resp, err := client.Do(req)
		if err != nil {
			cancel()
			if i == 0 && notListening(err) {
				return rep, false, nil // nobody listens: not running
			}
			return rep, false, fmt.Errorf("authproxy at %s did not answer the %s: %w", addr, verb, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		cancel()
		if resp.StatusCode != http.StatusOK {
			return rep, true, fmt.Errorf("authproxy at %s refused the %s (HTTP %d): %s", addr, verb, resp.StatusCode, strings.TrimSpace(string(body)))
		}
		var one proxy.PauseReply
		if err := json.Unmarshal(body, &one); err != nil {
			return rep, true, fmt.Errorf("authproxy at %s: unreadable answer to the %s: %w", addr, verb, err)
		}
		rep.Changed = append(rep.Changed, one.Changed...)
		rep.Paused = one.Paused
	}
	return rep, true, nil
}

// pauseOffline changes the state file while no proxy runs, holding the
// state dir's lock so that no proxy starts meanwhile.
func pauseOffline(cfg *config.Config, targets []string, paused bool) (proxy.PauseReply, error) {
	var rep proxy.PauseReply
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return rep, fmt.Errorf("state dir: %w", err)
	}
	unlock, err := lockStateDir(cfg.StateDir)
	if err != nil {
		return rep, fmt.Errorf("authproxy does not answer at %s, yet its state dir is in use: %w", proxyAddr(cfg), err)
	}
	defer unlock()
	ps, err := guard.OpenPauses(cfg.StateDir)
	if err != nil {
		return rep, err
	}
	by := "cli (proxy not running)"
	rep.Changed, err = ps.Set(targets, paused, by, time.Now())
	if err != nil {
		return rep, err
	}
	rep.Paused = ps.All()
	return rep, nil
}

func printPause(w io.Writer, rep proxy.PauseReply, targets []string, paused, live bool) {
	where := "authproxy is not running; the next start keeps this"
	if live {
		where = "in effect now"
	}
	if paused {
		fmt.Fprintf(w, "paused: %s (%s)\n", strings.Join(targets, ", "), where)
		fmt.Fprintln(w, "Their order requests get 423 paused and never reach the broker; data requests and streams still pass.")
		fmt.Fprintf(w, "Resume with: authproxy resume %s\n", strings.Join(targets, " "))
		return
	}
	fmt.Fprintf(w, "resumed: %s (%s)\n", strings.Join(targets, ", "), where)
	if len(rep.Paused) > 0 {
		fmt.Fprintf(w, "still paused: %s\n", strings.Join(rep.Paused, ", "))
	}
}
