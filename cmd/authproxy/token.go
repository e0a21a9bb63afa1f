package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/authproxy/authproxy/auth"
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
