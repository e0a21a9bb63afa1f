package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/proxy"
)

func cmdStatus(ctx context.Context, args []string, e env) error {
	var cf commonFlags
	fs := newFlags("status", e)
	cf.register(fs, false)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(&cf, e)
	if err != nil {
		return err
	}
	rep, live, err := fetchStatus(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Running bool `json:"running"`
			proxy.StatusReport
		}{live, rep})
	}
	if live {
		fmt.Fprintf(e.stdout, "authproxy is running on %s\n\n", rep.Listen)
	} else {
		where := filepath.Join(cfg.StateDir, "tokens.json")
		if cfg.Store.Kind == "redis" {
			where = "the Redis store"
		}
		fmt.Fprintf(e.stdout, "authproxy is not running (%s); showing saved tokens from %s\n\n", cfg.Listen, where)
	}
	renderStatus(e.stdout, rep, time.Now())
	return nil
}

// proxyAddr is where a running proxy for cfg listens.
func proxyAddr(cfg *config.Config) string {
	if rt, err := readRuntime(cfg.StateDir); err == nil && rt.Addr != "" {
		return rt.Addr
	}
	return cfg.Listen
}

// fetchStatus asks a running proxy, else builds the report from the store.
func fetchStatus(ctx context.Context, cfg *config.Config) (proxy.StatusReport, bool, error) {
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := ownRequest(rctx, cfg, http.MethodGet, "/status", "", nil)
	if err != nil {
		return proxy.StatusReport{}, false, err
	}
	if resp, err := ownClient().Do(req); err == nil {
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			var rep proxy.StatusReport
			if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&rep); err == nil {
				return rep, true, nil
			}
		}
	}
	rep, err := offlineStatus(ctx, cfg, time.Now())
	return rep, false, err
}

func offlineStatus(ctx context.Context, cfg *config.Config, now time.Time) (proxy.StatusReport, error) {
	rep := proxy.StatusReport{Listen: cfg.Listen, Time: now.UTC()}
	fsStore, err := newStore(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return rep, err
	}
	for _, a := range cfg.Accounts {
		as := proxy.AccountStatus{Name: a.Name, Type: a.Type, Hosts: a.Hosts, Missing: a.Missing}
		switch {
		case !a.Configured():
			as.State = "unconfigured"
			as.Reason = "unset environment variables: " + strings.Join(a.Missing, ", ")
		default:
			t, err := fsStore.Load(ctx, a.Name)
			switch {
			case errors.Is(err, auth.ErrNotFound):
				as.State = "no token"
			case err != nil:
				as.State = "error"
				as.Reason = err.Error()
			case t.Valid(now):
				as.State = "ready"
				exp := t.Expiry.UTC()
				if !t.Expiry.IsZero() {
					as.Expiry = &exp
					secs := int64(t.Expiry.Sub(now) / time.Second)
					as.ExpiresInSeconds = &secs
				}
			default:
				as.State = "expired"
			}
		}
		rep.Accounts = append(rep.Accounts, as)
	}
	return rep, nil
}

func renderStatus(w io.Writer, rep proxy.StatusReport, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tTYPE\tSTATE\tEXPIRES\tREQUESTS (SINCE START)\tNOTE")
	for _, a := range rep.Accounts {
		exp := "-"
		if a.Expiry != nil {
			exp = humanUntil(a.Expiry.Sub(now))
		}
		var total int64
		for k, n := range a.Requests {
			if k != "bypass" { // the broker's own login pages: not the user's requests (as on the dashboard)
				total += n
			}
		}
		note := a.Reason
		if a.LastError != "" && note == "" {
			note = "last error: " + a.LastError
		}
		if a.State == "needs login" && a.LoginURL != "" {
			note = "log in: " + a.LoginURL
		}
		if a.Paused { // the order guard's kill switch
			note = strings.TrimSuffix("ORDERS PAUSED (authproxy resume "+a.Name+"); "+note, "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", a.Name, a.Type, a.State, exp, total, note)
	}
	_ = tw.Flush()
}

func humanUntil(d time.Duration) string {
	if d <= 0 {
		return "expired"
	}
	d = d.Round(time.Second)
	h, m := int(d.Hours()), int(d.Minutes())%60
	switch {
	case h >= 24:
		return fmt.Sprintf("in %dd%dh", h/24, h%24)
	case h > 0:
		return fmt.Sprintf("in %dh%02dm", h, m)
	case m > 0:
		return fmt.Sprintf("in %dm%02ds", m, int(d.Seconds())%60)
	}
	return fmt.Sprintf("in %ds", int(d.Seconds()))
}
