package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/authproxy/authproxy/guard"
)

// cmdJournal is `authproxy journal [NAME] [--since DUR] [--json]`: the
// order journal, read from the state dir (no running proxy needed).
func cmdJournal(ctx context.Context, args []string, e env) error {
	var cf commonFlags
	fs := newFlags("journal", e)
	cf.register(fs, false)
	since := fs.String("since", "24h", "how far back: a duration (2h, 30m, 7d) or a date (2026-01-31, IST)")
	asJSON := fs.Bool("json", false, "print the journal's JSON lines")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("journal takes at most one account name, got %q", pos)
	}
	now := time.Now()
	from, err := parseSince(*since, now)
	if err != nil {
		return usagef("--since: %v", err)
	}
	cfg, err := loadConfig(&cf, e)
	if err != nil {
		return err
	}
	account := ""
	if len(pos) == 1 {
		account = pos[0]
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := guard.ReadJournal(guard.JournalDir(cfg.StateDir), from, now.Add(time.Minute), account)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, en := range entries {
			if err := enc.Encode(en); err != nil {
				return err
			}
		}
		return nil
	}
	renderJournal(e.stdout, entries, account, from)
	return nil
}

// parseSince reads a duration ("2h", "7d") or an IST date.
func parseSince(s string, now time.Time) (time.Time, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err == nil && days >= 0 && fmt.Sprint(days) == n {
			return now.Add(-time.Duration(days) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q is negative", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, guard.IST()); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither a duration (2h, 30m, 7d) nor a date (2006-01-02)", s)
}

func renderJournal(w io.Writer, entries []guard.Entry, account string, from time.Time) {
	if len(entries) == 0 {
		who := "any account"
		if account != "" {
			who = account
		}
		fmt.Fprintf(w, "no orders for %s since %s\n", who, from.Local().Format("2006-01-02 15:04:05 MST"))
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACCOUNT\tBROKER\tREQUEST\tSTATUS\tOUTCOME\tDURATION\tORDER ID")
	for _, en := range entries {
		id := en.OrderID
		if id == "" {
			id = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s %s\t%d\t%s\t%s\t%s\n", en.Time.Local().Format("2006-01-02 15:04:05"),
			en.Account, en.Broker, en.Method, en.Path, en.Status, en.Outcome,
			(time.Duration(en.DurationMS * float64(time.Millisecond))).Round(time.Millisecond), id)
	}
	_ = tw.Flush()
}
