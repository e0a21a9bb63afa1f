package integration

// Guarantees about the proxy itself, checked against the built binary:
// crash safety of the state dir, one process per state dir, idle deadlines
// and the tunnel cap, malformed input, secrets, who may use the proxy, the
// local CA's name constraints, and TLS-only injection. Each test logs one
// "GUARANTEE ok: ..." line per guarantee (go test -v -run Guarantee).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	mrand "math/rand/v2"
	"net"
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

	fake5p "github.com/authproxy/authproxy/internal/fakebroker/fivepaisa"
	"github.com/authproxy/authproxy/internal/fakebroker/pocketful"
	"github.com/authproxy/authproxy/internal/fakebroker/tradingo"
	tvfake "github.com/authproxy/authproxy/internal/fakebroker/tradovate"
)

// kill9 kills p with SIGKILL and waits for it.
func (p *proc) kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("authproxy did not die within 10s of SIGKILL")
	}
}

// waitExit waits (bounded) for p to exit by itself and reports whether it
// exited 0.
func (p *proc) waitExit(d time.Duration) (bool, error) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.Success(), nil
	case <-time.After(d):
		return false, fmt.Errorf("still running after %v", d)
	}
}

// runExpectFail runs `authproxy args...` that must exit non-zero within
// 20s, and returns its combined output.
func runExpectFail(t *testing.T, w *world, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = w.procEnv()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("authproxy %s did not exit within 20s:\n%s", strings.Join(args, " "), out)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("authproxy %s: %v, want a non-zero exit\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// readTokens parses state_dir/tokens.json.
func readTokens(t *testing.T, w *world) map[string]json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(w.stateDir, "tokens.json"))
	if err != nil {
		t.Fatalf("tokens.json: %v", err)
	}
	var f struct {
		Tokens map[string]json.RawMessage `json:"tokens"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("tokens.json is not readable JSON (%d bytes): %v", len(data), err)
	}
	return f.Tokens
}

// TestGuaranteeKill9 kills the proxy with SIGKILL at random moments, one
// of them right after a login, while renewals rewrite tokens.json and
// clients send requests. tokens.json stays readable, and every new process
// serves from it with no new login.
func TestGuaranteeKill9(t *testing.T) {
	t.Parallel()
	guarantee(t, "kill -9 at any moment leaves tokens.json readable and the next start reuses it (no new login)")
	w, fake := tradovateWorld(t, tvPassword, func(o *tvfake.Options) { o.TokenTTL = 8 * time.Second })
	cfg := w.writeConfig(tvAccount)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)
	if res := curl(t, env, tvREST+"/v1/account/list"); res.Status != 200 {
		t.Fatalf("first request: %d %s\n%s", res.Status, res.Body, p.Output())
	}
	p.kill9() // right after the login
	if _, ok := readTokens(t, w)["tv"]; !ok {
		t.Fatal("the login's token was not in tokens.json when the proxy was killed right after it")
	}
	rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for i := range 5 {
		p = w.start(cfg)
		env = w.clientEnv(cfg, p)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // traffic until the kill
			defer wg.Done()
			for range 40 {
				select {
				case <-stop:
					return
				default:
				}
				curl(t, env, "--max-time", "5", tvMD+"/v1/md/getChart")
			}
		}()
		time.Sleep(time.Duration(rng.Int64N(int64(3 * time.Second))))
		p.kill9()
		close(stop)
		wg.Wait()
		if _, ok := readTokens(t, w)["tv"]; !ok {
			t.Fatalf("kill %d: tokens.json lost the account", i+1)
		}
	}
	p = w.start(cfg)
	env = w.clientEnv(cfg, p)
	if res := curl(t, env, tvREST+"/v1/account/list"); res.Status != 200 {
		t.Fatalf("after the last kill: %d %s\n%s", res.Status, res.Body, p.Output())
	}
	if c := fake.Counters(); c.Sessions != 1 || c.LoginAttempts != 1 {
		t.Errorf("counters %+v: every restart must reuse the saved token (1 login in all)", c)
	}
	if c := fake.Counters(); c.Renewals < 1 {
		t.Errorf("no renewal happened across the kills (%+v); tokens.json was never rewritten", c)
	}
}

// TestGuaranteeOneProcessPerStateDir: a second proxy on the same state dir
// refuses to start with a clear message and leaves the first one running.
func TestGuaranteeOneProcessPerStateDir(t *testing.T) {
	t.Parallel()
	guarantee(t, "two authproxy processes on one state dir: the second refuses with a clear message")
	w, fake, cfg := tradingoWorld(t, tgMPIN)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)
	if res := tgOrderBook(t, env); res.Status != 200 {
		t.Fatalf("first proxy: %d %s", res.Status, res.Body)
	}
	before, err := os.ReadFile(filepath.Join(w.stateDir, "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	out := runExpectFail(t, w, "run", "--config", cfg)
	if !strings.Contains(out, "another authproxy is already running") || !strings.Contains(out, w.stateDir) {
		t.Errorf("the second proxy's message does not say why:\n%s", out)
	}
	after, err := os.ReadFile(filepath.Join(w.stateDir, "tokens.json"))
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("the refused second proxy changed tokens.json (%v)", err)
	}
	if res := tgOrderBook(t, env); res.Status != 200 {
		t.Fatalf("the first proxy after the refusal: %d %s", res.Status, res.Body)
	}
	if fake.Logins() != 1 {
		t.Errorf("logins = %d, want 1", fake.Logins())
	}
}

// dialProxy opens a raw connection to the proxy with an overall deadline.
func dialProxy(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// connect sends CONNECT target (with optional extra header lines) and
// returns the connection and the proxy's answer.
func connect(t *testing.T, addr, target string, extra ...string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c := dialProxy(t, addr)
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n" + strings.Join(extra, "") + "\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	return c, br, resp
}

// proxyCAPool trusts the proxy's local CA only.
func proxyCAPool(t *testing.T, w *world) *x509.CertPool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(w.stateDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatal("ca.pem holds no certificate")
	}
	return pool
}

// mitm opens a decrypted connection to a broker host through the proxy.
func mitm(t *testing.T, w *world, addr, host string) *tls.Conn {
	t.Helper()
	c, br, resp := connect(t, addr, host+":443")
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT %s: %d", host, resp.StatusCode)
	}
	if br.Buffered() > 0 {
		t.Fatal("bytes after the CONNECT answer")
	}
	tc := tls.Client(c, &tls.Config{ServerName: host, RootCAs: proxyCAPool(t, w), NextProtos: []string{"http/1.1"}})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS through the proxy to %s: %v", host, err)
	}
	return tc
}

// closedWithin reports whether the peer closes c within d (reading and
// discarding whatever arrives first).
func closedWithin(c net.Conn, d time.Duration) (time.Duration, bool) {
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(d))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return time.Since(start), false
		}
		return time.Since(start), true
	}
}

// tcpSink accepts connections and holds them open, echoing what arrives.
func tcpSink(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for i := 0; i < 1000; i++ { // bounded accept loop
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestGuaranteeIdleTimeout: with [limits] idle_timeout = "1s", an idle
// tunnel and idle MITM connections (before the TLS handshake, after it
// with no request, and kept alive after a request) are closed by the proxy.
func TestGuaranteeIdleTimeout(t *testing.T) {
	t.Parallel()
	guarantee(t, "idle tunnels and idle MITM connections are closed after [limits] idle_timeout")
	w, _, _ := tradingoWorld(t, tgMPIN)
	cfg := w.writeConfig(tgAccount + "\n[limits]\nidle_timeout = \"1s\"\n")
	p := w.start(cfg)
	sink := tcpSink(t)
	const limit = 6 * time.Second // 1s idle, generous slack for a -race binary

	type idleCase struct {
		name string
		open func(t *testing.T) net.Conn
	}
	cases := []idleCase{
		{"tunnel", func(t *testing.T) net.Conn {
			c, br, resp := connect(t, p.addr, sink)
			if resp.StatusCode != 200 {
				t.Fatalf("CONNECT to the sink: %d", resp.StatusCode)
			}
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 4)
			if _, err := io.ReadFull(br, got); err != nil || string(got) != "ping" {
				t.Fatalf("tunnel echo: %q %v", got, err)
			}
			return c
		}},
		{"mitm-before-handshake", func(t *testing.T) net.Conn {
			c, _, resp := connect(t, p.addr, tgHost+":443")
			if resp.StatusCode != 200 {
				t.Fatalf("CONNECT: %d", resp.StatusCode)
			}
			return c
		}},
		{"mitm-no-request", func(t *testing.T) net.Conn { return mitm(t, w, p.addr, tgHost) }},
		{"mitm-keepalive", func(t *testing.T) net.Conn {
			tc := mitm(t, w, p.addr, tgHost)
			if _, err := io.WriteString(tc, "GET /auth/nothing HTTP/1.1\r\nHost: "+tgHost+"\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
			if err != nil {
				t.Fatalf("request through the MITM: %v", err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.Close {
				t.Fatal("the proxy closed a keep-alive connection after one request")
			}
			return tc
		}},
	}
	runConcurrently(t, cases, func(c idleCase) string { return c.name }, func(t *testing.T, c idleCase) {
		conn := c.open(t)
		if took, closed := closedWithin(conn, limit); !closed {
			t.Errorf("%s: still open after %v idle (idle_timeout 1s)", c.name, took.Round(time.Millisecond))
		} else {
			t.Logf("%s: closed after %v idle", c.name, took.Round(time.Millisecond))
		}
	})
	if _, closed := closedWithin(dialProxy(t, p.addr), limit); !closed {
		t.Errorf("an idle client connection to the proxy itself stayed open")
	}
}

// TestGuaranteeMaxTunnels: past [limits] max_tunnels the proxy refuses a
// CONNECT with a clear 503, and accepts again once a tunnel closes.
func TestGuaranteeMaxTunnels(t *testing.T) {
	t.Parallel()
	guarantee(t, "the number of open tunnels is capped ([limits] max_tunnels) with a clear refusal past it")
	w, _, _ := tradingoWorld(t, tgMPIN)
	cfg := w.writeConfig(tgAccount + "\n[limits]\nmax_tunnels = 2\n")
	p := w.start(cfg)
	sink := tcpSink(t)
	open := func() (net.Conn, *http.Response, *bufio.Reader) {
		c, br, resp := connect(t, p.addr, sink)
		return c, resp, br
	}
	var conns []net.Conn
	for i := range 2 {
		c, resp, br := open()
		if resp.StatusCode != 200 {
			t.Fatalf("tunnel %d: %d", i+1, resp.StatusCode)
		}
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if b, err := br.ReadByte(); err != nil || b != 'x' {
			t.Fatalf("tunnel %d echo: %v", i+1, err)
		}
		conns = append(conns, c)
	}
	_, resp, _ := open()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Authproxy-Error") != "too_many_tunnels" ||
		!strings.Contains(string(body), "max_tunnels") {
		t.Fatalf("third tunnel: %d %q %s, want 503 too_many_tunnels naming max_tunnels", resp.StatusCode, resp.Header.Get("X-Authproxy-Error"), body)
	}
	// Decrypted (MITM) connections to a broker host count too.
	c, _, resp := connect(t, p.addr, tgHost+":443")
	c.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Authproxy-Error") != "too_many_tunnels" {
		t.Fatalf("broker CONNECT past the cap: %d %q, want 503 too_many_tunnels", resp.StatusCode, resp.Header.Get("X-Authproxy-Error"))
	}

	conns[0].Close()
	if !pollUntil(10*time.Second, func() bool {
		c, resp, _ := open()
		c.Close()
		return resp.StatusCode == 200
	}) {
		t.Fatal("no tunnel accepted within 10s of closing one")
	}
	conns[1].Close()
	// With room again, a broker host is served.
	if !pollUntil(10*time.Second, func() bool {
		c, _, resp := connect(t, p.addr, tgHost+":443")
		c.Close()
		return resp.StatusCode == 200
	}) {
		t.Fatal("no MITM connection accepted within 10s of closing tunnels")
	}
}

// goroutines makes p dump its goroutines (SIGQUIT, GOTRACEBACK=all) and
// counts them; p exits.
func goroutines(t *testing.T, p *proc) int {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	if ok, err := p.waitExit(15 * time.Second); err != nil || ok {
		t.Fatalf("authproxy on SIGQUIT: exited 0: %v, %v", ok, err)
	}
	n := len(regexp.MustCompile(`(?m)^goroutine \d+ [^\n]*\[`).FindAllString(p.Output(), -1))
	if n == 0 {
		t.Fatalf("no goroutine dump in the output (exit %v):\n%s", p.cmd.ProcessState, p.Output())
	}
	return n
}

// rawRoundTrip writes raw to c and reads one response.
func rawRoundTrip(t *testing.T, c io.ReadWriter, raw string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("write: %v", err)
	}
	var req *http.Request
	if strings.HasPrefix(raw, "CONNECT ") {
		req = &http.Request{Method: http.MethodConnect} // a 200 has no body
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		return nil, err.Error()
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8192))
	resp.Body.Close()
	return resp, string(b)
}

// TestGuaranteeMalformedRequests: malformed requests, on the proxy's port
// and inside a MITM'd connection, get a 4xx answer and nothing reaches the
// broker; the proxy neither crashes nor keeps goroutines for them.
func TestGuaranteeMalformedRequests(t *testing.T) {
	t.Parallel()
	guarantee(t, "malformed requests get 4xx, never a crash, a forwarded request or a goroutine leak",
		"bad CONNECT target", "huge headers", "CR/LF in header values", "absurd bodies")
	w, fake, _ := tradingoWorld(t, tgMPIN)
	w.env["GOTRACEBACK"] = "all"
	cfg := w.writeConfig(tgAccount + "\n[limits]\nmax_body = 65536\n")

	// Baseline: a proxy that served one health check.
	base := w.start(cfg)
	if res := curl(t, w.procEnv(), "http://"+base.addr+"/healthz"); res.Status != 200 {
		t.Fatalf("healthz: %d", res.Status)
	}
	baseline := goroutines(t, base)

	p := w.start(cfg)
	huge := "X-Pad: " + strings.Repeat("a", 100<<10) + "\r\n"
	abs := "http://" + tgHost + "/kb/OrderBook/GetOrderBookList"
	outer := []struct{ name, raw string }{
		{"connect-no-port", "CONNECT " + tgHost + " HTTP/1.1\r\nHost: " + tgHost + "\r\n\r\n"},
		{"connect-empty-host", "CONNECT :443 HTTP/1.1\r\nHost: :443\r\n\r\n"},
		{"connect-bad-port", "CONNECT " + tgHost + ":99999 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"connect-port-letters", "CONNECT " + tgHost + ":https HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"connect-path", "CONNECT " + tgHost + ":443/x HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"connect-userinfo", "CONNECT a@" + tgHost + ":443 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"huge-header", "GET " + abs + " HTTP/1.1\r\nHost: " + tgHost + "\r\n" + huge + "\r\n"},
		{"bare-cr-in-value", "GET " + abs + " HTTP/1.1\r\nHost: " + tgHost + "\r\nX-A: a\rb\r\n\r\n"},
		{"bare-lf-in-value", "GET " + abs + " HTTP/1.1\r\nHost: " + tgHost + "\r\nX-A: a\nb\r\n\r\n"},
		{"nul-in-value", "GET " + abs + " HTTP/1.1\r\nHost: " + tgHost + "\r\nX-A: a\x00b\r\n\r\n"},
		{"absurd-length", "POST " + abs + " HTTP/1.1\r\nHost: " + tgHost + "\r\nContent-Type: application/json\r\nContent-Length: 99999999999999\r\n\r\n{}"},
		{"negative-length", "POST " + abs + " HTTP/1.1\r\nHost: " + tgHost + "\r\nContent-Length: -5\r\n\r\n"},
		{"two-lengths", "POST " + abs + " HTTP/1.1\r\nHost: " + tgHost + "\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"},
		{"bad-chunked", "POST " + abs + " HTTP/1.1\r\nHost: " + tgHost + "\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"},
		{"garbage-line", "\x00\x01\x02\xff GARBAGE\r\n\r\n"},
	}
	for _, c := range outer {
		resp, body := rawRoundTrip(t, dialProxy(t, p.addr), c.raw)
		if resp == nil || resp.StatusCode < 400 || resp.StatusCode > 499 {
			st := "no answer: " + body
			if resp != nil {
				st = fmt.Sprintf("%d %s", resp.StatusCode, body)
			}
			t.Errorf("proxy port, %s: %s; want a 4xx", c.name, st)
		}
	}
	inner := []struct{ name, raw string }{
		{"huge-header", "GET /kb/x HTTP/1.1\r\nHost: " + tgHost + "\r\n" + huge + "\r\n"},
		{"bare-cr-in-value", "GET /kb/x HTTP/1.1\r\nHost: " + tgHost + "\r\nX-A: a\rb\r\n\r\n"},
		{"nul-in-value", "GET /kb/x HTTP/1.1\r\nHost: " + tgHost + "\r\nX-A: a\x00b\r\n\r\n"},
		{"absurd-length", "POST /kb/x HTTP/1.1\r\nHost: " + tgHost + "\r\nContent-Type: application/json\r\nContent-Length: 99999999999999\r\n\r\n{}"},
		{"body-over-cap", "POST /kb/x HTTP/1.1\r\nHost: " + tgHost + "\r\nContent-Type: application/json\r\nContent-Length: 70000\r\n\r\n" + strings.Repeat(" ", 70000)},
		{"bad-chunked", "POST /kb/x HTTP/1.1\r\nHost: " + tgHost + "\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"},
		{"garbage-line", "\x00\x01\x02\xff GARBAGE\r\n\r\n"},
	}
	for _, c := range inner {
		tc := mitm(t, w, p.addr, tgHost)
		resp, body := rawRoundTrip(t, tc, c.raw)
		if resp == nil || resp.StatusCode < 400 || resp.StatusCode > 499 {
			st := "no answer: " + body
			if resp != nil {
				st = fmt.Sprintf("%d %s", resp.StatusCode, body)
			}
			t.Errorf("inside the MITM, %s: %s; want a 4xx", c.name, st)
		}
		tc.Close()
	}
	if n := len(fake.Requests()); n != 0 || fake.LoginAttempts() != 0 {
		t.Errorf("malformed requests reached Tradingo: %d API requests, %d logins", n, fake.LoginAttempts())
	}
	if res := curl(t, w.procEnv(), "http://"+p.addr+"/healthz"); res.Status != 200 {
		t.Fatalf("the proxy is not healthy after the malformed requests: %d %s\n%s", res.Status, res.Err, p.Output())
	}
	// Every client connection is closed; give the proxy a moment to notice.
	time.Sleep(2 * time.Second)
	after := goroutines(t, p)
	t.Logf("goroutines: %d at baseline, %d after %d malformed requests", baseline, after, len(outer)+len(inner))
	if after > baseline+10 {
		t.Errorf("goroutines: %d after %d malformed requests, %d at baseline", after, len(outer)+len(inner), baseline)
	}
}

// TestGuaranteeNonLoopbackNeedsProxyAuth: a non-loopback listen address
// without [proxy_auth] is refused at startup, from the file and from
// --listen alike. (192.0.2.1 is TEST-NET: nothing is ever bound.)
func TestGuaranteeNonLoopbackNeedsProxyAuth(t *testing.T) {
	t.Parallel()
	guarantee(t, "a non-loopback listen without [proxy_auth] is refused at startup (config and --listen)")
	w := newWorld(t)
	cfg := w.writeConfig(tgAccount)
	bad := filepath.Join(w.dir, "open.toml")
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, bytes.Replace(data, []byte(`listen = "127.0.0.1:0"`), []byte(`listen = "192.0.2.1:8899"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"run", "--config", bad},
		{"run", "--config", cfg, "--listen", "192.0.2.1:8899"},
		{"run", "--config", cfg, "--listen", ":8899"},
	} {
		out := runExpectFail(t, w, args...)
		if !strings.Contains(out, "loopback") || !strings.Contains(out, "proxy_auth") {
			t.Errorf("authproxy %s: the message does not explain the refusal:\n%s", strings.Join(args, " "), out)
		}
	}
}

// tgRouter serves several fake Tradingo accounts on one host: logins go
// by ClientCode, API calls by the token's clientcode claim.
type tgRouter map[string]*tradingo.Fake

func (rt tgRouter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	code := ""
	if strings.EqualFold(r.URL.Path, tradingo.LoginPath) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		var f struct{ ClientCode string }
		_ = json.Unmarshal(body, &f)
		code = f.ClientCode
	} else if _, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok {
		if parts := strings.Split(tok, "."); len(parts) == 3 {
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			var c struct {
				ClientCode string `json:"clientcode"`
			}
			_ = json.Unmarshal(payload, &c)
			code = c.ClientCode
		}
	}
	f, ok := rt[code]
	if !ok {
		for _, any := range rt { // unknown: any fake refuses it
			f = any
			break
		}
	}
	f.ServeHTTP(w, r)
}

// TestGuaranteeProxyAuth: with [proxy_auth], CONNECT and plain proxy
// requests need Proxy-Authorization; two Tradingo accounts share the host
// and the proxy user selects the account. A plain http:// request to a
// broker host is sent upstream over TLS with the credential.
func TestGuaranteeProxyAuth(t *testing.T) {
	t.Parallel()
	guarantee(t, "[proxy_auth]: Basic Proxy-Authorization required on CONNECT and plain requests; the user selects the account")
	guarantee(t, "plain http:// to a broker host is refused (403 forbidden, hint: https://); nothing reaches the broker")
	guarantee(t, "[proxy_auth] accounts is an allow-list: an unlisted user may use no account")
	const (
		codeB   = "GO22351"
		mpinB   = "7395"
		secretB = "KRUGS4ZANFZSA5DIMUQGC3DPORUGK4RA"
		alicePW = "alice-Proxy-pw-5521"
		bobPW   = "bob-Proxy-pw-8734"
	)
	w := newWorld(t)
	fakeA := tradingo.New(tradingo.Options{ClientCode: tgClientCode, MPIN: tgMPIN, TOTPSecret: tgTOTPSecret})
	fakeB := tradingo.New(tradingo.Options{ClientCode: codeB, MPIN: mpinB, TOTPSecret: secretB})
	w.serve(tgRouter{tgClientCode: fakeA, codeB: fakeB}, tgHost)
	w.env["ALICE_PW"], w.env["BOB_PW"] = alicePW, bobPW
	w.env["TGA_MPIN"], w.env["TGA_TOTP"], w.env["TGB_MPIN"], w.env["TGB_TOTP"] = tgMPIN, tgTOTPSecret, mpinB, secretB
	cfg := w.writeConfig(`[proxy_auth]
users = { alice = "${ALICE_PW}", bob = "${BOB_PW}", carol = "${ALICE_PW}" }
accounts = { alice = "tga", bob = ["tgb"] }

[brokers.tga]
type = "tradingo"
client_code = "` + tgClientCode + `"
mpin = "${TGA_MPIN}"
totp_secret = "${TGA_TOTP}"

[brokers.tgb]
type = "tradingo"
client_code = "` + codeB + `"
mpin = "${TGB_MPIN}"
totp_secret = "${TGB_TOTP}"
`)
	p := w.start(cfg)
	base := w.clientEnv(cfg, p)
	as := func(user, pw string) []string {
		env := append([]string{}, base...)
		u := "http://" + p.addr
		if user != "" {
			u = "http://" + user + ":" + pw + "@" + p.addr
		}
		return append(env, "HTTPS_PROXY="+u, "https_proxy="+u, "HTTP_PROXY="+u, "http_proxy="+u)
	}
	echo := "https://" + tgHost + "/kb/Echo/Who"
	uid := func(res curlResult) string {
		var b struct {
			Result struct {
				Data []struct{ Uid string }
			}
		}
		_ = json.Unmarshal([]byte(res.Body), &b)
		if len(b.Result.Data) == 1 {
			return b.Result.Data[0].Uid
		}
		return ""
	}

	// No or wrong credentials: 407 on CONNECT and on plain requests.
	for _, hdr := range []string{"", "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("alice:wrong")) + "\r\n"} {
		_, _, resp := connect(t, p.addr, tgHost+":443", hdr)
		if resp.StatusCode != http.StatusProxyAuthRequired || resp.Header.Get("Proxy-Authenticate") == "" {
			t.Errorf("CONNECT with %q: %d, want 407 with Proxy-Authenticate", hdr, resp.StatusCode)
		}
		resp, _ = rawRoundTrip(t, dialProxy(t, p.addr), "GET http://"+tgHost+"/kb/Echo/Who HTTP/1.1\r\nHost: "+tgHost+"\r\n"+hdr+"\r\n")
		if resp == nil || resp.StatusCode != http.StatusProxyAuthRequired {
			t.Errorf("plain request with %q: %v, want 407", hdr, resp)
		}
	}
	if res := curl(t, as("", ""), "-X", "POST", "-d", "{}", "-H", "Content-Type: application/json", echo); res.Status == 200 {
		t.Errorf("curl without proxy credentials got through: %s", res.Body)
	}
	if res := curl(t, as("bob", alicePW), "-X", "POST", "-d", "{}", "-H", "Content-Type: application/json", echo); res.Status == 200 {
		t.Errorf("bob with alice's password got through: %s", res.Body)
	}

	// The user selects the account.
	for _, c := range []struct{ user, pw, want string }{{"alice", alicePW, tgClientCode}, {"bob", bobPW, codeB}, {"alice", alicePW, tgClientCode}} {
		res := curl(t, as(c.user, c.pw), "-X", "POST", "-d", "{}", "-H", "Content-Type: application/json", echo)
		if res.Status != 200 || uid(res) != c.want {
			t.Fatalf("%s through CONNECT: %d uid %q (want %s) %s %s\n%s", c.user, res.Status, uid(res), c.want, res.Body, res.Err, p.Output())
		}
	}
	// Plain http:// to the broker host, as bob: refused, nothing forwarded.
	beforeA, beforeB := len(fakeA.Requests()), len(fakeB.Requests())
	res := curl(t, as("bob", bobPW), "-X", "POST", "-d", "{}", "-H", "Content-Type: application/json", "http://"+tgHost+"/kb/Echo/Who")
	if res.Status != http.StatusForbidden || res.Header.Get("X-Authproxy-Error") != "forbidden" || !strings.Contains(res.Body, "https://"+tgHost) {
		t.Fatalf("plain http:// as bob: %d %s %s, want 403 forbidden with an https:// hint", res.Status, res.Body, res.Err)
	}
	// carol is a user, but not in the accounts allow-list: no account.
	res = curl(t, as("carol", alicePW), "-X", "POST", "-d", "{}", "-H", "Content-Type: application/json", echo)
	if res.Status != http.StatusForbidden || res.Header.Get("X-Authproxy-Error") != "forbidden" {
		t.Fatalf("unlisted user carol: %d %s %s, want 403 forbidden", res.Status, res.Body, res.Err)
	}
	if len(fakeA.Requests()) != beforeA || len(fakeB.Requests()) != beforeB {
		t.Errorf("a refused request reached Tradingo")
	}
	if fakeA.Logins() != 1 || fakeB.Logins() != 1 {
		t.Errorf("logins A %d B %d, want 1 each", fakeA.Logins(), fakeB.Logins())
	}
	assertNoSecrets(t, "proxy output", p.Output(), alicePW, bobPW, tgMPIN, mpinB, tgTOTPSecret, secretB)
}

// TestGuaranteeTLSOnlyInjection: the proxy decrypts and injects only for a
// configured host on port 443; the same host on another port is tunnelled
// untouched (the client sees the origin's own certificate, the origin sees
// no credential).
func TestGuaranteeTLSOnlyInjection(t *testing.T) {
	t.Parallel()
	guarantee(t, "credentials are injected only over TLS to a configured host and port")
	w := newWorld(t)
	fake := tradingo.New(tradingo.Options{ClientCode: tgClientCode, MPIN: tgMPIN, TOTPSecret: tgTOTPSecret})
	w.serve(fake, tgHost)
	var mu sync.Mutex
	var seen []string
	origin, err := w.ca.Serve(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		_, _ = io.WriteString(rw, "origin on 8443")
	}), tgHost)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { origin.Close() })
	w.resolve[tgHost+":8443"] = origin.Addr
	w.env["TG_CLIENT_CODE"], w.env["TG_MPIN"], w.env["TG_TOTP_SECRET"] = tgClientCode, tgMPIN, tgTOTPSecret
	cfg := w.writeConfig(tgAccount)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)

	// Trusting only the fake's CA (not the proxy's) proves no MITM on 8443.
	res := curl(t, env, "--cacert", w.caFile, "https://"+tgHost+":8443/kb/x")
	if res.Status != 200 || res.Body != "origin on 8443" {
		t.Fatalf("port 8443: %d %q %s\n%s", res.Status, res.Body, res.Err, p.Output())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != "" {
		t.Errorf("the origin on port 8443 saw Authorization %q", seen)
	}
	if fake.LoginAttempts() != 0 {
		t.Errorf("a request to port 8443 caused a login")
	}
}

// TestGuaranteeCANameConstraints: the local CA is limited by X.509 name
// constraints to the broker domains, so its key cannot vouch for any other
// site; `authproxy ca rotate` issues a new, equally constrained CA.
func TestGuaranteeCANameConstraints(t *testing.T) {
	t.Parallel()
	guarantee(t, "the local CA carries name constraints for the broker domains only; `ca rotate` issues a new one")
	w := newWorld(t)
	cfg := w.writeConfig(tgAccount)
	runCLI(t, w, "ca", "path", "--config", cfg) // creates the CA
	ca1, key1 := loadStateCA(t, w)
	checkConstraints(t, "initial CA", ca1, key1)

	out := runCLI(t, w, "ca", "rotate", "--config", cfg)
	if !strings.Contains(out, "ca.pem") {
		t.Errorf("ca rotate output: %s", out)
	}
	ca2, key2 := loadStateCA(t, w)
	if ca2.SerialNumber.Cmp(ca1.SerialNumber) == 0 || bytes.Equal(ca1.RawSubjectPublicKeyInfo, ca2.RawSubjectPublicKeyInfo) {
		t.Error("ca rotate kept the old certificate or key")
	}
	checkConstraints(t, "rotated CA", ca2, key2)

	if _, err := exec.LookPath("openssl"); err == nil {
		cmd := exec.Command("openssl", "x509", "-noout", "-text", "-in", filepath.Join(w.stateDir, "ca.pem"))
		text, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl: %v", err)
		}
		if !strings.Contains(string(text), "X509v3 Name Constraints: critical") || !strings.Contains(string(text), "DNS:swastika.co.in") {
			t.Errorf("openssl shows no critical DNS name constraints:\n%s", text)
		}
	}
	for _, name := range []string{"ca-key.pem", "tokens.json"} {
		if info, err := os.Stat(filepath.Join(w.stateDir, name)); err == nil && info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, info.Mode().Perm())
		}
	}
}

func loadStateCA(t *testing.T, w *world) (*x509.Certificate, any) {
	t.Helper()
	certPEM, err := os.ReadFile(filepath.Join(w.stateDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatal("ca.pem holds no PEM block")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(w.stateDir, "ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		t.Fatal("ca-key.pem holds no PEM block")
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		if key, err = x509.ParseECPrivateKey(kb.Bytes); err != nil {
			t.Fatalf("ca-key.pem: %v", err)
		}
	}
	return cert, key
}

// checkConstraints inspects ca's name constraints and proves them with
// leaves signed by its own key: broker hosts verify, other sites do not.
func checkConstraints(t *testing.T, what string, ca *x509.Certificate, key any) {
	t.Helper()
	if !ca.IsCA || !ca.PermittedDNSDomainsCritical {
		t.Errorf("%s: IsCA %v, name constraints critical %v", what, ca.IsCA, ca.PermittedDNSDomainsCritical)
	}
	permitted := strings.Join(ca.PermittedDNSDomains, " ")
	for _, d := range []string{"swastika.co.in", "tradovateapi.com", "5paisa.com", "pocketful.in",
		"kite.trade", "angelone.in", "upstox.com"} {
		if !strings.Contains(" "+permitted+" ", " "+d+" ") && !strings.Contains(" "+permitted+" ", " ."+d+" ") {
			t.Errorf("%s: permitted DNS domains %q lack %s", what, permitted, d)
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for host, ok := range map[string]bool{
		tgHost: true, "openapi.5paisa.com": true, "trade.pocketful.in": true, "demo.tradovateapi.com": true,
		"api.kite.trade": true, "ws.kite.trade": true, "apiconnect.angelone.in": true, "smartapisocket.angelone.in": true,
		"api.upstox.com": true, "api-hft.upstox.com": true,
		// Zerodha's login page is the person's browser's business, not the proxy's.
		"kite.zerodha.com": false,
		"www.google.com":   false, "accounts.example.com": false, "swastika.co.in.evil.com": false, "evilswastika.co.in": false,
	} {
		leaf := signLeaf(t, ca, key, host)
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots})
		if ok && err != nil {
			t.Errorf("%s: a leaf for broker host %s does not verify: %v", what, host, err)
		}
		if !ok && err == nil {
			t.Errorf("%s: the CA key can impersonate %s", what, host)
		}
	}
}

func signLeaf(t *testing.T, ca *x509.Certificate, caKey any, host string) *x509.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// TestGuaranteeNoSecretsAnywhere: all four brokers configured, --verbose
// logging, logins, renewals, a rejected token replayed, and a refused
// login. No secret or token appears in anything the proxy printed, in any
// state-dir file but tokens.json and ca-key.pem (both 0600), in /status,
// /metrics, the dashboard or `authproxy status`.
func TestGuaranteeNoSecretsAnywhere(t *testing.T) {
	t.Parallel()
	guarantee(t, "secrets and tokens never appear in logs (--verbose), error bodies, /status, /metrics, the dashboard, `status`, or state files other than tokens.json and ca-key.pem (0600)")
	const wrongPassword = "tv-Wrong-Pass-31337"
	w := newWorld(t)
	tg := tradingo.New(tradingo.Options{ClientCode: tgClientCode, MPIN: tgMPIN, TOTPSecret: tgTOTPSecret})
	w.serve(tg, tgHost)
	tv := tvfake.New(tvfake.Options{Username: tvUser, Password: tvPassword, AppID: tvAppID, AppVersion: tvAppVersion,
		CID: tvCID, Sec: tvSec, DeviceID: tvDevice, TokenTTL: 6 * time.Second})
	w.serve(tv, append(tvfake.Hosts(), tvOrgHost)...)
	fp := fake5p.New(fake5p.Options{AppKey: fpAppKey, UserID: fpUserID, EncryptionKey: fpEncKey,
		ClientCode: fpClient, PIN: fpPIN, TOTPSecret: fpSecret})
	w.serve(fp, fake5p.Hosts()...)
	pf := pocketful.New(pocketful.Options{AppID: pfAppID, AppSecret: pfAppSecret, ClientID: pfClientID})
	w.serve(pf, pfHost)
	for k, v := range map[string]string{
		"TG_CLIENT_CODE": tgClientCode, "TG_MPIN": tgMPIN, "TG_TOTP_SECRET": tgTOTPSecret,
		"TV_USER": tvUser, "TV_PASSWORD": tvPassword, "TV_APP_ID": tvAppID, "TV_SEC": tvSec, "TVL_PASSWORD": wrongPassword,
		"FP_APP_KEY": fpAppKey, "FP_USER_ID": fpUserID, "FP_ENC_KEY": fpEncKey, "FP_CLIENT": fpClient, "FP_PIN": fpPIN, "FP_TOTP_SECRET": fpSecret,
		"PF_APP_ID": pfAppID, "PF_APP_SECRET": pfAppSecret,
	} {
		w.env[k] = v
	}
	// fpTOTPAccount and tvAccount each carry a [limits] table; one is enough.
	fpAccount := strings.Replace(fpTOTPAccount, "[limits]\nmax_body = 4096\n", "", 1)
	cfg := w.writeConfig(tgAccount + "\n" + tvAccount + "\n" + fpAccount + "\n" + pfAccount + `
[brokers.tvlive]
type = "tradovate"
environment = "live"
hosts = ["live.tradovateapi.com"]
username = "${TV_USER}"
password = "${TVL_PASSWORD}"
app_id = "${TV_APP_ID}"
app_version = "1.0"
cid = "8123"
sec = "${TV_SEC}"
`)
	p := w.start(cfg, "--verbose")
	pf.SetRedirectURI("http://" + p.addr + "/callback/pf")
	env := w.clientEnv(cfg, p)
	var answers strings.Builder
	keep := func(res curlResult) curlResult {
		answers.WriteString(res.Body + "\n")
		for k, v := range res.Header {
			answers.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
		return res
	}

	if res := keep(tgOrderBook(t, env)); res.Status != 200 {
		t.Fatalf("tradingo: %d %s\n%s", res.Status, res.Body, p.Output())
	}
	if res := keep(curl(t, env, tvREST+"/v1/account/list")); res.Status != 200 {
		t.Fatalf("tradovate: %d %s\n%s", res.Status, res.Body, p.Output())
	}
	if res := keep(curl(t, env, tvMD+"/v1/md/getChart")); res.Status != 200 {
		t.Fatalf("tradovate md: %d %s", res.Status, res.Body)
	}
	res := keep(curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"head":{},"body":{}}`, fpService+"V3/OrderBook"))
	if res.Status != 200 {
		t.Fatalf("5paisa: %d %s\n%s", res.Status, res.Body, p.Output())
	}
	out, err := python(t, env, pfBrowser, "http://"+p.addr+"/login/pf")
	var br browserResult
	if err != nil || json.Unmarshal([]byte(out), &br) != nil || !strings.Contains(br.Text, "Logged in") {
		t.Fatalf("pocketful browser login: %v %s\n%s", err, out, p.Output())
	}
	// The page the proxy showed; the URLs the browser went through carry
	// the authorization code by OAuth's design.
	answers.WriteString(br.Text)
	if res := keep(curl(t, env, pfAPI+"/api/v1/holdings")); res.Status != 200 {
		t.Fatalf("pocketful: %d %s", res.Status, res.Body)
	}
	// A refused login: the broker's words reach the client, not the password.
	res = keep(curl(t, env, "https://"+tvfake.HostLive+"/v1/account/list"))
	if res.Status != 502 || res.Header.Get("X-Authproxy-Error") != "login_failed" {
		t.Fatalf("wrong password: %d %s", res.Status, res.Body)
	}
	// A rejected token, replayed after a new login.
	tv.CloseAllSessions()
	if res := keep(curl(t, env, tvREST+"/v1/account/list")); res.Status != 200 {
		t.Fatalf("after the session was closed: %d %s", res.Status, res.Body)
	}
	// Renewals (6s tokens renew at their midpoint).
	if !pollUntil(15*time.Second, func() bool { return tv.Counters().Renewals >= 1 }) {
		t.Fatalf("no renewal: %+v", tv.Counters())
	}
	if c := tv.Counters(); c.APIRejected != 1 || c.Sessions != 2 {
		t.Errorf("tradovate counters %+v: want one rejected call and two sessions", c)
	}
	if res := keep(curl(t, env, tvMD+"/v1/md/getChart")); res.Status != 200 {
		t.Fatalf("after the renewal: %d %s", res.Status, res.Body)
	}

	// Every secret and every token any broker saw.
	secrets := []string{tgMPIN, tgTOTPSecret, tvPassword, tvSec, wrongPassword, fpAppKey, fpEncKey, fpPIN, fpSecret, pfAppSecret}
	bearer := func(h string) {
		if _, tok, ok := strings.Cut(h, " "); ok && len(tok) >= 8 {
			secrets = append(secrets, tok)
		}
	}
	for _, r := range tg.Requests() {
		bearer(r.Authorization)
	}
	for _, r := range tv.Requests() {
		bearer(r.Authorization)
	}
	for _, r := range fp.Requests() {
		bearer(r.Authorization)
	}
	for _, r := range pf.Requests() {
		bearer(r.Authorization)
		if r.Path == pocketful.TokenPath {
			secrets = append(secrets, extractForm(string(r.Body), "code"))
		}
	}
	for _, lb := range tv.LoginBodies() { // what the proxy sent to log in
		var m map[string]any
		if json.Unmarshal(lb, &m) == nil {
			if s, _ := m["password"].(string); s != "" {
				secrets = append(secrets, s)
			}
		}
	}
	tokens := readTokens(t, w)
	for name, raw := range tokens {
		var rec struct {
			Access, Refresh string
			Aux             map[string]string
		}
		if err := json.Unmarshal(raw, &rec); err != nil {
			t.Fatalf("tokens.json entry %s: %v", name, err)
		}
		secrets = append(secrets, rec.Access, rec.Refresh)
		for _, v := range rec.Aux {
			secrets = append(secrets, v)
		}
	}
	if len(tokens) != 4 {
		t.Errorf("tokens.json holds %d accounts, want 4 (tg, tv, fp, pf)", len(tokens))
	}

	get := func(path string) string {
		res := curl(t, w.procEnv(), "http://"+p.addr+path)
		if res.Status != 200 {
			t.Fatalf("%s: %d", path, res.Status)
		}
		return res.Body
	}
	status, metrics, dash := get("/status"), get("/metrics"), get("/")
	if !strings.Contains(metrics, "authproxy_") || !strings.Contains(status, `"tvlive"`) {
		t.Errorf("/metrics or /status look empty:\n%s\n%s", metrics, status)
	}
	cliStatus := runCLI(t, w, "status", "--config", cfg, "--json")
	p.stop()

	check := func(what, text string) {
		t.Helper()
		assertNoSecrets(t, what, text, secrets...)
	}
	check("proxy output (--verbose)", p.Output())
	check("client answers", answers.String())
	check("/status", status)
	check("/metrics", metrics)
	check("dashboard", dash)
	check("authproxy status --json", cliStatus)
	n := 0
	err = filepath.WalkDir(w.stateDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch d.Name() {
		case "tokens.json", "ca-key.pem":
			info, err := d.Info()
			if err != nil {
				return err
			}
			if info.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", d.Name(), info.Mode().Perm())
			}
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		check("state file "+d.Name(), string(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checked %d secrets and tokens against the output, answers, endpoints and %d state files", len(secrets), n)
}
