package proxy

import (
	"html/template"
	"time"

	"github.com/authproxy/authproxy/guard"
)

// dashGuardJSPath serves the kill switch buttons' script.
const dashGuardJSPath = "/dashboard/guard.js"

// dashOrder is one row of the latest orders.
type dashOrder struct {
	Time, Account, Method, Path, Outcome, OrderID, Class string
	Status                                               int
}

// SetOrders sets where the latest orders come from: normally
// (*guard.Guard).Recent. Without it the dashboard shows no orders section.
func (d *Dashboard) SetOrders(f func(n int) []guard.Entry) { d.orders.Store(&f) }

// guardView adds the latest orders and the paused accounts to v.
func (d *Dashboard) guardView(v *dashView, rep StatusReport) {
	for i, a := range rep.Accounts {
		if a.Paused && i < len(v.Rows) && v.Rows[i].Name == a.Name {
			v.Rows[i].Paused = true
			if a.PausedSince != nil {
				v.Rows[i].PausedSince = a.PausedSince.Local().Format("Mon 2 Jan 15:04:05")
			}
		}
	}
	f := d.orders.Load()
	if f == nil {
		return
	}
	v.HasOrders = true
	for _, e := range (*f)(15) {
		class := "bad"
		switch e.Outcome {
		case guard.OutcomeOK:
			class = "ok"
		case guard.OutcomePaused, guard.OutcomeRateLimited:
			class = "warn"
		}
		v.Orders = append(v.Orders, dashOrder{Time: e.Time.Local().Format(time.TimeOnly), Account: e.Account,
			Method: e.Method, Path: clip(e.Path, 80), Outcome: e.Outcome, OrderID: e.OrderID, Status: e.Status, Class: class})
	}
}

func init() {
	template.Must(dashTmpl.New("guard").Parse(`
{{define "guardBanner"}}{{range .Rows}}{{if .Paused}}<p class="banner paused" role="alert">Orders for <b>{{.Name}}</b> are paused{{if .PausedSince}} since {{.PausedSince}}{{end}}: they get 423 <code>paused</code> and never reach the broker. Data requests still pass. Resume with the button below or <code>authproxy resume {{.Name}}</code>.</p>
{{end}}{{end}}{{end}}
{{define "pauseButton"}}{{if .Paused}}<button type="button" class="guard resume" data-guard="resume" data-account="{{.Name}}">Resume orders</button>{{else}}<button type="button" class="guard pause" data-guard="pause" data-account="{{.Name}}">Pause orders</button>{{end}}{{end}}
{{define "guardOrders"}}{{if .HasOrders}}<h2>Latest orders</h2>
<table id="orders">
<thead><tr><th>Time</th><th>Account</th><th>Request</th><th class="num">Status</th><th>Outcome</th><th>Order id</th></tr></thead>
<tbody>
{{range .Orders}}<tr><td>{{.Time}}</td><td class="name">{{.Account}}</td><td><code>{{.Method}} {{.Path}}</code></td><td class="num">{{.Status}}</td><td><span class="state {{.Class}}">{{.Outcome}}</span></td><td>{{.OrderID}}</td></tr>
{{else}}<tr><td colspan="6" class="none">No orders yet. Every order is kept in the journal: <code>authproxy journal</code>.</td></tr>
{{end}}</tbody>
</table>{{end}}{{end}}`))
}

// dashGuardJS sends the Pause/Resume buttons' same-origin POSTs (JSON, so
// no page of another site can send one with a plain form).
const dashGuardJS = `// authproxy dashboard: the kill switch buttons.
(function () {
  "use strict";
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest ? ev.target.closest("button[data-guard]") : null;
    if (!b) { return; }
    var action = b.getAttribute("data-guard"), name = b.getAttribute("data-account");
    if (action === "pause" && !window.confirm("Stop all orders for " + name + "? Data requests keep working.")) { return; }
    b.disabled = true;
    fetch("/" + action + "/" + encodeURIComponent(name), {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json" }, body: "{}"
    }).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      window.location.reload();
    }).catch(function (e) {
      b.disabled = false;
      window.alert("authproxy: could not " + action + " " + name + ": " + (e && e.message || e));
    });
  });
})();
`
