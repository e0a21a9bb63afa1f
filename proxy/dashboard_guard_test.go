package proxy

import (
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth/authtest"
	"github.com/authproxy/authproxy/guard"
)

func TestDashboardKillSwitchAndOrders(t *testing.T) {
	clk := authtest.Fixed(time.Date(2026, 3, 2, 10, 0, 0, 0, time.Local))
	since := clk.Now().Add(-time.Minute)
	d := NewDashboard(DashboardOptions{Now: clk.Now, Status: func() StatusReport {
		rep := sampleReport(clk.Now())
		rep.Accounts[0].Paused, rep.Accounts[0].PausedSince = true, &since
		return rep
	}})
	body := get(t, d, "/").Body.String()
	name := sampleReport(clk.Now()).Accounts[0].Name
	for _, want := range []string{`class="banner paused"`, "Orders for <b>" + name + "</b> are paused", "authproxy resume " + name,
		`data-guard="resume" data-account="` + name + `"`, `data-guard="pause"`, `<script src="/dashboard/guard.js" defer>`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(body, "Latest orders") {
		t.Error("orders section shown without an order guard")
	}
	d.SetOrders(func(n int) []guard.Entry {
		return []guard.Entry{{Time: clk.Now(), Account: name, Method: "POST", Path: "/kb/PlaceOrders/PlaceOrder",
			Status: 423, Outcome: guard.OutcomePaused}, {Time: clk.Now(), Account: name, Method: "POST",
			Path: "/kb/PlaceOrders/PlaceOrder", Status: 200, Outcome: guard.OutcomeOK, OrderID: "<b>42</b>"}}
	})
	live := get(t, d, dashLivePath).Body.String()
	for _, want := range []string{"Latest orders", "POST /kb/PlaceOrders/PlaceOrder", `class="state warn">paused<`,
		`class="state ok">ok<`, "&lt;b&gt;42&lt;/b&gt;"} {
		if !strings.Contains(live, want) {
			t.Errorf("live fragment lacks %s:\n%s", want, live)
		}
	}
}
