package integration

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/integration/fakes/egress"
	tvfake "github.com/authproxy/authproxy/internal/fakebroker/tradovate"
)

// TestRealAccountTradovate: a Tradovate account without device_id gets a
// stable one from the state dir; its traffic leaves through a SOCKS5 egress
// proxy; `authproxy token` asks the running proxy (no second session); a
// session closed elsewhere (408, as the API docs say) costs one new login,
// while an outage (503) is passed on and costs none.
func TestRealAccountTradovate(t *testing.T) {
	t.Parallel()
	w, fake := tradovateWorld(t, tvPassword, func(o *tvfake.Options) {
		o.DeviceID = "" // any deviceId is accepted; checked below
		o.ClosedSessionStatus = http.StatusRequestTimeout
	})
	eg, err := egress.Start("vps", "socks-pw", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eg.Close() })
	account := strings.Replace(tvAccount, "device_id = \""+tvDevice+"\"\n", "", 1)
	cfg := w.writeConfig(account)
	withEgress(t, cfg, eg.SOCKS5URL())
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)

	if res := curl(t, env, tvREST+"/v1/account/list"); res.Status != 200 {
		t.Fatalf("first request: %d %s\n%s", res.Status, res.Body, p.Output())
	}
	idFile, err := os.ReadFile(filepath.Join(w.stateDir, "tradovate-device-id"))
	if err != nil {
		t.Fatalf("no device id kept in the state dir: %v", err)
	}
	bodies := fake.LoginBodies()
	if len(bodies) != 1 || !strings.Contains(string(bodies[0]), `"deviceId":"`+strings.TrimSpace(string(idFile))+`"`) {
		t.Fatalf("login bodies %d; want one carrying the kept device id %s", len(bodies), idFile)
	}
	for _, c := range eg.Conns() {
		if !c.OK || c.Kind != "socks5" || c.User != "vps" {
			t.Errorf("egress connection %+v, want an authenticated SOCKS5 tunnel", c)
		}
	}
	if len(eg.Conns()) == 0 {
		t.Fatal("the egress proxy saw no connection")
	}

	// `authproxy token` gets the running proxy's token: no second session.
	cmd := exec.Command(binary, "token", "tv", "--config", cfg)
	cmd.Env = w.procEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("authproxy token: %v\n%s", err, p.Output())
	}
	tok := strings.TrimSpace(string(out))
	if kind, live := fake.TokenKind(tok); kind != "access" || !live {
		t.Fatalf("authproxy token printed a %q token (live %v)", kind, live)
	}
	if c := fake.Counters(); c.Sessions != 1 {
		t.Fatalf("sessions = %d after authproxy token, want 1", c.Sessions)
	}

	// An outage: the broker's 503 is passed on, no new login.
	fake.Outage(http.StatusServiceUnavailable)
	if res := curl(t, env, tvREST+"/v1/account/list"); res.Status != 503 || res.Header.Get("X-Authproxy-Error") != "" {
		t.Fatalf("outage: %d %q %s", res.Status, res.Header.Get("X-Authproxy-Error"), res.Body)
	}
	fake.Outage(0)
	if c := fake.Counters(); c.Sessions != 1 {
		t.Fatalf("sessions = %d after an outage, want 1", c.Sessions)
	}

	// Logged in elsewhere: 408, confirmed, one new login, replayed.
	fake.CloseAllSessions()
	res := curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"accountId":1001}`, tvREST+"/v1/order/liquidateposition")
	var ans struct{ Path string }
	if res.Status != 200 || json.Unmarshal([]byte(res.Body), &ans) != nil || ans.Path != "/v1/order/liquidateposition" {
		t.Fatalf("after the session was closed: %d %s\n%s", res.Status, res.Body, p.Output())
	}
	if c := fake.Counters(); c.Sessions != 2 {
		t.Errorf("sessions = %d, want 2 (one new login)", c.Sessions)
	}
	assertNoSecrets(t, "proxy output", p.Output(), tvPassword, tvSec, "socks-pw")
}
