package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	fake5p "github.com/authproxy/authproxy/internal/fakebroker/fivepaisa"
	"github.com/authproxy/authproxy/internal/fakebroker/pocketful"
	tvfake "github.com/authproxy/authproxy/internal/fakebroker/tradovate"
)

// Streaming: unmodified WebSocket clients (a Go one on github.com/coder/websocket
// and Python's websocket-client) reach every broker's socket through the
// built proxy, which authenticates the upgrade (5paisa, Pocketful: query;
// Tradovate: the in-band authorize frame).

// systemPython is the interpreter whose Debian package python3-websocket
// the tests use.
const systemPython = "/usr/bin/python3"

// needPythonWebsocket makes sure /usr/bin/python3 can import websocket
// (websocket-client): it installs python3-websocket with apt-get, under a
// lock, when it is missing and the tests run as root; otherwise the test
// fails saying what to install.
func needPythonWebsocket(t *testing.T) {
	t.Helper()
	have := func() bool { return exec.Command(systemPython, "-c", "import websocket").Run() == nil }
	if have() {
		return
	}
	apt, err := exec.LookPath("apt-get")
	if os.Geteuid() != 0 || err != nil {
		t.Fatalf("Python's websocket-client is missing for %s and cannot be installed here (not root or no apt-get): "+
			"install the Debian package python3-websocket (apt-get install python3-websocket)", systemPython)
	}
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "authproxy-apt.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if have() { // another process installed it while we waited
		return
	}
	run := func(args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, apt, args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	install := []string{"install", "-y", "-qq", "python3-websocket"}
	if err := run(install...); err != nil {
		if err2 := run("update", "-qq"); err2 != nil {
			t.Fatalf("cannot install python3-websocket: %v; %v", err, err2)
		}
		if err := run(install...); err != nil {
			t.Fatalf("cannot install python3-websocket: %v", err)
		}
	}
	if !have() {
		t.Fatalf("python3-websocket was installed but %s still cannot import websocket", systemPython)
	}
}

// wsPython is a notebook's streaming cell on websocket-client: it takes the
// proxy and the CA bundle from the environment `authproxy env` prints and
// prints what it received as JSON. argv: kind, url, then kind-specific.
const wsPython = `
import json, sys, websocket
kind, url = sys.argv[1], sys.argv[2]
ws = websocket.create_connection(url, timeout=20)
out = {}
if kind == "tradovate":
    out["open"] = ws.recv()
    ws.send("authorize\n5\n\nnotebook-placeholder-token")
    out["auth"] = ws.recv()
    ws.send(sys.argv[3])
    out["req"] = ws.recv()
    ws.send("[]")
    out["hb"] = ws.recv()
elif kind == "fivepaisa":
    ws.send(json.dumps({"Method": "MarketFeedV3", "Operation": "Subscribe", "ClientCode": sys.argv[3],
                        "MarketFeedData": [{"Exch": "N", "ExchType": "C", "ScripCode": 2885}]}))
    out["ticks"] = json.loads(ws.recv())
elif kind == "pocketful":
    ws.send(json.dumps({"a": "h", "v": [], "m": ""}))
    ws.send(json.dumps({"a": "subscribe", "v": [[1, 22]], "m": "marketdata"}))
    op, data = ws.recv_data()
    out["op"], out["hex"] = op, data.hex()
ws.close()
print(json.dumps(out))
`

// pythonWS runs wsPython with /usr/bin/python3 and decodes its output.
func pythonWS(t *testing.T, env []string, args ...string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, systemPython, append([]string{"-c", wsPython}, args...)...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("websocket-client %v: %v\n%s", args[:2], err, stderr.String())
	}
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("websocket-client output %q: %v", out, err)
	}
	return res
}

// wsHTTPClient is how a Go program uses the proxy: Proxy set to it and the
// authproxy CA trusted.
func wsHTTPClient(t *testing.T, w *world, p *proc) *http.Client {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(w.stateDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	proxyURL := &url.URL{Scheme: "http", Host: p.addr}
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL),
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

// wsExpect reads one message and checks that it starts with want.
func wsExpect(ctx context.Context, t *testing.T, c *websocket.Conn, want string) []byte {
	t.Helper()
	_, msg, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("reading (want %q): %v", want, err)
	}
	if !strings.HasPrefix(string(msg), want) {
		t.Fatalf("got %q, want it to start with %q", msg, want)
	}
	return msg
}

func wsSend(ctx context.Context, t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("sending %q: %v", msg, err)
	}
}

// wsRefused dials url and expects the proxy's own error (DESIGN.md) instead
// of an upgrade, within the context's deadline: never a hung socket.
func wsRefused(ctx context.Context, t *testing.T, hc *http.Client, u string, status int, code string) {
	t.Helper()
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: hc})
	if err == nil {
		c.CloseNow()
		t.Fatalf("%s: the upgrade succeeded, want %d %s", u, status, code)
	}
	if resp == nil {
		t.Fatalf("%s: no answer: %v", u, err)
	}
	body, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Code, Account string }
	}
	if resp.StatusCode != status || resp.Header.Get("X-Authproxy-Error") != code ||
		json.Unmarshal(body, &e) != nil || e.Error.Code != code || e.Error.Account == "" {
		t.Fatalf("%s: got %d %q %s, want %d %s", u, resp.StatusCode, resp.Header.Get("X-Authproxy-Error"), body, status, code)
	}
}

// tvTokens are the tokens the fake Tradovate saw in bearers.
func tvTokens(fake *tvfake.Fake) []string {
	var out []string
	for _, r := range fake.Requests() {
		if tok, ok := strings.CutPrefix(r.Authorization, "Bearer "); ok && len(tok) > 8 {
			out = append(out, tok)
		}
	}
	return out
}

func TestStreamingTradovate(t *testing.T) {
	needIntegration(t)
	needPythonWebsocket(t)
	w, fake := tradovateWorld(t, tvPassword, nil)
	cfg := w.writeConfig(tvAccount)
	p := w.start(cfg)
	hc := wsHTTPClient(t, w, p)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	// The user-data socket: a client with a leftover bearer, offering
	// compression, that authorizes with an empty token.
	c, resp, err := websocket.Dial(ctx, "wss://"+tvfake.HostDemo+tvfake.WSPath, &websocket.DialOptions{HTTPClient: hc,
		CompressionMode: websocket.CompressionContextTakeover,
		HTTPHeader:      http.Header{"Authorization": {"Bearer notebook-leftover"}}})
	if err != nil {
		t.Fatalf("dial demo: %v\n%s", err, p.Output())
	}
	defer c.CloseNow()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Errorf("compression was negotiated through the proxy (%q): the authorize frame could not be rewritten", ext)
	}
	wsExpect(ctx, t, c, "o")
	wsSend(ctx, t, c, "authorize\n2\n\n")
	wsExpect(ctx, t, c, `a[{"s":200,"i":2}]`)
	wsSend(ctx, t, c, "account/list\n3\n\n")
	wsExpect(ctx, t, c, `a[{"s":200,"i":3,"d":[{`)
	wsSend(ctx, t, c, "[]")
	wsExpect(ctx, t, c, "h")
	c.Close(websocket.StatusNormalClosure, "")

	// The market-data socket: an authorize message in three fragments with
	// a ping between them, carrying a dummy token; the md token goes in.
	md, _, err := websocket.Dial(ctx, "wss://"+tvfake.HostMD+tvfake.WSPath, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatalf("dial md: %v", err)
	}
	defer md.CloseNow()
	wsExpect(ctx, t, md, "o")
	wr, err := md.Writer(ctx, websocket.MessageText)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wr.Write([]byte("auth")); err != nil {
		t.Fatal(err)
	}
	pinged := make(chan error, 1)
	go func() {
		pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
		defer pcancel()
		pinged <- md.Ping(pctx) // answered once the reads below run
	}()
	time.Sleep(50 * time.Millisecond) // let the ping go out between the fragments
	for _, part := range []string{"orize\n7\n\ndum", "my-token"} {
		if _, err := wr.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	if err := wr.Close(); err != nil {
		t.Fatal(err)
	}
	wsExpect(ctx, t, md, `a[{"s":200,"i":7}]`)
	wsSend(ctx, t, md, "md/subscribeQuote\n8\n\n{\"symbol\":\"ESZ6\"}")
	wsExpect(ctx, t, md, `a[{"s":200,"i":8}]`)
	wsExpect(ctx, t, md, `a[{"d":{"quotes":[{"contractId":`)
	select {
	case err := <-pinged:
		if err != nil {
			t.Errorf("the ping sent inside the fragmented authorize got no pong: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the ping sent inside the fragmented authorize got no pong")
	}
	md.Close(websocket.StatusNormalClosure, "")

	// Python's websocket-client, configured only by `authproxy env`.
	env := w.clientEnv(cfg, p)
	res := pythonWS(t, env, "tradovate", "wss://"+tvfake.HostDemo+tvfake.WSPath, "user/syncrequest\n6\n\n{}")
	if res["open"] != "o" || res["auth"] != `a[{"s":200,"i":5}]` || !strings.HasPrefix(fmt.Sprint(res["req"]), `a[{"s":200,"i":6,"d":{`) || res["hb"] != "h" {
		t.Errorf("websocket-client saw %v\n%s", res, p.Output())
	}

	// What the fake saw: every authorize carried a live token of the
	// host's kind, and every upgrade a bearer.
	var auths, upgrades int
	for _, r := range fake.Requests() {
		wantKind := "access"
		if r.Host == tvfake.HostMD {
			wantKind = "md"
		}
		switch {
		case r.Method == "WS":
			auths++
			if r.Status != http.StatusOK || r.TokenKind != wantKind {
				t.Errorf("authorize on %s: status %d with a %q token, want 200 with %q", r.Host, r.Status, r.TokenKind, wantKind)
			}
		case r.Status == http.StatusSwitchingProtocols:
			upgrades++
			if r.TokenKind != wantKind {
				t.Errorf("upgrade to %s carried Authorization of kind %q, want %q", r.Host, r.TokenKind, wantKind)
			}
		}
	}
	if auths != 3 || upgrades != 3 {
		t.Errorf("the fake saw %d authorize messages and %d upgrades, want 3 and 3", auths, upgrades)
	}

	// Orders paused: a socket still opens and serves data (an upgrade is a
	// GET, never an order), while a REST order is refused.
	if out := runCLI(t, w, "pause", "tv", "--config", cfg); !strings.Contains(out, "authproxy resume tv") {
		t.Errorf("pause output: %s", out)
	}
	ps, _, err := websocket.Dial(ctx, "wss://"+tvfake.HostDemo+tvfake.WSPath, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatalf("dial while orders are paused: %v\n%s", err, p.Output())
	}
	defer ps.CloseNow()
	wsExpect(ctx, t, ps, "o")
	wsSend(ctx, t, ps, "authorize\n9\n\n")
	wsExpect(ctx, t, ps, `a[{"s":200,"i":9}]`)
	wsSend(ctx, t, ps, "account/list\n10\n\n")
	wsExpect(ctx, t, ps, `a[{"s":200,"i":10,"d":[{`)
	ps.Close(websocket.StatusNormalClosure, "")
	if res := curl(t, env, "-X", "POST", "-H", "Content-Type: application/json",
		"-d", `{"accountSpec":"DEMO4242","action":"Buy","symbol":"MESM1","orderQty":1,"orderType":"Market","isAutomated":true}`,
		"https://"+tvfake.HostDemo+"/v1/order/placeorder"); res.Status != 423 || res.Header.Get("X-Authproxy-Error") != "paused" {
		t.Errorf("a REST order while paused: %d %v %s", res.Status, res.Header, res.Body)
	}
	assertNoSecrets(t, "proxy output", p.Output(), append(tvTokens(fake), tvPassword, tvSec)...)
}

// TestStreamingLoginFailure: a socket whose account cannot log in gets the
// proxy's JSON error on the upgrade at once, and nothing reaches the broker.
func TestStreamingLoginFailure(t *testing.T) {
	w, fake := tradovateWorld(t, "not-the-password", nil)
	cfg := w.writeConfig(tvAccount)
	p := w.start(cfg)
	hc := wsHTTPClient(t, w, p)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	wsRefused(ctx, t, hc, "wss://"+tvfake.HostDemo+tvfake.WSPath, http.StatusBadGateway, "login_failed")
	for _, r := range fake.Requests() {
		if r.Status == http.StatusSwitchingProtocols || r.Method == "WS" {
			t.Errorf("a socket reached the broker: %+v", r)
		}
	}
}

func TestStreamingFivePaisa(t *testing.T) {
	needIntegration(t)
	needPythonWebsocket(t)
	w, fake, cfg := fivepaisaWorld(t, fpPIN, fpTOTPAccount)
	p := w.start(cfg)
	hc := wsHTTPClient(t, w, p)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	// A placeholder Value1 (the notebook has no token) and another
	// parameter, which is kept.
	c, _, err := websocket.Dial(ctx, "wss://"+fake5p.FeedHost+fake5p.FeedPath+"?Value1=PLACEHOLDER%7C0&lang=en",
		&websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, p.Output())
	}
	defer c.CloseNow()
	wsSend(ctx, t, c, `{"Method":"MarketFeedV3","Operation":"Subscribe","ClientCode":"`+fpClient+`","MarketFeedData":[{"Exch":"N","ExchType":"C","ScripCode":1660}]}`)
	msg := wsExpect(ctx, t, c, "[")
	var ticks []map[string]any
	if err := json.Unmarshal(msg, &ticks); err != nil || len(ticks) != 1 || ticks[0]["Token"] != 1660.0 {
		t.Errorf("ticks %s (%v)", msg, err)
	}
	c.Close(websocket.StatusNormalClosure, "")

	// websocket-client on another feed host, path in other case, no query.
	res := pythonWS(t, w.clientEnv(cfg, p), "fivepaisa", "wss://"+fake5p.FeedHostA+"/Feeds/API/chat", fpClient)
	if ticks, _ := res["ticks"].([]any); len(ticks) != 1 {
		t.Errorf("websocket-client saw %v\n%s", res, p.Output())
	}

	feeds := fake.FeedConns()
	if len(feeds) != 2 {
		t.Fatalf("the fake saw %d feed handshakes, want 2: %+v", len(feeds), feeds)
	}
	for _, f := range feeds {
		if !f.Accepted || f.Subscribed != 1 || strings.Contains(f.RawQuery, "PLACEHOLDER") {
			t.Errorf("feed handshake %+v", f)
		}
	}
	if q, _ := url.ParseQuery(feeds[0].RawQuery); q.Get("lang") != "en" {
		t.Errorf("the client's other query parameters were lost: %q", feeds[0].RawQuery)
	}
	if n := fake.Logins(); n != 1 {
		t.Errorf("logins = %d, want 1", n)
	}
	var toks []string
	for _, f := range feeds {
		if q, err := url.ParseQuery(f.RawQuery); err == nil {
			tok, _, _ := strings.Cut(q.Get("Value1"), "|")
			toks = append(toks, tok)
		}
	}
	assertNoSecrets(t, "proxy output", p.Output(), append(toks, fpAppKey, fpEncKey, fpPIN, fpSecret)...)
}

func TestStreamingPocketful(t *testing.T) {
	needIntegration(t)
	needPythonWebsocket(t)
	w, fake := pocketfulWorld(t)
	cfg := w.writeConfig(pfAccount)
	p := w.start(cfg)
	fake.SetRedirectURI("http://" + p.addr + "/callback/pf")
	env := w.clientEnv(cfg, p)
	hc := wsHTTPClient(t, w, p)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	feedURL := "wss://" + pfHost + pocketful.FeedPath

	// No token yet (a browser login is needed): the upgrade gets 511.
	wsRefused(ctx, t, hc, feedURL+"?login_id=x&access_token=y", http.StatusNetworkAuthenticationRequired, "login_required")
	if n := len(fake.FeedConns()); n != 0 {
		t.Fatalf("an unauthenticated upgrade reached the fake (%d)", n)
	}

	out, err := python(t, env, pfBrowser, "http://"+p.addr+"/login/pf")
	if err != nil || !strings.Contains(out, "Logged in") {
		t.Fatalf("browser login: %q %v\n%s", out, err, p.Output())
	}

	// Placeholder credentials and another parameter.
	c, _, err := websocket.Dial(ctx, feedURL+"?login_id=PLACEHOLDER&access_token=dummy&mode=full", &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, p.Output())
	}
	defer c.CloseNow()
	wsSend(ctx, t, c, `{"a":"h","v":[],"m":""}`)
	wsSend(ctx, t, c, `{"a":"subscribe","v":[[1,22]],"m":"marketdata"}`)
	typ, msg, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageBinary || !bytes.Equal(msg, pocketful.FeedPacket(1, 22, 142050)) {
		t.Fatalf("packet %v %x (%v)", typ, msg, err)
	}
	c.Close(websocket.StatusNormalClosure, "")

	// websocket-client with no credentials in the URL at all.
	res := pythonWS(t, env, "pocketful", feedURL)
	if res["op"] != 2.0 || res["hex"] != fmt.Sprintf("%x", pocketful.FeedPacket(1, 22, 142050)) {
		t.Errorf("websocket-client saw %v\n%s", res, p.Output())
	}

	feeds := fake.FeedConns()
	if len(feeds) != 2 || !feeds[0].Accepted || !feeds[1].Accepted || feeds[0].Heartbeats != 1 || feeds[1].Subscribed != 1 {
		t.Fatalf("feed handshakes %+v", feeds)
	}
	q, _ := url.ParseQuery(feeds[0].RawQuery)
	if q.Get("mode") != "full" || q.Get("login_id") != pfClientID || strings.Contains(feeds[0].RawQuery, "dummy") {
		t.Errorf("query reaching the fake: %q", feeds[0].RawQuery)
	}

	// The token dies: the fake refuses the upgrade with 401 and the proxy,
	// unable to log in without the person, answers 511.
	fake.Expire()
	wsRefused(ctx, t, hc, feedURL, http.StatusNetworkAuthenticationRequired, "login_required")
	assertNoSecrets(t, "proxy output", p.Output(), q.Get("access_token"), pfAppSecret)
}
