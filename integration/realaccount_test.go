package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/authproxy/authproxy/integration/fakes/egress"
	"github.com/authproxy/authproxy/integration/fakes/faulty"
	fake5p "github.com/authproxy/authproxy/internal/fakebroker/fivepaisa"
)

// withEgress adds `proxy = url` to the config's [upstream] table.
func withEgress(t *testing.T, cfg, proxyURL string) {
	t.Helper()
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(data), "[upstream]\n", "[upstream]\nproxy = \""+proxyURL+"\"\n", 1)
	if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// ownGet fetches one of the proxy's own endpoints.
func ownGet(t *testing.T, p *proc, path string) string {
	t.Helper()
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}).Get("http://" + p.addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestRealAccountFivepaisa drives the behaviours of a real 5paisa account
// through one proxy: every broker connection leaves through an
// authenticated egress proxy; a login endpoint answering 503 twice costs the
// client a short wait; the feed socket opens on the host the token's
// RedirectServer claim names; an answer cut off mid-body is
// upstream_unreachable; and an account the broker keeps rejecting (Status 9
// for a reason no token cures) costs a handful of logins, is shown as
// "rejected by broker", and works again at once when the broker does.
func TestRealAccountFivepaisa(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	fake := fake5p.New(fake5p.Options{AppKey: fpAppKey, UserID: fpUserID, EncryptionKey: fpEncKey,
		ClientCode: fpClient, PIN: fpPIN, TOTPSecret: fpSecret, RedirectServer: "A"})
	fh := faulty.Wrap(fake)
	t.Cleanup(fh.Close)
	srv := w.serve(fh, fake5p.Hosts()...)
	for k, v := range map[string]string{"FP_APP_KEY": fpAppKey, "FP_USER_ID": fpUserID, "FP_ENC_KEY": fpEncKey,
		"FP_CLIENT": fpClient, "FP_PIN": fpPIN, "FP_TOTP_SECRET": fpSecret} {
		w.env[k] = v
	}
	eg, err := egress.Start("vps", "egress-pw", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eg.Close() })
	cfg := w.writeConfig(fpTOTPAccount)
	withEgress(t, cfg, eg.HTTPURL())

	// The login endpoint answers 503 twice: retried inside the request.
	fake.FailNextLogins(2, http.StatusServiceUnavailable)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)
	orderBook := fpService + "V3/OrderBook"
	res := curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"head":{},"body":{}}`, orderBook)
	if res.Status != 200 || !strings.Contains(res.Body, `"Status":0`) {
		t.Fatalf("first request after two 503s: %d %s\n%s", res.Status, res.Body, p.Output())
	}
	if n := fake.Logins(); n != 1 {
		t.Fatalf("logins = %d, want 1", n)
	}

	// Every broker connection went through the egress proxy, with its
	// credentials, to the broker.
	conns := eg.Conns()
	if len(conns) == 0 {
		t.Fatalf("the egress proxy saw no connection\n%s", p.Output())
	}
	for _, c := range conns {
		if !c.OK || c.Kind != "connect" || c.User != "vps" || c.Target != srv.Addr {
			t.Errorf("egress connection %+v, want an authenticated CONNECT to %s", c, srv.Addr)
		}
	}

	// The feed: the client picks openfeed, the token says A (aopenfeed).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hc := wsHTTPClient(t, w, p)
	before := len(eg.Conns())
	c, _, err := websocket.Dial(ctx, "wss://"+fake5p.FeedHost+fake5p.FeedPath+"?Value1=placeholder", &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatalf("feed socket: %v\n%s", err, p.Output())
	}
	sub := `{"Method":"MarketFeedV3","Operation":"Subscribe","ClientCode":"` + fpClient + `","MarketFeedData":[{"Exch":"N","ExchType":"C","ScripCode":1660}]}`
	if err := c.Write(ctx, websocket.MessageText, []byte(sub)); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(ctx); err != nil || !strings.Contains(string(msg), "LastRate") {
		t.Fatalf("feed answer %q, %v", msg, err)
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
	feeds := fake.FeedConns()
	if len(feeds) == 0 || feeds[len(feeds)-1].Host != fake5p.FeedHostA || !feeds[len(feeds)-1].Home || !feeds[len(feeds)-1].Accepted {
		t.Fatalf("feed sockets %+v: want the last on %s (the RedirectServer claim)", feeds, fake5p.FeedHostA)
	}
	if !strings.Contains(p.Output(), "host=aopenfeed.5paisa.com") {
		t.Errorf("the log does not say where the feed socket went:\n%s", p.Output())
	}
	if len(eg.Conns()) <= before {
		t.Errorf("the feed socket did not go through the egress proxy")
	}

	// An answer cut off mid-body.
	fh.Fail("/vendorsapi/service1.svc/v3/orderbook", 1, faulty.Truncate())
	res = curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"head":{},"body":{}}`, orderBook)
	if res.Status != 502 || res.Header.Get("X-Authproxy-Error") != "upstream_unreachable" {
		t.Fatalf("cut-off answer: %d %q %s", res.Status, res.Header.Get("X-Authproxy-Error"), res.Body)
	}
	if m := ownGet(t, p, "/metrics"); !strings.Contains(m, `authproxy_requests_total{account="fp",outcome="upstream_unreachable"} 1`) {
		t.Errorf("metrics do not count the cut-off answer:\n%s", m)
	}

	// The broker rejects every token (an expired password): a few dozen
	// requests cost a handful of logins.
	fake.Block(true)
	loginsBefore := fake.Logins()
	out, err := python(t, env, `
import sys, requests
codes = {}
for i in range(30):
    r = requests.post(sys.argv[1], json={"head": {}, "body": {}}, timeout=60)
    key = r.headers.get("X-Authproxy-Error") or str(r.json().get("body", {}).get("Status"))
    codes[key] = codes.get(key, 0) + 1
print(codes)
`, orderBook)
	if err != nil {
		t.Fatalf("python: %v %s\n%s", err, out, p.Output())
	}
	if n := fake.Logins() - loginsBefore; n > 3 {
		t.Errorf("30 rejected requests cost %d logins, want at most 3 (answers %s)", n, out)
	}
	if !strings.Contains(out, "'9':") {
		t.Errorf("the broker's own Status 9 answer never reached the client: %s", out)
	}
	for _, line := range strings.Split(strings.Trim(strings.TrimSpace(out), "{}"), ",") {
		k, _, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k = strings.Trim(k, "' "); k != "9" && k != "timeout" {
			t.Errorf("unexpected answer %q in %s", k, out)
		}
	}
	var st struct {
		Accounts []struct {
			Name, State string
			LastError   string `json:"last_error"`
		}
	}
	if err := json.Unmarshal([]byte(ownGet(t, p, "/status")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Accounts) != 1 || st.Accounts[0].State != "rejected by broker" || !strings.Contains(st.Accounts[0].LastError, "Invalid Session") {
		t.Errorf("status %+v, want rejected by broker with the broker's message", st.Accounts)
	}
	if m := ownGet(t, p, "/metrics"); !strings.Contains(m, `authproxy_account_rejected_by_broker{account="fp",message="HTTP 200: Invalid Session"} 1`) {
		t.Errorf("metrics do not show the rejection:\n%s", m)
	}

	// The broker accepts tokens again: the next request works.
	fake.Block(false)
	res = curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"head":{},"body":{}}`, orderBook)
	if res.Status != 200 || strings.Contains(res.Body, "Invalid Session") {
		t.Fatalf("after the block: %d %s", res.Status, res.Body)
	}
	if err := json.Unmarshal([]byte(ownGet(t, p, "/status")), &st); err != nil || st.Accounts[0].State != "ready" {
		t.Errorf("status after the block: %+v %v", st.Accounts, err)
	}
	assertNoSecrets(t, "proxy output", p.Output(), fpSecrets(fake)...)
}
