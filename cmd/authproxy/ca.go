package main

import (
	"context"
	"fmt"
	"io"

	"github.com/authproxy/authproxy/certs"
)

func cmdCA(_ context.Context, args []string, e env) error {
	var cf commonFlags
	fs := newFlags("ca", e)
	cf.register(fs, false)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	action := "path"
	if len(pos) > 1 {
		return usagef("ca takes one of path, print, rotate")
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
	case "rotate":
		ca, err := certs.Rotate(cfg.StateDir, certs.Options{PermittedDNS: permittedDomains(cfg), Logger: logger})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "issued a new local CA: %s\nbundle for clients: %s\nclients that trusted the old CA must trust this one (restart authproxy to use it)\n",
			ca.CertPath(), ca.BundlePath())
	default:
		return usagef("unknown ca action %q (want path, print or rotate)", action)
	}
	return nil
}
