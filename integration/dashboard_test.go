package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/authproxy/authproxy/internal/fakebroker/pocketful"
	"github.com/authproxy/authproxy/internal/fakebroker/tradingo"
)

// The dashboard in a real browser: headless Chromium renders the accounts
// (with and without JavaScript), the page's script refreshes itself, and
// clicking Pocketful's "Log in" button completes the (fake) OAuth flow.
func TestDashboardInChromium(t *testing.T) {
	needIntegration(t)
	chromium := needChromium(t)

	w := newWorld(t)
	tg := tradingo.New(tradingo.Options{ClientCode: tgClientCode, MPIN: tgMPIN, TOTPSecret: tgTOTPSecret})
	w.serve(tg, tgHost)
	pf := pocketful.New(pocketful.Options{AppID: pfAppID, AppSecret: pfAppSecret, ClientID: pfClientID})
	w.serve(pf, pfHost)
	for k, v := range map[string]string{"TG_CLIENT_CODE": tgClientCode, "TG_MPIN": tgMPIN, "TG_TOTP_SECRET": tgTOTPSecret,
		"PF_APP_ID": pfAppID, "PF_APP_SECRET": pfAppSecret} {
		w.env[k] = v
	}
	cfg := w.writeConfig(tgAccount + "\n" + pfAccount + `
[brokers.fp]
type = "fivepaisa"
app_key = "${DASH_UNSET_APP_KEY}"
user_id = "${DASH_UNSET_USER_ID}"
encryption_key = "${DASH_UNSET_ENCRYPTION_KEY}"
client_code = "${DASH_UNSET_CLIENT_CODE}"
pin = "${DASH_UNSET_PIN}"
totp_secret = "${DASH_UNSET_TOTP_SECRET}"
`)
	// The browser must not reach anything but the fakes: refuse every
	// CONNECT to a non-broker host (Chromium's own background requests).
	noPassthrough(t, cfg)
	p := w.start(cfg)
	pf.SetRedirectURI("http://" + p.addr + "/callback/pf")
	env := w.clientEnv(cfg, p)
	if res := curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"Uid":"`+tgClientCode+`"}`, orderBookURL); res.Status != 200 {
		t.Fatalf("tradingo request: %d %s %s", res.Status, res.Body, res.Err)
	}

	// 1. The page as Chromium renders it (--dump-dom).
	dom := chromiumDumpDOM(t, chromium, "http://"+p.addr+"/")
	wantRows := []string{`id="account-tg"`, `class="state ok">ready<`, `id="account-pf"`, `>needs login<`,
		`id="account-fp"`, `>unconfigured<`, `href="/login/pf"`}
	for _, want := range wantRows {
		if !strings.Contains(dom, want) {
			t.Errorf("dumped DOM lacks %q:\n%s", want, dom)
		}
	}

	// 2. Without JavaScript the server-rendered rows are all there, and a
	// meta refresh keeps them current.
	b := startBrowser(t, chromium, p.addr)
	nojs := b.newPage(t)
	if err := b.call(nojs.session, "Emulation.setScriptExecutionDisabled", map[string]any{"value": true}, nil); err != nil {
		t.Fatal(err)
	}
	nojs.navigate(t, "http://"+p.addr+"/")
	html := nojs.outerHTML(t, `data-account="tg"`, 15*time.Second) // the last row's last cell: the whole table is there
	for _, want := range append(wantRows, `<meta http-equiv="refresh"`) {
		if !strings.Contains(html, want) {
			t.Errorf("page without JavaScript lacks %q:\n%s", want, html)
		}
	}

	// 3. With JavaScript, driven over the DevTools protocol.
	page := b.newPage(t)
	page.navigate(t, "http://"+p.addr+"/")
	page.waitFor(t, `document.querySelector("#account-pf") !== null`, 15*time.Second)
	table := page.evalString(t, `document.querySelector("#accounts").innerText`)
	for _, want := range []string{"tg\tTradingo\tready", "pf\tPocketful\tneeds login", "fp\t5paisa\tunconfigured", "Log in"} {
		if !strings.Contains(table, want) {
			t.Errorf("rendered table lacks %q:\n%s", want, table)
		}
	}
	if got := page.evalString(t, `document.querySelector("#account-tg td:nth-child(5)").innerText`); got != "1" {
		t.Errorf("tradingo requests today = %q, want 1", got)
	}
	// The script swaps in fresh rows every few seconds: a request made now
	// shows up without a reload.
	if res := curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"Uid":"`+tgClientCode+`"}`, orderBookURL); res.Status != 200 {
		t.Fatalf("tradingo request: %d %s", res.Status, res.Body)
	}
	page.waitFor(t, `document.querySelector("#account-tg td:nth-child(5)").innerText === "2"`, 15*time.Second)
	page.screenshot(t, "dashboard-before-login.png")

	// 4. Click "Log in": /login/pf redirects to the fake consent page
	// (through the proxy), which approves and redirects to /callback/pf.
	page.eval(t, `document.querySelector('a.login[data-account="pf"]').click()`)
	page.waitFor(t, `location.pathname === "/callback/pf" && document.readyState === "complete"`, 20*time.Second)
	if h1 := page.evalString(t, `document.querySelector("h1").innerText`); h1 != "Logged in" {
		t.Fatalf("after the login click the page says %q:\n%s\nproxy output:\n%s", h1,
			page.evalString(t, `document.body.innerText`), p.Output())
	}
	if st := pfStatus(t, p); st["state"] != "ready" {
		t.Fatalf("/status after the browser login: %v", st)
	}
	if c := pf.Counts(); c.Authorizations != 1 || c.Exchanges != 1 {
		t.Errorf("fake pocketful counts %+v, want one consent and one exchange", c)
	}
	page.navigate(t, "http://"+p.addr+"/")
	page.waitFor(t, `document.querySelector("#account-pf .state").innerText === "ready"`, 15*time.Second)
	if cd := page.evalString(t, `document.querySelector("#account-pf .countdown").innerText`); !strings.HasPrefix(cd, "in ") {
		t.Errorf("pocketful expiry countdown %q", cd)
	}
	shot := page.screenshot(t, "dashboard.png")
	t.Logf("dashboard screenshot: %s", shot)
}

// noPassthrough sets passthrough = false at the top of a config file.
func noPassthrough(t *testing.T, cfg string) {
	t.Helper()
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append([]byte("passthrough = false\n"), data...), 0o600); err != nil {
		t.Fatal(err)
	}
}

// needChromium returns the path of a Chromium binary, installing Debian's
// package when it is missing and the test runs as root. It fails (never
// skips) when there is no way to get one.
func needChromium(t *testing.T) string {
	t.Helper()
	find := func() string {
		for _, name := range []string{"chromium", "chromium-browser"} {
			if p, err := exec.LookPath(name); err == nil {
				return p
			}
		}
		return ""
	}
	if p := find(); p != "" {
		return p
	}
	if os.Geteuid() != 0 {
		t.Fatalf("this test needs Chromium, which is not installed, and it is not root so it cannot install it: run `apt-get install chromium`")
	}
	// One installer at a time across test processes.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "authproxy-chromium-install.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("chromium install lock: %v", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("chromium install lock: %v", err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if p := find(); p != "" {
		return p
	}
	apt := func(timeout time.Duration, args ...string) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			tail := out
			if len(tail) > 4000 {
				tail = tail[len(tail)-4000:]
			}
			t.Fatalf("installing Chromium failed: apt-get %s: %v\n%s\nInstall it by hand: apt-get update && apt-get install chromium",
				strings.Join(args, " "), err, tail)
		}
	}
	t.Logf("installing Chromium with apt-get (once per machine)")
	apt(5*time.Minute, "update")
	apt(10*time.Minute, "install", "-y", "--no-install-recommends", "chromium")
	p := find()
	if p == "" {
		t.Fatalf("apt-get installed chromium but no chromium binary is on PATH")
	}
	return p
}

// chromiumFlags keep Chromium quiet and local: no first-run UI, no
// background or component traffic, no QUIC, no DNS of its own.
func chromiumFlags(userDir string) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
		"--disable-extensions", "--disable-domain-reliability", "--no-pings", "--disable-breakpad",
		"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
		"--user-data-dir=" + userDir, "--window-size=1280,720"}
}

// chromiumDumpDOM loads url and returns the DOM Chromium built.
func chromiumDumpDOM(t *testing.T, chromium, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append(chromiumFlags(t.TempDir()), "--dump-dom", url)
	cmd := exec.CommandContext(ctx, chromium, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v\n%s", err, stderr.String())
	}
	return string(out)
}

// browser is a headless Chromium driven over the DevTools protocol.
type browser struct {
	conn *websocket.Conn

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan cdpReply
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

var devtoolsRE = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

// startBrowser launches Chromium with the proxy as its proxy server.
// Certificate errors are ignored: this is a test of the dashboard and the
// login flow, not of TLS trust (curl, Python and Node check that against
// bundle.pem and ca.pem elsewhere), and Chromium's NSS store would
// otherwise need the CA imported with certutil.
func startBrowser(t *testing.T, chromium, proxyAddr string) *browser {
	t.Helper()
	args := append(chromiumFlags(t.TempDir()), "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
		"--proxy-server=http://"+proxyAddr, "--ignore-certificate-errors", "about:blank")
	cmd := exec.Command(chromium, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("chromium did not exit")
		}
	})
	found := make(chan string, 1)
	var log bytes.Buffer
	var logMu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			log.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if m := devtoolsRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	var wsURL string
	select {
	case wsURL = <-found:
	case <-done:
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("chromium exited before DevTools listened:\n%s", log.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("chromium's DevTools did not start in 30s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{Proxy: nil}},
	})
	if err != nil {
		t.Fatalf("devtools: %v", err)
	}
	conn.SetReadLimit(64 << 20) // screenshots
	b := &browser{conn: conn, pending: map[int64]chan cdpReply{}}
	go b.readLoop()
	t.Cleanup(func() { _ = conn.Close(websocket.StatusNormalClosure, "") })
	return b
}

func (b *browser) readLoop() {
	for {
		_, data, err := b.conn.Read(context.Background())
		if err != nil {
			b.mu.Lock()
			for id, ch := range b.pending {
				close(ch)
				delete(b.pending, id)
			}
			b.mu.Unlock()
			return
		}
		var msg struct {
			ID int64 `json:"id"`
			cdpReply
		}
		if json.Unmarshal(data, &msg) != nil || msg.ID == 0 {
			continue // an event
		}
		b.mu.Lock()
		ch := b.pending[msg.ID]
		delete(b.pending, msg.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- msg.cdpReply
		}
	}
}

// call sends one DevTools command and waits (bounded) for its reply.
func (b *browser) call(session, method string, params any, out any) error {
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpReply, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	data, _ := json.Marshal(msg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.conn.Write(ctx, websocket.MessageText, data); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return fmt.Errorf("%s: devtools connection closed", method)
		}
		if r.Error != nil {
			return fmt.Errorf("%s: %s", method, r.Error.Message)
		}
		if out != nil {
			return json.Unmarshal(r.Result, out)
		}
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
		return fmt.Errorf("%s: no reply in 30s", method)
	}
}

// page is one tab.
type page struct {
	b       *browser
	session string
}

func (b *browser) newPage(t *testing.T) *page {
	t.Helper()
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		t.Fatal(err)
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att); err != nil {
		t.Fatal(err)
	}
	p := &page{b: b, session: att.SessionID}
	if err := b.call(p.session, "Page.enable", map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *page) navigate(t *testing.T, url string) {
	t.Helper()
	var res struct {
		ErrorText string `json:"errorText"`
	}
	if err := p.b.call(p.session, "Page.navigate", map[string]any{"url": url}, &res); err != nil {
		t.Fatal(err)
	}
	if res.ErrorText != "" {
		t.Fatalf("navigate %s: %s", url, res.ErrorText)
	}
}

// outerHTML polls the document's HTML through the DOM domain (which works
// with scripts disabled) until it contains want (bounded).
func (p *page) outerHTML(t *testing.T, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var html string
	for time.Now().Before(deadline) {
		var doc struct {
			Root struct {
				NodeID int64 `json:"nodeId"`
			} `json:"root"`
		}
		var out struct {
			OuterHTML string `json:"outerHTML"`
		}
		if p.b.call(p.session, "DOM.getDocument", map[string]any{"depth": 0}, &doc) == nil &&
			p.b.call(p.session, "DOM.getOuterHTML", map[string]any{"nodeId": doc.Root.NodeID}, &out) == nil {
			html = out.OuterHTML
			if strings.Contains(html, want) {
				return html
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("waited %s for the page to contain %q:\n%s", timeout, want, html)
	return ""
}

// eval runs JavaScript in the page and returns its value.
func (p *page) eval(t *testing.T, expr string) (json.RawMessage, error) {
	t.Helper()
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := p.b.call(p.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res); err != nil {
		return nil, err
	}
	if e := res.ExceptionDetails; e != nil {
		return nil, errors.New(e.Text + " " + e.Exception.Description)
	}
	return res.Result.Value, nil
}

func (p *page) evalString(t *testing.T, expr string) string {
	t.Helper()
	v, err := p.eval(t, expr)
	if err != nil {
		t.Fatalf("eval %s: %v", expr, err)
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		t.Fatalf("eval %s: not a string: %s", expr, v)
	}
	return s
}

// waitFor polls a JavaScript condition until it is true (bounded).
func (p *page) waitFor(t *testing.T, cond string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		v, err := p.eval(t, "(function(){ try { return !!("+cond+"); } catch (e) { return false; } })()")
		if err == nil && string(v) == "true" {
			return
		}
		if err != nil {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	body, _ := p.eval(t, `location.href + "\n" + (document.body ? document.body.innerText : "")`)
	t.Fatalf("waited %s for %s (last error %q); page:\n%s", timeout, cond, last, body)
}

// screenshot saves a PNG under integration/artifacts/ and returns its path.
func (p *page) screenshot(t *testing.T, name string) string {
	t.Helper()
	var res struct {
		Data string `json:"data"`
	}
	if err := p.b.call(p.session, "Page.captureScreenshot", map[string]any{"format": "png"}, &res); err != nil {
		t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	dir, err := filepath.Abs("artifacts")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
