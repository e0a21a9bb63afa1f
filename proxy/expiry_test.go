package proxy

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A browser-login account's token within the hour of expiry is flagged on
// the dashboard and in /metrics; a far-off or renewable one is not.
func TestLoginDueWarnings(t *testing.T) {
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	soon, later := now.Add(40*time.Minute), now.Add(5*time.Hour)
	rep := StatusReport{Time: now, Accounts: []AccountStatus{
		{Name: "pf", Type: "pocketful", State: "ready", Interactive: true, Expiry: &soon},
		{Name: "pf2", Type: "pocketful", State: "ready", Interactive: true, Expiry: &later},
		{Name: "tv", Type: "tradovate", State: "ready", Expiry: &soon},
		{Name: "pf3", Type: "pocketful", State: "needs login", Interactive: true},
	}}
	for _, tc := range []struct {
		i   int
		due bool
	}{{0, true}, {1, false}, {2, false}, {3, true}} {
		if got := LoginDue(rep.Accounts[tc.i], now); got != tc.due {
			t.Errorf("%s: LoginDue = %v, want %v", rep.Accounts[tc.i].Name, got, tc.due)
		}
	}
	row := dashRowFor(rep.Accounts[0], dayCounts{}, now)
	if !row.Soon || !strings.Contains(row.Detail, "log in again before") {
		t.Errorf("dashboard row: soon %v, detail %q", row.Soon, row.Detail)
	}
	if row := dashRowFor(rep.Accounts[1], dayCounts{}, now); row.Soon {
		t.Error("a token 5h from expiry is flagged")
	}
	m := NewMetrics(func() StatusReport { return rep })
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{`authproxy_login_due{account="pf"} 1`, `authproxy_login_due{account="pf2"} 0`, `authproxy_login_due{account="pf3"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(body), `authproxy_login_due{account="tv"}`) {
		t.Error("a renewable account has authproxy_login_due")
	}
}

// An error shown in the state words is not repeated in the last-error
// column; bypassed requests are left out of the counts as in `status`.
func TestDashboardErrorOnceAndBypass(t *testing.T) {
	now := time.Now()
	long := "login: account \"tg\": login for \"tg\" refused (HTTP 401): Invalid MPIN"
	row := dashRowFor(AccountStatus{Name: "tg", Type: "tradingo", State: "error", LastError: long,
		Requests: map[string]int64{"ok": 2, "bypass": 3}}, dayCounts{requests: 2}, now)
	if !strings.Contains(row.State, "Invalid MPIN") || row.LastError != "" {
		t.Errorf("state %q, last error column %q", row.State, row.LastError)
	}
	if !strings.HasPrefix(row.RequestsTitle, "since the proxy started: 2 (ok 2)") || !strings.Contains(row.RequestsTitle, "not counted: 3") {
		t.Errorf("requests title %q", row.RequestsTitle)
	}
}
