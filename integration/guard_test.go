package integration

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/fakebroker/fakehttp"
	"github.com/authproxy/authproxy/internal/fakebroker/tradingo"
)

const (
	placeOrderPath = "/kb/PlaceOrders/PlaceOrder"
	placeOrderURL  = "https://" + tgHost + placeOrderPath
	guardLimit     = 5
)

// guardWorld is a strict fake Tradingo behind an arrival recorder, with
// max_orders_per_second = guardLimit, and a fake Tradovate (account tv).
func guardWorld(t *testing.T) (*world, *tradingo.Fake, *fakehttp.Arrivals, string) {
	w, _ := tradovateWorld(t, tvPassword, nil)
	fake := tradingo.New(tradingo.Options{ClientCode: tgClientCode, MPIN: tgMPIN, TOTPSecret: tgTOTPSecret})
	arr := &fakehttp.Arrivals{Next: fake}
	w.serve(arr, tgHost)
	w.env["TG_CLIENT_CODE"] = tgClientCode
	w.env["TG_MPIN"] = tgMPIN
	w.env["TG_TOTP_SECRET"] = tgTOTPSecret
	return w, fake, arr, w.writeConfig(tgAccount + "max_orders_per_second = 5\n\n" + tvAccount)
}

func order(t *testing.T, env []string, extra ...string) curlResult {
	t.Helper()
	args := append([]string{"-X", "POST", "-H", "Content-Type: application/json",
		"-d", `{"Uid":"` + tgClientCode + `","Exch":"NSE","Tsym":"SBIN-EQ","Qty":"1","password":"client-own-secret"}`}, extra...)
	return curl(t, env, append(args, placeOrderURL)...)
}

func dataRequest(t *testing.T, env []string) curlResult {
	t.Helper()
	return curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"Uid":"`+tgClientCode+`"}`, orderBookURL)
}

// TestOrderGuard drives the kill switch, the rate guard and the journal
// from outside: curl, Python requests and the authproxy CLI against the
// built binary and a strict fake Tradingo that records arrival times.
func TestOrderGuard(t *testing.T) {
	w, fake, arr, cfg := guardWorld(t)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)
	sent := 0 // order requests sent by clients

	res := order(t, env)
	sent++
	if res.Status != 200 || !strings.Contains(res.Body, "NorenOrdNo") {
		t.Fatalf("first order: %d %s %s\n%s", res.Status, res.Err, res.Body, p.Output())
	}

	// A Tradovate order (another broker's declaration) is guarded too.
	tvOrder := func() curlResult {
		return curl(t, env, "-X", "POST", "-H", "Content-Type: application/json",
			"-d", `{"accountSpec":"DEMO4242","action":"Buy","symbol":"MESM1","orderQty":1,"orderType":"Market","isAutomated":true}`,
			"https://demo.tradovateapi.com/v1/order/placeOSO")
	}
	if res := tvOrder(); res.Status != 200 || !strings.Contains(res.Body, "orderId") {
		t.Fatalf("tradovate order: %d %s %s", res.Status, res.Err, res.Body)
	}

	// Rate guard: a burst of 20 concurrent orders from Python threads.
	out, err := python(t, env, `
import requests, sys, json
from concurrent.futures import ThreadPoolExecutor
def one(i):
    r = requests.post(sys.argv[1], json={"Uid": sys.argv[2], "Qty": str(i)}, timeout=30)
    return [str(r.status_code), r.headers.get("Retry-After"), r.headers.get("X-Authproxy-Error")]
with ThreadPoolExecutor(20) as ex:
    print(json.dumps(list(ex.map(one, range(20)))))
`, placeOrderURL, tgClientCode)
	if err != nil {
		t.Fatalf("burst: %v\n%s", err, p.Output())
	}
	sent += 20
	var answers [][3]*string
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &answers); err != nil {
		t.Fatalf("burst output %q: %v", out, err)
	}
	var okN, limitedN int
	for _, a := range answers {
		var status int
		if a[0] != nil {
			status = atoiOr(*a[0])
		}
		switch {
		case a[0] == nil:
			t.Errorf("a client got no answer: %v", a)
		case status == 200:
			okN++
		case status == 429 && a[2] != nil && *a[2] == "rate_limited" && a[1] != nil && *a[1] != "":
			limitedN++
		default:
			t.Errorf("unexpected answer %v", a)
		}
	}
	orders := arr.List(placeOrderPath)
	if got := fakehttp.MaxInWindow(orders, time.Second); got > guardLimit {
		t.Errorf("the broker saw %d orders within one second, limit %d", got, guardLimit)
	}
	if okN+limitedN != 20 || okN < guardLimit-1 || len(orders) != 1+okN {
		t.Errorf("burst: %d ok, %d rate_limited, broker saw %d orders (1 before the burst)", okN, limitedN, len(orders))
	}
	t.Logf("burst of 20 at %d/s: %d sent, %d rate_limited", guardLimit, okN, limitedN)

	// Kill switch from the CLI: in effect when the command returns.
	pauseOut := runCLI(t, w, "pause", "tg", "--config", cfg)
	if !strings.Contains(pauseOut, "authproxy resume tg") {
		t.Errorf("pause output lacks the resume hint: %s", pauseOut)
	}
	before := len(arr.List(placeOrderPath))
	res = order(t, env)
	sent++
	if res.Status != 423 || res.Header.Get("X-Authproxy-Error") != "paused" ||
		!strings.Contains(res.Body, `"account":"tg"`) || !strings.Contains(res.Body, "authproxy resume tg") {
		t.Fatalf("order while paused: %d %v %s", res.Status, res.Header, res.Body)
	}
	pyOut, err := python(t, env, `
import requests, sys
r = requests.post(sys.argv[1], json={"Uid": sys.argv[2]})
print(r.status_code, r.json()["error"]["code"])
`, placeOrderURL, tgClientCode)
	sent++
	if err != nil || strings.TrimSpace(pyOut) != "423 paused" {
		t.Fatalf("python order while paused: %q %v", pyOut, err)
	}
	if n := len(arr.List(placeOrderPath)); n != before {
		t.Fatalf("a paused order reached the broker (%d -> %d)", before, n)
	}
	if res := dataRequest(t, env); res.Status != 200 {
		t.Fatalf("data request while paused: %d %s", res.Status, res.Body)
	}

	// Dashboard, status and metrics show it; cross-site POSTs cannot resume.
	base := "http://" + p.addr
	if body := httpGet(t, base+"/"); !strings.Contains(body, "are paused") || !strings.Contains(body, `data-guard="resume"`) {
		t.Errorf("dashboard lacks the paused banner or the Resume button:\n%s", body)
	}
	if body := httpGet(t, base+"/dashboard/live"); !strings.Contains(body, "Latest orders") || !strings.Contains(body, "rate_limited") {
		t.Errorf("dashboard lacks the latest orders:\n%s", body)
	}
	if body := httpGet(t, base+"/status"); !strings.Contains(body, `"paused": true`) {
		t.Errorf("/status does not say paused: %s", body)
	}
	if out := runCLI(t, w, "status", "--config", cfg); !strings.Contains(out, "ORDERS PAUSED (authproxy resume tg)") {
		t.Errorf("authproxy status does not say paused:\n%s", out)
	}
	metrics := httpGet(t, base+"/metrics")
	for _, want := range []string{`authproxy_orders_total{account="tg",outcome="paused"} 2`,
		`authproxy_orders_total{account="tg",outcome="rate_limited"}`, `authproxy_account_paused{account="tg"} 1`,
		`authproxy_pause_changes_total{account="tg",action="pause"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for name, hdr := range map[string]map[string]string{
		"simple content type": {"Content-Type": "text/plain"},
		"foreign origin":      {"Content-Type": "application/json", "Origin": "https://evil.example"},
		"cross-site fetch":    {"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
	} {
		req, _ := http.NewRequest(http.MethodPost, base+"/resume/tg", strings.NewReader("{}"))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: POST /resume/tg got %d, want 403", name, resp.StatusCode)
		}
	}
	if !strings.Contains(p.Output(), "orders paused") {
		t.Errorf("the log does not record the pause:\n%s", p.Output())
	}

	// The pause survives a restart.
	p.stop()
	p = w.start(cfg)
	env = w.clientEnv(cfg, p)
	if res := order(t, env); res.Status != 423 {
		t.Fatalf("after a restart a paused account's order got %d %s", res.Status, res.Body)
	}
	sent++
	if res := dataRequest(t, env); res.Status != 200 {
		t.Fatalf("data after restart: %d", res.Status)
	}

	// Resume from the CLI: orders flow at once.
	runCLI(t, w, "resume", "tg", "--config", cfg)
	if res := order(t, env); res.Status != 200 {
		t.Fatalf("after resume: %d %s", res.Status, res.Body)
	}
	sent++

	// With no proxy running, pause (no names: every account) changes the
	// state the next start reads.
	p.stop()
	if out := runCLI(t, w, "pause", "--config", cfg); !strings.Contains(out, "not running") {
		t.Errorf("offline pause: %s", out)
	}
	p = w.start(cfg)
	env = w.clientEnv(cfg, p)
	if res := order(t, env); res.Status != 423 {
		t.Fatalf("after an offline pause: %d", res.Status)
	}
	sent++
	if res := tvOrder(); res.Status != 423 || !strings.Contains(res.Body, `"account":"tv"`) {
		t.Fatalf("tradovate order after pausing every account: %d %s", res.Status, res.Body)
	}
	if res := curl(t, env, "https://demo.tradovateapi.com/v1/account/list"); res.Status != 200 {
		t.Fatalf("tradovate data while paused: %d %s", res.Status, res.Body)
	}
	runCLI(t, w, "resume", "--config", cfg)

	// The journal: every order, with its outcome, no secret.
	jl := runCLI(t, w, "journal", "tg", "--json", "--since", "1h", "--config", cfg)
	var entries []map[string]any
	sc := bufio.NewScanner(strings.NewReader(jl))
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("journal --json line %q: %v", sc.Text(), err)
		}
		entries = append(entries, e)
	}
	if len(entries) != sent {
		t.Errorf("journal holds %d orders, clients sent %d:\n%s", len(entries), sent, jl)
	}
	counts := map[string]int{}
	for _, e := range entries {
		counts[e["outcome"].(string)]++
		if e["account"] != "tg" || e["broker"] != "tradingo" || e["path"] != placeOrderPath {
			t.Errorf("journal entry %v", e)
		}
	}
	if counts["ok"] != okN+2 || counts["paused"] != 4 || counts["rate_limited"] != limitedN {
		t.Errorf("journal outcomes %v; want ok %d, paused 4, rate_limited %d", counts, okN+2, limitedN)
	}
	if !strings.Contains(jl, `"order_id":"`) || !strings.Contains(jl, `"Tsym":"SBIN-EQ"`) {
		t.Errorf("journal lacks order ids or the client's body:\n%s", jl)
	}
	tvj := runCLI(t, w, "journal", "tv", "--json", "--config", cfg)
	if strings.Count(tvj, "\n") != 2 || !strings.Contains(tvj, `"outcome":"ok"`) || !strings.Contains(tvj, `"order_id":"9001"`) ||
		!strings.Contains(tvj, `"outcome":"paused"`) || !strings.Contains(tvj, `"path":"/v1/order/placeOSO"`) {
		t.Errorf("tradovate journal:\n%s", tvj)
	}
	table := runCLI(t, w, "journal", "--config", cfg)
	if !strings.Contains(table, "OUTCOME") || !strings.Contains(table, "paused") || !strings.Contains(table, "rate_limited") {
		t.Errorf("journal table:\n%s", table)
	}
	var token string
	for _, r := range fake.Requests() {
		token = strings.TrimPrefix(r.Authorization, "Bearer ")
	}
	files, _ := filepath.Glob(filepath.Join(w.stateDir, "journal", "*.jsonl"))
	if len(files) == 0 {
		t.Fatal("no journal file")
	}
	for _, f := range files {
		fi, _ := os.Stat(f)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", f, fi.Mode().Perm())
		}
		data, _ := os.ReadFile(f)
		assertNoSecrets(t, "journal "+f, string(data), `"`+tgMPIN+`"`, tgTOTPSecret, token, "client-own-secret")
	}
}

func atoiOr(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return b.String()
}
