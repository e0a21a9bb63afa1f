package proxy

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/guard"
)

// orderBroker is fakeBroker declaring POST /orders and POST /orders/slow as
// orders.
type orderBroker struct{ fakeBroker }

func (orderBroker) Orders() auth.Routes {
	return auth.Routes{{Method: "POST", Path: "/orders"}, {Method: "POST", Path: "/orders/slow"}}
}

// gatedTransport holds requests to /orders/slow until gate is closed.
type gatedTransport struct {
	next    http.RoundTripper
	gate    chan struct{}
	arrived chan struct{}
}

func (g *gatedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/orders/slow" {
		g.arrived <- struct{}{}
		<-g.gate
	}
	return g.next.RoundTrip(r)
}

func newGuardEnv(t *testing.T, limit int, gated *gatedTransport) (*testEnv, *guard.Guard) {
	t.Helper()
	g, err := guard.New(guard.Options{StateDir: t.TempDir(), Limits: map[string]int{"acct": limit}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	e := newTestEnv(t, func(o *Options) {
		o.Accounts[0].Broker = orderBroker{}
		o.Guard = g
		if gated != nil {
			gated.next = o.Transport
			o.Transport = gated
		}
	})
	return e, g
}

func TestPausedOrdersNeverReachTheBroker(t *testing.T) {
	e, g := newGuardEnv(t, 10, nil)
	if _, err := g.SetPaused([]string{"acct"}, true, "test"); err != nil {
		t.Fatal(err)
	}
	resp, body := e.do(t, "POST", "/orders", `{"qty":1,"api_key":"client-key"}`, map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != http.StatusLocked || resp.Header.Get("X-Authproxy-Error") != "paused" ||
		!strings.Contains(body, "authproxy resume acct") || !strings.Contains(body, `"account":"acct"`) {
		t.Fatalf("paused order: %d %s", resp.StatusCode, body)
	}
	// Spelling the path differently does not slip past.
	if resp, _ := e.do(t, "POST", "//orders/", `{}`, nil); resp.StatusCode != http.StatusLocked {
		t.Fatalf("//orders/: %d", resp.StatusCode)
	}
	if resp, _ := e.do(t, "GET", "/orders", "", nil); resp.StatusCode != 200 {
		t.Fatalf("data request while paused: %d", resp.StatusCode)
	}
	if got := e.up.seen(); len(got) != 1 {
		t.Fatalf("broker saw %d requests, want only the data request", len(got))
	}
	rec := g.Recent(10)
	if len(rec) != 2 || rec[1].Outcome != guard.OutcomePaused || rec[1].Status != 423 {
		t.Fatalf("journal: %+v", rec)
	}
	if b := string(rec[1].Body); strings.Contains(b, "client-key") || !strings.Contains(b, `"qty":1`) {
		t.Errorf("journal body %s", b)
	}
	if _, err := g.SetPaused([]string{"acct"}, false, "test"); err != nil {
		t.Fatal(err)
	}
	resp, _ = e.do(t, "POST", "/orders", `{"qty":2}`, map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != 200 {
		t.Fatalf("after resume: %d", resp.StatusCode)
	}
	if rec := g.Recent(1); rec[0].Outcome != guard.OutcomeOK || rec[0].Status != 200 {
		t.Fatalf("journal after resume: %+v", rec[0])
	}
}

// TestDataNotDelayedByRateGuard: with the only order slot held by an order
// the broker has not answered and another order waiting in line, a data
// request still goes through (it finishes while both orders are pending).
func TestDataNotDelayedByRateGuard(t *testing.T) {
	// The second order waits in line for guard.MaxWait of real time; on a
	// loaded machine the data request may take longer than that, and then
	// the run proves nothing either way. Such a run is repeated (bounded),
	// never counted as a pass.
	for try := 1; try <= 3; try++ {
		if dataPassesQueuedOrders(t) {
			return
		}
		t.Logf("try %d: an order finished before the data request was checked (machine busy); trying again", try)
	}
	t.Fatal("in 3 tries an order always finished before the data request was checked; the test proves nothing")
}

// dataPassesQueuedOrders holds one order at the broker and a second in the
// rate guard's line, and checks that a data request passes meanwhile. It
// returns false when the run was inconclusive.
func dataPassesQueuedOrders(t *testing.T) bool {
	t.Helper()
	gt := &gatedTransport{gate: make(chan struct{}), arrived: make(chan struct{}, 4)}
	e, g := newGuardEnv(t, 1, gt)
	var wg sync.WaitGroup
	statuses := make(chan int, 2)
	defer func() {
		select {
		case <-gt.gate:
		default:
			close(gt.gate)
		}
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp, _ := e.do(t, "POST", "/orders/slow", `{}`, nil)
		statuses <- resp.StatusCode
	}()
	select {
	case <-gt.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the first order never reached the broker")
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp, _ := e.do(t, "POST", "/orders", `{}`, nil)
		statuses <- resp.StatusCode
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
	}()
	resp, body := e.do(t, "GET", "/quotes", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("data request: %d %s", resp.StatusCode, body)
	}
	select {
	case <-statuses:
		return false
	default:
	}
	close(gt.gate)
	wg.Wait()
	close(statuses)
	var got []int
	for s := range statuses {
		got = append(got, s)
	}
	// The slow order: 200. The second waited a second in line behind a slot
	// that frees a second after the slow answer: 429.
	if len(got) != 2 || !(got[0] == 200 && got[1] == 429 || got[0] == 429 && got[1] == 200) {
		t.Fatalf("order statuses %v, want one 200 and one 429", got)
	}
	if n := len(g.Recent(10)); n != 2 {
		t.Fatalf("journal holds %d orders, want 2", n)
	}
	return true
}

func TestPauseEndpointIsSameOriginOnly(t *testing.T) {
	e, g := newGuardEnv(t, 10, nil)
	post := func(path string, hdr map[string]string) int {
		req, _ := http.NewRequestWithContext(context.Background(), "POST", "http://"+e.addr+path, strings.NewReader("{}"))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	jsonCT := map[string]string{"Content-Type": "application/json"}
	for name, hdr := range map[string]map[string]string{
		"form":        {"Content-Type": "application/x-www-form-urlencoded"},
		"no type":     {},
		"cross-site":  {"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
		"same-site":   {"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"},
		"other page":  {"Content-Type": "application/json", "Origin": "http://evil.example"},
		"null origin": {"Content-Type": "application/json", "Origin": "null"},
	} {
		if got := post("/pause/acct", hdr); got != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, got)
		}
	}
	if g.Paused("acct") {
		t.Fatal("a refused request paused the account")
	}
	if got := post("/pause/nope", jsonCT); got != http.StatusNotFound {
		t.Errorf("unknown account: %d", got)
	}
	same := map[string]string{"Content-Type": "application/json", "Origin": "http://" + e.addr, "Sec-Fetch-Site": "same-origin"}
	if got := post("/pause/acct", same); got != 200 || !g.Paused("acct") {
		t.Fatalf("dashboard pause: %d paused=%v", got, g.Paused("acct"))
	}
	if got := post("/resume", jsonCT); got != 200 || g.Paused("acct") {
		t.Fatalf("resume all: %d paused=%v", got, g.Paused("acct"))
	}
}
