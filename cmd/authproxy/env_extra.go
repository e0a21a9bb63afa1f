package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/authproxy/authproxy/config"
)

// mergeNoProxy joins the proxy's own NO_PROXY entries with the user's
// (NO_PROXY and no_proxy), keeping order and dropping duplicates, so that
// `eval "$(authproxy env)"` never loses corp.internal or 10.0.0.0/8.
func mergeNoProxy(lists ...string) string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lists {
		for _, item := range strings.Split(l, ",") {
			item = strings.TrimSpace(item)
			key := strings.ToLower(item)
			if item == "" || seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, item)
		}
	}
	return strings.Join(out, ",")
}

// warnNoProxy says on stderr when nothing answers at the listen address,
// or when what answers is not the proxy of this config's state dir (another
// user's, another config's). It never fails the command: env must exit 0.
func warnNoProxy(ctx context.Context, w io.Writer, cfg *config.Config) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", cfg.Listen)
	if err != nil {
		fmt.Fprintf(w, "authproxy env: warning: nothing answers at %s yet; start the proxy with `authproxy run --config %s` before your scripts run\n", cfg.Listen, cfg.Path)
		return
	}
	conn.Close()
	rt, err := readRuntime(cfg.StateDir)
	if err != nil || !sameAddr(rt.Addr, cfg.Listen) {
		fmt.Fprintf(w, "authproxy env: warning: something answers at %s, but it is not the authproxy of state dir %s (another user's or another config's proxy?); check with `authproxy status --config %s`\n", cfg.Listen, cfg.StateDir, cfg.Path)
	}
}

// dropBrokerBypass removes NO_PROXY entries that would send a broker host
// around the proxy (a bare request with no credentials), saying so.
func dropBrokerBypass(w io.Writer, noProxy string, cfg *config.Config) string {
	var keep []string
	for _, item := range strings.Split(noProxy, ",") {
		if item == "" {
			continue
		}
		drop := false
		for _, a := range cfg.Accounts {
			for _, h := range a.Hosts {
				if _, why, hit := noProxyMatch(item, strings.TrimPrefix(h, "*.")); hit && !drop {
					fmt.Fprintf(w, "authproxy env: warning: left %q out of NO_PROXY: it would send %s around the proxy (%s)\n", item, h, why)
					drop = true
				}
			}
		}
		if !drop {
			keep = append(keep, item)
		}
	}
	return strings.Join(keep, ",")
}
