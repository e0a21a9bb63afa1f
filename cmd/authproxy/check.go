package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/authproxy/authproxy/config"
)

func cmdCheck(_ context.Context, args []string, e env) error {
	var cf commonFlags
	fs := newFlags("check", e)
	cf.register(fs, false)
	strict := fs.Bool("strict", false, "exit 1 also for near misses: an unset ${VAR} whose name is close to a set one, a redirect_uri the proxy does not serve")
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
			line := p.Error()
			if p.Msg == "unknown key" && p.Key != "" {
				if s := suggestKey(p.Key, func(string) string { return "" }); s != "" {
					line += fmt.Sprintf(" (did you mean %s?)", s)
				}
			}
			fmt.Fprintln(e.stderr, line)
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
	names := envNames(e)
	nearMisses := 0
	for _, a := range cfg.Accounts {
		state := "configured"
		if !a.Configured() {
			var parts []string
			for _, m := range a.Missing {
				if s := nearMiss(m, names); s != "" {
					parts = append(parts, fmt.Sprintf("%s (did you mean %s? it is set)", m, s))
					nearMisses++
				} else {
					parts = append(parts, m)
				}
			}
			state = "unconfigured: unset " + strings.Join(parts, ", ")
		}
		fmt.Fprintf(e.stdout, "  %-14s %-10s %s (%s)\n", a.Name, a.Type, strings.Join(a.Hosts, ","), state)
		if msg := redirectMismatch(cfg.Listen, a); msg != "" {
			fmt.Fprintf(e.stdout, "  %-14s warning: %s\n", "", msg)
			nearMisses++
		}
	}
	if nearMisses > 0 {
		fmt.Fprintf(e.stderr, "%s: %d near miss(es)", cfg.Path, nearMisses)
		if *strict {
			fmt.Fprintf(e.stderr, " (--strict: failing)\n")
			return errSilent
		}
		fmt.Fprintf(e.stderr, " (use --strict to fail on them)\n")
	}
	return nil
}

// redirectMismatch says why a browser-login account's redirect_uri will not
// reach this proxy listening on listen, or "" when it will: the broker
// sends the browser to redirect_uri after the login, so the proxy must serve
// it, either at http://LISTEN/callback/NAME or on a loopback callback
// listener of its own.
func redirectMismatch(listen string, a *config.Account) string {
	ru := a.Values["redirect_uri"]
	if ru == "" || !a.Configured() {
		return ""
	}
	u, err := url.Parse(ru)
	if err != nil {
		return ""
	}
	want := "http://" + listen + "/callback/" + a.Name
	if u.Scheme != "http" {
		return fmt.Sprintf("redirect_uri %s is not plain http on this machine: after the browser login the broker sends the code there, not to this proxy (want %s, registered with the broker)", ru, want)
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	loop := host == "localhost" || ip != nil && ip.IsLoopback()
	if sameAddr(u.Host, listen) {
		if u.Path != "/callback/"+a.Name {
			return fmt.Sprintf("redirect_uri %s has path %s; the proxy serves /callback/%s on %s (want %s)", ru, u.Path, a.Name, listen, want)
		}
		return ""
	}
	if !loop {
		return fmt.Sprintf("redirect_uri %s is not this proxy's address %s: the browser login will end on another machine's page (register %s with the broker, or forward that port here)", ru, listen, want)
	}
	return "" // a loopback callback listener of its own serves it
}
