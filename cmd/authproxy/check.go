package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/authproxy/authproxy/config"
)

func cmdCheck(_ context.Context, args []string, e env) error {
	var cf commonFlags
	fs := newFlags("check", e)
	cf.register(fs, false)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 1 && cf.config == "" {
		cf.config = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return usagef("check takes no arguments")
	}
	cfg, err := loadConfig(&cf, e)
	var ce *configError
	if errors.As(err, &ce) {
		probs := config.Problems(ce.err)
		for _, p := range probs {
			fmt.Fprintln(e.stderr, p.Error())
		}
		if len(probs) == 0 {
			fmt.Fprintf(e.stderr, "%s: %v\n", ce.path, ce.err)
		}
		fmt.Fprintf(e.stderr, "%s: %d problem(s)\n", ce.path, max(len(probs), 1))
		return errSilent
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: ok, listen %s, %d account(s)\n", cfg.Path, cfg.Listen, len(cfg.Accounts))
	for _, a := range cfg.Accounts {
		state := "configured"
		if !a.Configured() {
			state = "unconfigured: unset " + strings.Join(a.Missing, ", ")
		}
		fmt.Fprintf(e.stdout, "  %-14s %-10s %s (%s)\n", a.Name, a.Type, strings.Join(a.Hosts, ","), state)
	}
	return nil
}
