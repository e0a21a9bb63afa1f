package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/authtest"
)

func TestStateWords(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.Local)
	locked := now.Add(42 * time.Minute)
	tests := []struct {
		name  string
		in    AccountStatus
		words string
		class string
	}{
		{"ready", AccountStatus{State: "ready"}, "ready", "ok"},
		{"refreshing", AccountStatus{State: "refreshing"}, "refreshing", "busy"},
		{"needs login", AccountStatus{State: "needs login", Interactive: true}, "needs login", "warn"},
		{"unconfigured", AccountStatus{State: "unconfigured", Missing: []string{"A", "B"}}, "unconfigured", "off"},
		{"error", AccountStatus{State: "error", Reason: `login for "tg" refused: Invalid MPIN`}, `error (login for "tg" refused: Invalid MPIN)`, "bad"},
		{"error without reason", AccountStatus{State: "error"}, "error (unknown)", "bad"},
		{"locked out", AccountStatus{State: "locked out", LockedUntil: &locked}, "locked out until " + locked.Format("15:04 MST"), "bad"},
		{"expired interactive", AccountStatus{State: "expired", Interactive: true}, "needs login", "warn"},
		{"expired automatic", AccountStatus{State: "expired"}, "expired", "warn"},
		{"empty interactive", AccountStatus{State: "empty", Interactive: true}, "needs login", "warn"},
		{"empty automatic", AccountStatus{State: "empty"}, "waiting", "idle"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			words, class, _ := stateWords(tc.in, now)
			if words != tc.words || class != tc.class {
				t.Errorf("got %q/%q, want %q/%q", words, class, tc.words, tc.class)
			}
		})
	}
	_, _, detail := stateWords(AccountStatus{State: "unconfigured", Missing: []string{"TG_MPIN", "TG_TOTP_SECRET"}}, now)
	if !strings.Contains(detail, "TG_MPIN, TG_TOTP_SECRET") {
		t.Errorf("unconfigured detail %q does not name the variables", detail)
	}
	tomorrow := now.Add(30 * time.Hour)
	if words, _, _ := stateWords(AccountStatus{State: "locked out", LockedUntil: &tomorrow}, now); !strings.Contains(words, tomorrow.Format("Mon 2 Jan")) {
		t.Errorf("a lockout ending another day should show the date: %q", words)
	}
}

func TestCountdown(t *testing.T) {
	tests := map[int64]string{-5: "expired", 0: "expired", 9: "in 9s", 61: "in 1m 01s",
		3600 + 120: "in 1h 02m", 86400*2 + 3*3600: "in 2d 3h"}
	for in, want := range tests {
		if got := countdown(in); got != want {
			t.Errorf("countdown(%d) = %q, want %q", in, got, want)
		}
	}
}

func sampleReport(now time.Time) StatusReport {
	exp := now.Add(5*time.Hour + 2*time.Minute)
	soon := now.Add(10 * time.Minute)
	return StatusReport{Listen: "127.0.0.1:8899", Time: now, OpenTunnels: 2, Accounts: []AccountStatus{
		{Name: "fivepaisa", Type: "fivepaisa", Display: "5paisa", State: "unconfigured", Missing: []string{"FIVEPAISA_APP_KEY"}},
		{Name: "pocketful", Type: "pocketful", Display: "Pocketful", State: "ready", Interactive: true, LoginURL: "http://127.0.0.1:8899/login/pocketful", Expiry: &soon},
		{Name: "tradingo", Type: "tradingo", Display: "Tradingo", State: "ready", Expiry: &exp, Requests: map[string]int64{"ok": 7, "upstream_error": 1}, Logins: 1},
		{Name: "tradovate", Type: "tradovate", Display: "Tradovate", State: "error", Reason: "login for \"tradovate\" refused: <script>alert(1)</script>",
			LastError: "login for \"tradovate\" refused: <script>alert(1)</script>"},
	}}
}

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec
}

func TestDashboardPage(t *testing.T) {
	clk := authtest.Fixed(time.Date(2026, 3, 2, 10, 0, 0, 0, time.Local))
	d := NewDashboard(DashboardOptions{Now: clk.Now, Poll: 4 * time.Second,
		Status: func() StatusReport { return sampleReport(clk.Now()) }})
	for range 3 {
		d.Observe(RequestRecord{Account: "tradingo", Outcome: "ok"})
	}
	d.OnEvent(auth.Event{Account: "tradingo", Kind: auth.EventLogin})
	d.OnEvent(auth.Event{Account: "tradingo", Kind: auth.EventRefresh})

	rec := get(t, d, "/")
	body := rec.Body.String()
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("status %d type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	row := func(name string) string {
		i := strings.Index(body, `<tr id="account-`+name+`"`)
		if i < 0 {
			t.Fatalf("no row for %s:\n%s", name, body)
		}
		j := strings.Index(body[i:], "</tr>")
		return body[i : i+j]
	}
	tg := row("tradingo")
	for _, want := range []string{"Tradingo", `class="state ok">ready<`, `data-left="18120"`, "in 5h 02m", `>3</td>`, `>2</td>`,
		"since the proxy started: 8 (ok 7, upstream_error 1)"} {
		if !strings.Contains(tg, want) {
			t.Errorf("tradingo row lacks %q:\n%s", want, tg)
		}
	}
	if strings.Contains(tg, "Log in") {
		t.Errorf("an automatic-login account has a Log in button")
	}
	pf := row("pocketful")
	if !strings.Contains(pf, `<a class="button login" href="/login/pocketful" data-account="pocketful">Log in</a>`) {
		t.Errorf("pocketful row has no Log in link:\n%s", pf)
	}
	if !strings.Contains(pf, "countdown soon") {
		t.Errorf("a browser-login token expiring in 10 minutes is not flagged:\n%s", pf)
	}
	if fp := row("fivepaisa"); !strings.Contains(fp, ">unconfigured<") || !strings.Contains(fp, "FIVEPAISA_APP_KEY") {
		t.Errorf("fivepaisa row:\n%s", fp)
	}
	tv := row("tradovate")
	if strings.Contains(tv, "<script>") || !strings.Contains(tv, "error (login for &#34;tradovate&#34; refused: &lt;script&gt;") {
		t.Errorf("error text not escaped or missing:\n%s", tv)
	}
	// Offline-capable: no external resources, a script of our own, and a
	// meta refresh for browsers without JavaScript.
	if m := regexp.MustCompile(`(?i)(src|href)="(https?:)?//`).FindString(body); m != "" {
		t.Errorf("page loads an external resource: %s", m)
	}
	if !strings.Contains(body, `<noscript><meta http-equiv="refresh" content="12"></noscript>`) {
		t.Errorf("no meta refresh fallback")
	}
	if !strings.Contains(body, `<script src="/dashboard.js" defer></script>`) || !strings.Contains(body, `data-poll="4000"`) {
		t.Errorf("no polling script")
	}

	js := get(t, d, "/dashboard.js")
	if js.Code != 200 || !strings.Contains(js.Header().Get("Content-Type"), "javascript") || !strings.Contains(js.Body.String(), `fetch("/dashboard/live"`) {
		t.Errorf("/dashboard.js: %d %q", js.Code, js.Header().Get("Content-Type"))
	}
	if css := get(t, d, "/dashboard.css"); css.Code != 200 || !strings.Contains(css.Header().Get("Content-Type"), "text/css") {
		t.Errorf("/dashboard.css: %d", css.Code)
	}
	live := get(t, d, "/dashboard/live")
	if live.Code != 200 || !strings.Contains(live.Body.String(), `<tr id="account-tradingo"`) || strings.Contains(live.Body.String(), "<html") {
		t.Errorf("/dashboard/live is not the table fragment: %d\n%s", live.Code, live.Body.String())
	}
	if nf := get(t, d, "/nope"); nf.Code != 404 {
		t.Errorf("/nope: %d, want 404", nf.Code)
	}
	rec = httptest.NewRecorder()
	d.ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", rec.Code)
	}
}

func TestDashboardTodayResetsAtMidnight(t *testing.T) {
	clk := authtest.Fixed(time.Date(2026, 3, 2, 23, 59, 0, 0, time.Local))
	d := NewDashboard(DashboardOptions{Now: clk.Now})
	d.Observe(RequestRecord{Account: "tg"})
	d.Observe(RequestRecord{Account: "tg"})
	d.Observe(RequestRecord{})                                 // no account: not counted
	d.Observe(RequestRecord{Account: "tg", Outcome: "bypass"}) // a login page: not counted
	d.OnEvent(auth.Event{Account: "tg", Kind: auth.EventLoginFailed})
	if got := d.today()["tg"]; got.requests != 2 || got.failures != 1 {
		t.Fatalf("today = %+v", got)
	}
	clk.Advance(2 * time.Minute)
	if got := d.today()["tg"]; got != (dayCounts{}) {
		t.Fatalf("after midnight today = %+v, want zero", got)
	}
	d.Observe(RequestRecord{Account: "tg"})
	if got := d.today()["tg"]; got.requests != 1 {
		t.Fatalf("first request of the new day: %+v", got)
	}
}

func TestDashboardBeforeStatus(t *testing.T) {
	d := NewDashboard(DashboardOptions{})
	rec := get(t, d, "/")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "starting") {
		t.Fatalf("%d\n%s", rec.Code, rec.Body.String())
	}
}

// The dashboard is what the proxy serves at "/" when mounted as Extra, and
// its Log in link leads to the proxy's own /login/NAME.
func TestDashboardMountedOnProxy(t *testing.T) {
	var e *testEnv
	d := NewDashboard(DashboardOptions{Status: func() StatusReport { return e.proxy.Status() }})
	e = newTestEnv(t, func(o *Options) { o.Extra = d; o.Observe = d.Observe })
	if resp, _ := e.do(t, "GET", "/orders", "", nil); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	c := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + e.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `<tr id="account-acct"`) ||
		!strings.Contains(string(body), `class="state ok">ready<`) || !strings.Contains(string(body), `title="since the proxy started: 1 (ok 1)">1</td>`) {
		t.Fatalf("status %d\n%s", resp.StatusCode, body)
	}
	// The proxy's own endpoints still win over the mount.
	resp, err = c.Get("http://" + e.addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
}

// GET /ca.pem serves the local CA's certificate (never its key), linked
// from the dashboard, whose help line names --config.
func TestCAPEMEndpoint(t *testing.T) {
	var e *testEnv
	d := NewDashboard(DashboardOptions{Config: "/home/me/rules.toml", Status: func() StatusReport { return e.proxy.Status() }})
	e = newTestEnv(t, func(o *Options) { o.Extra = d })
	c := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + e.addr + "/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := e.proxy.opts.CA.(interface{ CertPEM() []byte }).CertPEM()
	if resp.StatusCode != 200 || string(body) != string(want) || strings.Contains(string(body), "PRIVATE KEY") {
		t.Fatalf("/ca.pem: %d\n%s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-pem-file" {
		t.Errorf("Content-Type %q", ct)
	}
	resp, err = c.Get("http://" + e.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, w := range []string{`href="/ca.pem"`, `authproxy env --config /home/me/rules.toml`} {
		if !strings.Contains(string(body), w) {
			t.Errorf("dashboard lacks %s", w)
		}
	}
}
