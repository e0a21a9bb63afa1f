package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/proxy"
)

func cmdToken(ctx context.Context, args []string, e env) error {
	var cf commonFlags
	fs := newFlags("token", e)
	cf.register(fs, false)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("token takes one account name")
	}
	cfg, err := loadConfig(&cf, e)
	if err != nil {
		return err
	}
	a := cfg.Account(pos[0])
	if a == nil {
		return usagef("no account %q in %s", pos[0], cfg.Path)
	}
	if !a.Configured() {
		return &auth.NotConfiguredError{Account: a.Name, Missing: a.Missing}
	}
	// A running proxy holds the account's one broker session: ask it.
	if tok, asked, err := tokenFromProxy(ctx, cfg, a.Name); asked {
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, tok)
		return nil
	}
	logger := newLogger(io.Discard, &cf)
	w, err := wire(ctx, cfg, logger, time.Now)
	if err != nil {
		return err
	}
	for _, c := range w.caches {
		if c.Name() != a.Name {
			continue
		}
		tctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		t, err := c.Token(tctx)
		if errors.Is(err, auth.ErrLoginRequired) {
			return fmt.Errorf("account %q needs a browser login first: run `authproxy login %s`", a.Name, a.Name)
		}
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, t.Access.Reveal())
		return nil
	}
	return fmt.Errorf("account %q has no token source", a.Name)
}

// tokenFromProxy asks a running proxy for the account's token. asked is
// false only when no proxy answers at all: then, and only then, the command
// may log in itself without opening a second broker session.
func tokenFromProxy(ctx context.Context, cfg *config.Config, name string) (tok string, asked bool, err error) {
	addr := proxyAddr(cfg)
	rctx, cancel := context.WithTimeout(ctx, cfg.Upstream.Timeout+10*time.Second)
	defer cancel()
	req, err := ownRequest(rctx, cfg, http.MethodPost, "/token/"+url.PathEscape(name), name, nil)
	if err != nil {
		return "", false, err
	}
	req.Header.Set(proxy.TokenHeader, "1")
	resp, err := ownClient().Do(req)
	if err != nil {
		// Only a refused connection means no proxy runs: a proxy that
		// breaks off or times out may still hold the broker's session.
		if notListening(err) {
			return "", false, nil
		}
		return "", true, fmt.Errorf("account %q: asking the running proxy on %s: %w", name, addr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusOK {
		var ans proxy.TokenAnswer
		if err := json.Unmarshal(body, &ans); err != nil || ans.Token == "" {
			return "", true, fmt.Errorf("account %q: the proxy on %s sent an unreadable token answer", name, addr)
		}
		return ans.Token, true, nil
	}
	var eb struct {
		Error struct{ Code, Message, Hint string }
	}
	if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
		msg := fmt.Sprintf("account %q: the running proxy on %s answered %s: %s", name, addr, eb.Error.Code, eb.Error.Message)
		if eb.Error.Hint != "" {
			msg += " (" + eb.Error.Hint + ")"
		}
		return "", true, errors.New(msg)
	}
	return "", true, fmt.Errorf("account %q: the proxy on %s answered HTTP %d to a token request; it may be an older authproxy: stop it or upgrade it (a second login would open a second broker session)",
		name, addr, resp.StatusCode)
}
