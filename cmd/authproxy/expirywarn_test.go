package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/proxy"
)

func TestExpiryWarnerOncePerToken(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	exp := now.Add(30 * time.Minute)
	far := now.Add(6 * time.Hour)
	rep := proxy.StatusReport{Accounts: []proxy.AccountStatus{
		{Name: "pf", State: "ready", Interactive: true, Expiry: &exp, LoginURL: "http://127.0.0.1:8899/login/pf"},
		{Name: "pf2", State: "ready", Interactive: true, Expiry: &far},
	}}
	var x expiryWarner
	x.check(rep, now, logger)
	x.check(rep, now.Add(time.Minute), logger)
	if n := strings.Count(buf.String(), "expires soon"); n != 1 || !strings.Contains(buf.String(), "account=pf ") ||
		!strings.Contains(buf.String(), "login=http://127.0.0.1:8899/login/pf") {
		t.Fatalf("want one warning for pf:\n%s", buf.String())
	}
	// A new token (a new expiry) that becomes due is warned about again.
	exp2 := exp.Add(24 * time.Hour)
	rep.Accounts[0].Expiry = &exp2
	x.check(rep, exp2.Add(-10*time.Minute), logger)
	if n := strings.Count(buf.String(), "expires soon"); n != 3 { // pf's new token, and pf2 is due by then too
		t.Fatalf("%d warnings:\n%s", n, buf.String())
	}
}
