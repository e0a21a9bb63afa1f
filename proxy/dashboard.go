package proxy

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/guard"
)

// DashboardOptions configure a [Dashboard].
type DashboardOptions struct {
	// Now is the clock; default time.Now. "Today" is its local calendar day.
	Now func() time.Time
	// Poll is how often the page's script fetches fresh rows; default 5s.
	// Without JavaScript the page reloads itself every 3×Poll.
	Poll time.Duration
	// Config is the rules.toml path shown in the help line ("" leaves
	// --config out).
	Config string
	// Status is where the rows come from: normally the running proxy's
	// Status. Nil: the page says the proxy is starting.
	Status func() StatusReport
}

// Dashboard is the HTML page at the proxy's "/": one row per account with
// its state in words, a live expiry countdown, today's requests and logins,
// the last error, and a "Log in" link for browser-login accounts. It uses no
// framework, CDN or external font: a small script (served at /dashboard.js)
// swaps in server-rendered rows every few seconds, and a <noscript> meta
// refresh does the same without JavaScript.
//
// Feed it with [Dashboard.Observe] (Options.Observe) and [Dashboard.OnEvent]
// (auth.CacheOptions.OnEvent); it reads the proxy's status from
// DashboardOptions.Status. All methods are safe for concurrent use.
type Dashboard struct {
	now    func() time.Time
	poll   time.Duration
	config string
	status func() StatusReport
	orders atomic.Pointer[func(int) []guard.Entry] // dashboard_guard.go

	mu  sync.Mutex
	day string                // local date the counts belong to
	by  map[string]*dayCounts // account -> today's counts
}

type dayCounts struct {
	requests, logins, renewals, failures int64
}

// NewDashboard returns a dashboard.
func NewDashboard(opts DashboardOptions) *Dashboard {
	d := &Dashboard{now: opts.Now, poll: opts.Poll, config: opts.Config, status: opts.Status, by: make(map[string]*dayCounts)}
	if d.now == nil {
		d.now = time.Now
	}
	if d.poll <= 0 {
		d.poll = 5 * time.Second
	}
	return d
}

// Observe counts one proxied request toward today's numbers.
func (d *Dashboard) Observe(rec RequestRecord) {
	if rec.Account == "" || rec.Outcome == "bypass" {
		return // a broker's own login pages are not the user's requests
	}
	d.count(rec.Account, func(c *dayCounts) { c.requests++ })
}

// OnEvent counts logins, renewals and failures toward today's numbers.
func (d *Dashboard) OnEvent(ev auth.Event) {
	switch ev.Kind {
	case auth.EventLogin:
		d.count(ev.Account, func(c *dayCounts) { c.logins++ })
	case auth.EventRefresh:
		d.count(ev.Account, func(c *dayCounts) { c.renewals++ })
	case auth.EventLoginFailed, auth.EventRefreshFailed, auth.EventRateLimited:
		d.count(ev.Account, func(c *dayCounts) { c.failures++ })
	}
}

func (d *Dashboard) count(account string, f func(*dayCounts)) {
	today := d.now().Local().Format(time.DateOnly)
	d.mu.Lock()
	defer d.mu.Unlock()
	if today != d.day {
		d.day = today
		clear(d.by)
	}
	c := d.by[account]
	if c == nil {
		c = &dayCounts{}
		d.by[account] = c
	}
	f(c)
}

// today returns a copy of today's counts.
func (d *Dashboard) today() map[string]dayCounts {
	today := d.now().Local().Format(time.DateOnly)
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]dayCounts, len(d.by))
	if today != d.day {
		return out
	}
	for k, v := range d.by {
		out[k] = *v
	}
	return out
}

// Paths the dashboard serves besides "/".
const (
	dashLivePath = "/dashboard/live"
	dashJSPath   = "/dashboard.js"
	dashCSSPath  = "/dashboard.css"
)

// ServeHTTP serves the page, its live fragment, script and style sheet.
// render executes one template into a buffer first, so that a client gets
// the whole page with its length or a 500, never half a page.
func (d *Dashboard) render(w http.ResponseWriter, name string) {
	var buf bytes.Buffer
	if err := dashTmpl.ExecuteTemplate(&buf, name, d.view()); err != nil {
		http.Error(w, "dashboard: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, _ = w.Write(buf.Bytes())
}

func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	switch r.URL.Path {
	case "/":
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "+
			"img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		d.render(w, "page")
	case dashLivePath:
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		d.render(w, "live")
	case dashJSPath:
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		_, _ = w.Write([]byte(dashJS))
	case dashCSSPath:
		h.Set("Content-Type", "text/css; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		_, _ = w.Write([]byte(dashCSS))
	case "/favicon.ico":
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

// dashView is what the templates render.
type dashView struct {
	Listen      string
	OpenTunnels int64
	Updated     string
	PollMillis  int64
	Refresh     int64 // seconds, for the no-JavaScript meta refresh
	Starting    bool
	Config      string // rules.toml path for the help line
	TLSFailures int64  // client TLS handshakes broken off since start
	TLSLast     string // the last one: "host: reason (at 15:04:05)"
	Rows        []dashRow
	Orders      []dashOrder // latest orders (dashboard_guard.go)
	HasOrders   bool        // the order guard is on
}

// dashRow is one account.
type dashRow struct {
	Name, Broker       string
	State, StateClass  string
	Detail             string
	HasExpiry, Soon    bool
	ExpiresIn          int64 // seconds at render time
	Countdown, Expires string
	RequestsToday      int64
	RequestsTitle      string
	LoginsToday        int64
	LoginsTitle        string
	LastError          string
	LoginHref          string
	Paused             bool   // orders stopped by the kill switch
	PausedSince        string // when, in local time
}

func (d *Dashboard) view() dashView {
	now := d.now()
	v := dashView{
		Updated:    now.Local().Format("15:04:05"),
		PollMillis: d.poll.Milliseconds(),
		Refresh:    int64((3 * d.poll).Seconds()),
		Config:     d.config,
	}
	if d.status == nil {
		v.Starting = true
		return v
	}
	rep := d.status()
	v.Listen, v.OpenTunnels = rep.Listen, rep.OpenTunnels
	if rep.ClientTLSFailures > 0 {
		v.TLSFailures, v.TLSLast = rep.ClientTLSFailures, rep.LastClientTLSFailure
		if rep.LastClientTLSAt != nil {
			v.TLSLast += " (at " + rep.LastClientTLSAt.Local().Format("15:04:05") + ")"
		}
	}
	today := d.today()
	for _, a := range rep.Accounts {
		v.Rows = append(v.Rows, dashRowFor(a, today[a.Name], now))
	}
	d.guardView(&v, rep)
	return v
}

// dashRowFor renders one account's status in words.
func dashRowFor(a AccountStatus, today dayCounts, now time.Time) dashRow {
	row := dashRow{Name: a.Name, Broker: brokerName(a), RequestsToday: today.requests,
		LoginsToday: today.logins + today.renewals}
	row.State, row.StateClass, row.Detail = stateWords(a, now)
	if a.Interactive {
		row.LoginHref = "/login/" + url.PathEscape(a.Name)
	}
	if a.Expiry != nil {
		row.HasExpiry = true
		row.ExpiresIn = int64(a.Expiry.Sub(now) / time.Second)
		row.Countdown = countdown(row.ExpiresIn)
		row.Expires = a.Expiry.Local().Format("Mon 2 Jan 15:04:05 MST")
		row.Soon = row.ExpiresIn > 0 && LoginDue(a, now)
		if row.Soon && row.Detail == "" {
			row.Detail = "log in again before " + a.Expiry.Local().Format("15:04") + ": a browser login cannot be renewed by the proxy"
		}
	}
	var total, bypassed int64
	parts := make([]string, 0, len(a.Requests))
	for k, n := range a.Requests {
		if k == "bypass" { // not counted, as in Observe and `authproxy status`
			bypassed += n
			continue
		}
		total += n
		parts = append(parts, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(parts)
	row.RequestsTitle = fmt.Sprintf("since the proxy started: %d", total)
	if len(parts) > 0 {
		row.RequestsTitle += " (" + strings.Join(parts, ", ") + ")"
	}
	if bypassed > 0 {
		row.RequestsTitle += fmt.Sprintf("; not counted: %d to the broker's own login pages", bypassed)
	}
	row.LoginsTitle = fmt.Sprintf("today: %d logins, %d renewals, %d failures; since start: %d logins, %d renewals, %d failures",
		today.logins, today.renewals, today.failures, a.Logins, a.Refreshes, a.Failures)
	row.LastError = clip(a.LastError, 300)
	// The state words or their detail may already carry the error: show
	// it once.
	if short := clip(a.LastError, 160); short != "" && (strings.Contains(row.State, short) || strings.Contains(row.Detail, short)) {
		row.LastError = ""
	}
	return row
}

// stateWords is the state a person reads at a glance, a CSS class, and a
// short explanation.
func stateWords(a AccountStatus, now time.Time) (words, class, detail string) {
	reason := a.Reason
	if reason == "" {
		reason = a.LastError
	}
	switch a.State {
	case "unconfigured":
		return "unconfigured", "off", "set " + strings.Join(a.Missing, ", ") + " and restart the proxy"
	case auth.StateReady:
		return "ready", "ok", ""
	case auth.StateRefreshing:
		return "refreshing", "busy", ""
	case auth.StateNeedsLogin:
		if a.Interactive {
			return "needs login", "warn", "log in in your browser"
		}
		return "needs login", "warn", clip(reason, 160)
	case auth.StateError:
		if reason == "" {
			reason = "unknown"
		}
		return "error (" + clip(reason, 160) + ")", "bad", ""
	case "locked out":
		until := ""
		if a.LockedUntil != nil {
			until = " until " + clock(*a.LockedUntil, now)
		}
		return "locked out" + until, "bad", clip(a.LastError, 160)
	case auth.StateExpired:
		if a.Interactive {
			return "needs login", "warn", "the last login has expired"
		}
		return "expired", "warn", "renews on the next request"
	case auth.StateEmpty:
		if a.Interactive {
			return "needs login", "warn", "no login yet"
		}
		return "waiting", "idle", "logs in on the first request"
	}
	return a.State, "idle", clip(reason, 160)
}

// brokerName is the broker's display name, or its type when it has none.
func brokerName(a AccountStatus) string {
	if a.Display != "" {
		return a.Display
	}
	return a.Type
}

// countdown formats seconds left like the page's script does.
func countdown(s int64) string {
	if s <= 0 {
		return "expired"
	}
	d, h, m, sec := s/86400, s%86400/3600, s%3600/60, s%60
	switch {
	case d > 0:
		return fmt.Sprintf("in %dd %dh", d, h)
	case h > 0:
		return fmt.Sprintf("in %dh %02dm", h, m)
	case m > 0:
		return fmt.Sprintf("in %dm %02ds", m, sec)
	}
	return fmt.Sprintf("in %ds", sec)
}

// clock shows t in local time, with the date when it is not today.
func clock(t, now time.Time) string {
	t, now = t.Local(), now.Local()
	if t.Format(time.DateOnly) == now.Format(time.DateOnly) {
		return t.Format("15:04 MST")
	}
	return t.Format("Mon 2 Jan 15:04 MST")
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && (s[cut]&0xC0) == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}

var dashTmpl = template.Must(template.New("dash").Parse(`
{{define "page"}}<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>authproxy</title>
<noscript><meta http-equiv="refresh" content="{{.Refresh}}"></noscript>
<link rel="stylesheet" href="/dashboard.css">
<script src="/dashboard.js" defer></script>
<script src="/dashboard/guard.js" defer></script>
</head>
<body data-poll="{{.PollMillis}}">
<header><h1>authproxy</h1><p class="tag">logs in to your brokers so your scripts don't have to</p></header>
<main>
<div id="live">{{template "live" .}}</div>
<section class="help">
<h2>Point a script at it</h2>
<pre>eval "$(authproxy env{{if .Config}} --config {{.Config}}{{end}})"        # sh, bash, zsh; --shell fish|powershell; --python for a notebook</pre>
<p>Clients must trust the local CA: <a href="/ca.pem" download="authproxy-ca.pem">download ca.pem</a>, or run <code>authproxy ca install</code> to add it to the system store.</p>
<p>Machine-readable: <a href="/status">/status</a> (JSON) · <a href="/metrics">/metrics</a> (Prometheus) · <a href="/healthz">/healthz</a></p>
</section>
</main>
</body>
</html>
{{end}}
{{define "live"}}{{template "guardBanner" .}}<p class="summary">{{if .Starting}}starting…{{else}}listening on <code>{{.Listen}}</code> · {{.OpenTunnels}} open tunnel{{if ne .OpenTunnels 1}}s{{end}}{{end}} · <span id="updated">updated {{.Updated}}</span></p>
{{if .TLSFailures}}<p class="tlsfail">{{.TLSFailures}} client TLS handshake{{if ne .TLSFailures 1}}s{{end}} failed — a client does not trust the local CA? Last: {{.TLSLast}}. Fix: <code>eval "$(authproxy env)"</code> in its shell, or <code>authproxy ca install</code>; the CA: <a href="/ca.pem">/ca.pem</a></p>{{end}}
<table id="accounts">
<thead><tr><th>Account</th><th>Broker</th><th>State</th><th>Token expires</th><th class="num">Requests today</th><th class="num">Logins today</th><th>Last error</th><th></th></tr></thead>
<tbody>
{{range .Rows}}<tr id="account-{{.Name}}" class="{{.StateClass}}">
<td class="name">{{.Name}}</td>
<td>{{.Broker}}</td>
<td><span class="state {{.StateClass}}">{{.State}}</span>{{if .Detail}}<div class="detail">{{.Detail}}</div>{{end}}</td>
<td>{{if .HasExpiry}}<span class="countdown{{if .Soon}} soon{{end}}" data-left="{{.ExpiresIn}}" title="{{.Expires}}">{{.Countdown}}</span>{{else}}<span class="none">–</span>{{end}}</td>
<td class="num" title="{{.RequestsTitle}}">{{.RequestsToday}}</td>
<td class="num" title="{{.LoginsTitle}}">{{.LoginsToday}}</td>
<td class="err">{{.LastError}}</td>
<td>{{if .LoginHref}}<a class="button login" href="{{.LoginHref}}" data-account="{{.Name}}">Log in</a>{{end}}{{template "pauseButton" .}}</td>
</tr>
{{else}}<tr><td colspan="8" class="none">{{if $.Starting}}The proxy is starting.{{else}}No accounts: add a [brokers.NAME] table to rules.toml.{{end}}</td></tr>
{{end}}</tbody>
</table>
{{template "guardOrders" .}}
{{end}}`))

const dashJS = `// authproxy dashboard: swaps in fresh rows every few seconds and ticks the
// expiry countdowns once a second. No dependencies.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var every = parseInt(document.body.getAttribute("data-poll"), 10) || 5000;
  var loaded = Date.now();
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function fmt(s) {
    s = Math.floor(s);
    if (s <= 0) { return "expired"; }
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), sec = s % 60;
    if (d > 0) { return "in " + d + "d " + h + "h"; }
    if (h > 0) { return "in " + h + "h " + pad(m) + "m"; }
    if (m > 0) { return "in " + m + "m " + pad(sec) + "s"; }
    return "in " + sec + "s";
  }
  function tick() {
    var gone = (Date.now() - loaded) / 1000;
    var els = live.querySelectorAll("[data-left]");
    for (var i = 0; i < els.length; i++) {
      els[i].textContent = fmt(parseFloat(els[i].getAttribute("data-left")) - gone);
    }
  }
  function poll() {
    var ctl = new AbortController();
    var timer = setTimeout(function () { ctl.abort(); }, every);
    fetch("` + dashLivePath + `", { cache: "no-store", credentials: "same-origin", signal: ctl.signal })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) {
        live.innerHTML = html;
        loaded = Date.now();
        document.body.classList.remove("offline");
        tick();
      })
      .catch(function (e) {
        document.body.classList.add("offline");
        var u = document.getElementById("updated");
        if (u) { u.textContent = "proxy not reachable (" + (e && e.message || e) + "); retrying"; }
      })
      .then(function () { clearTimeout(timer); setTimeout(poll, every); });
  }
  tick();
  setInterval(tick, 1000);
  setTimeout(poll, every);
})();
`

const dashCSS = `:root { color-scheme: light dark; --ok: #176f2c; --warn: #8a5a00; --bad: #a3261b; --muted: #666; --line: #ddd; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; margin: 2em auto; max-width: 72em; padding: 0 1em; color: #222; background: #fff; }
h1 { font-size: 1.5em; margin: 0; }
h2 { font-size: 1.1em; }
.tag, .summary, .detail, .none { color: var(--muted); }
.detail { font-size: .85em; margin-top: .2em; }
table { border-collapse: collapse; width: 100%; margin-top: .5em; }
th, td { text-align: left; padding: .45em .6em; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; font-size: .9em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.name { font-weight: 600; }
td.err { color: var(--bad); font-size: .85em; max-width: 24em; overflow-wrap: anywhere; }
.tlsfail { color: var(--bad); overflow-wrap: anywhere; }
.detail, .state { overflow-wrap: anywhere; }
td:nth-child(3) { max-width: 28em; }
.state { font-weight: 600; }
.state.ok { color: var(--ok); }
.state.warn, .countdown.soon { color: var(--warn); }
.state.bad { color: var(--bad); }
.state.off, .state.idle { color: var(--muted); }
.state.busy { color: #1f5fa8; }
.countdown { font-variant-numeric: tabular-nums; }
.countdown, a.button, td.num, th { white-space: nowrap; }
a.button { display: inline-block; padding: .3em .9em; border-radius: .3em; background: #1f5fa8; color: #fff; text-decoration: none; font-weight: 600; }
a.button:hover, a.button:focus { background: #174a84; }
pre { background: #f4f4f4; padding: .6em; overflow-x: auto; }
body.offline #updated { color: var(--bad); }
.banner.paused { background: #fff3cd; color: #5c4400; border: 1px solid #e0a83a; padding: .6em .8em; border-radius: .3em; }
button.guard { margin-left: .4em; padding: .3em .8em; border-radius: .3em; border: 1px solid var(--bad); background: transparent; color: var(--bad); font-weight: 600; cursor: pointer; }
button.guard.resume { border-color: var(--ok); color: var(--ok); }
@media (prefers-color-scheme: dark) {
  body { color: #ddd; background: #161616; }
  :root { --line: #333; --muted: #999; --ok: #5cc072; --warn: #e0a83a; --bad: #f07167; }
  pre { background: #222; }
}
`
