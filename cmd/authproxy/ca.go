package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/authproxy/authproxy/certs"
)

func cmdCA(ctx context.Context, args []string, e env) error {
	var cf commonFlags
	fs := newFlags("ca", e)
	cf.register(fs, false)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	action := "path"
	if len(pos) > 1 {
		return usagef("ca takes one of path, print, install, uninstall, rotate")
	}
	if len(pos) == 1 {
		action = pos[0]
	}
	cfg, err := loadConfig(&cf, e)
	if err != nil {
		return err
	}
	logger := newLogger(io.Discard, &cf)
	switch action {
	case "path":
		ca, err := loadCA(cfg, logger)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, ca.CertPath())
	case "print":
		ca, err := loadCA(cfg, logger)
		if err != nil {
			return err
		}
		_, err = e.stdout.Write(ca.CertPEM())
		return err
	case "install":
		ca, err := loadCA(cfg, logger)
		if err != nil {
			return err
		}
		return caInstall(ctx, e, cfg.StateDir, ca.CertPath(), ca.CertPEM())
	case "uninstall":
		return caUninstall(ctx, e, cfg.StateDir)
	case "rotate":
		// A running proxy keeps serving leaves from the old CA: clients
		// that trust only the new one would fail while it says "ready".
		if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
			return fmt.Errorf("state dir: %w", err)
		}
		unlock, err := lockStateDir(cfg.StateDir)
		if err != nil {
			who := ""
			if rt, rerr := readRuntime(cfg.StateDir); rerr == nil {
				who = fmt.Sprintf(" (pid %d on %s)", rt.PID, rt.Addr)
			}
			return fmt.Errorf("ca rotate refused: an authproxy is running on state dir %s%s and would keep signing with the old CA; stop it, run `authproxy ca rotate`, then start it again", cfg.StateDir, who)
		}
		defer unlock()
		ca, err := certs.Rotate(cfg.StateDir, certs.Options{PermittedDNS: permittedDomains(cfg), Logger: logger})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "issued a new local CA: %s\nbundle for clients: %s\nclients that trusted the old CA must trust this one (run `authproxy ca install` again if you installed the old one system-wide)\n",
			ca.CertPath(), ca.BundlePath())
	default:
		return usagef("unknown ca action %q (want path, print, install, uninstall or rotate)", action)
	}
	return nil
}
