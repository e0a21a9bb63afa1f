package proxy

import (
	"errors"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authproxy/authproxy/auth"
)

// withMetrics wires m (and a /metrics mount) into a test proxy.
func withMetrics(m *Metrics) func(*Options) {
	return func(o *Options) {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m)
		o.Extra = mux
		o.Observe = m.Observe
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: status %d type %q\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	return string(body)
}

func TestMetricsCountRequestsReplaysAndLatency(t *testing.T) {
	var e *testEnv
	m := NewMetrics(func() StatusReport { return e.proxy.Status() })
	e = newTestEnv(t, withMetrics(m))

	e.up.valid = "tok-2" // the first token is refused: one replay
	if resp, body := e.do(t, "POST", "/orders", `{"a":1}`, nil); resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.do(t, "GET", "/orders", "", nil); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	e.up.valid = "never" // the broker refuses every token: upstream_error
	if resp, _ := e.do(t, "GET", "/x", "", nil); resp.StatusCode != 401 {
		t.Fatalf("status %d, want the broker's 401", resp.StatusCode)
	}
	e.src.mu.Lock()
	e.src.err = &auth.LoginError{Account: "acct", Message: "bad password"}
	e.src.cur = nil
	e.src.mu.Unlock()
	if resp, _ := e.do(t, "GET", "/y", "", nil); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502 login_failed", resp.StatusCode)
	}

	text := scrape(t, e.addr)
	for _, want := range []string{
		`authproxy_requests_total{account="acct",outcome="ok"} 2`,
		`authproxy_requests_total{account="acct",outcome="upstream_error"} 1`,
		`authproxy_requests_total{account="acct",outcome="login_failed"} 1`,
		`authproxy_replays_total{account="acct"} 2`,
		`authproxy_upstream_duration_seconds_count{account="acct"} 3`,
		`authproxy_open_tunnels `,
		`authproxy_account_ready{account="acct",state="ready"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasPrefix(line, "authproxy_") {
			t.Errorf("metric without the authproxy_ prefix: %q", line)
		}
	}
	if strings.Contains(text, "tok-") {
		t.Errorf("/metrics shows a token:\n%s", text)
	}
	probs, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Errorf("metric lint: %s: %s", p.Metric, p.Text)
	}
}

func TestMetricsUnconfiguredAccount(t *testing.T) {
	var e *testEnv
	m := NewMetrics(func() StatusReport { return e.proxy.Status() })
	e = newTestEnv(t, func(o *Options) {
		withMetrics(m)(o)
		o.Accounts[0].Source = nil
		o.Accounts[0].Missing = []string{"ACCT_PASSWORD"}
	})
	if resp, _ := e.do(t, "GET", "/orders", "", nil); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502 not_configured", resp.StatusCode)
	}
	text := scrape(t, e.addr)
	for _, want := range []string{
		`authproxy_requests_total{account="acct",outcome="not_configured"} 1`,
		`authproxy_account_ready{account="acct",state="unconfigured"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, `authproxy_upstream_duration_seconds_count{account="acct"}`) {
		t.Errorf("a request that never reached the broker was timed as upstream latency")
	}
}

func TestMetricsEvents(t *testing.T) {
	m := NewMetrics(nil)
	for _, ev := range []auth.Event{
		{Account: "a", Kind: auth.EventLogin},
		{Account: "a", Kind: auth.EventLogin},
		{Account: "a", Kind: auth.EventRefresh},
		{Account: "a", Kind: auth.EventLoginFailed, Err: errors.New("x")},
		{Account: "a", Kind: auth.EventRefreshFailed, Err: errors.New("x")},
		{Account: "a", Kind: auth.EventRateLimited, Err: errors.New("x")},
		{Account: "a", Kind: auth.EventInvalidated},
		{Account: "a", Kind: auth.EventSaved},
		{Account: "b", Kind: auth.EventRefresh},
	} {
		m.OnEvent(ev)
	}
	tests := []struct {
		account, kind string
		want          float64
	}{
		{"a", LoginKindLogin, 2},
		{"a", LoginKindRenewal, 1},
		{"a", LoginKindLoginFailed, 1},
		{"a", LoginKindRenewalFailed, 1},
		{"a", LoginKindRateLimited, 1},
		{"b", LoginKindRenewal, 1},
		{"b", LoginKindLogin, 0},
	}
	for _, tc := range tests {
		if got := testutil.ToFloat64(m.logins.WithLabelValues(tc.account, tc.kind)); got != tc.want {
			t.Errorf("logins{%s,%s} = %v, want %v", tc.account, tc.kind, got, tc.want)
		}
	}
	if got := testutil.ToFloat64(m.rejected.WithLabelValues("a")); got != 1 {
		t.Errorf("token rejections = %v, want 1", got)
	}
}

func TestMetricsExpiryGaugeAtScrapeTime(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	exp := now.Add(90 * time.Minute)
	past := now.Add(-time.Minute)
	m := NewMetrics(func() StatusReport {
		return StatusReport{Time: now, OpenTunnels: 3, Accounts: []AccountStatus{
			{Name: "tv", State: auth.StateReady, Expiry: &exp},
			{Name: "pf", State: auth.StateExpired, Expiry: &past},
			{Name: "tg", State: auth.StateEmpty},
		}}
	})
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range mt.GetLabel() {
				if l.GetName() == "account" {
					key += "/" + l.GetValue()
				}
			}
			got[key] = mt.GetGauge().GetValue()
		}
	}
	if v := got["authproxy_token_expiry_seconds/tv"]; math.Abs(v-5400) > 0.001 {
		t.Errorf("expiry gauge for tv = %v, want 5400", v)
	}
	if v := got["authproxy_token_expiry_seconds/pf"]; v != -60 {
		t.Errorf("expiry gauge for pf = %v, want -60", v)
	}
	if _, ok := got["authproxy_token_expiry_seconds/tg"]; ok {
		t.Errorf("an account without a token has an expiry gauge")
	}
	if v := got["authproxy_open_tunnels"]; v != 3 {
		t.Errorf("open tunnels = %v, want 3", v)
	}
}

func TestOutcomeLabel(t *testing.T) {
	tests := map[string]string{"ok": "ok", "": "unknown", "login_required": "login_required",
		"Weird Code": "other", strings.Repeat("a", 41): "other"}
	for in, want := range tests {
		if got := outcomeLabel(in); got != want {
			t.Errorf("outcomeLabel(%q) = %q, want %q", in, got, want)
		}
	}
}
