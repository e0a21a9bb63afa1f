package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/certs"
)

const brokerHost = "api.example-broker.test"

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// fakeBroker injects "Bearer <token>" and treats 401 as a rejection.
type fakeBroker struct{}

func (fakeBroker) Inject(r *http.Request, t *auth.Token) error {
	r.Header.Set("Authorization", "Bearer "+t.Access.Reveal())
	return nil
}
func (fakeBroker) Rejected(resp *http.Response, _ func() []byte) bool { return resp.StatusCode == 401 }
func (fakeBroker) Bypass(r *http.Request) bool                        { return strings.HasPrefix(r.URL.Path, "/auth/") }

// memSource is an in-memory TokenSource issuing tok-1, tok-2, ...
type memSource struct {
	mu      sync.Mutex
	n       int
	cur     *auth.Token
	err     error
	logins  atomic.Int64
	relogin atomic.Int64
}

func (m *memSource) issue() *auth.Token {
	m.n++
	m.logins.Add(1)
	m.cur = &auth.Token{Access: auth.Secret(fmt.Sprintf("tok-%d", m.n)), Expiry: time.Now().Add(time.Hour)}
	return m.cur
}

func (m *memSource) Token(context.Context) (*auth.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	if m.cur == nil {
		return m.issue(), nil
	}
	return m.cur, nil
}

func (m *memSource) Relogin(_ context.Context, t *auth.Token) (*auth.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.relogin.Add(1)
	if m.cur == t {
		return m.issue(), nil
	}
	return m.cur, nil
}

func (m *memSource) Set(_ context.Context, t *auth.Token) error { m.cur = t; return nil }
func (m *memSource) Status() auth.Status                        { return auth.Status{State: "ready"} }

// upstream records what the broker saw.
type upstream struct {
	mu    sync.Mutex
	auths []string
	valid string // the token value it accepts ("" accepts any)
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.auths = append(u.auths, strings.Join(r.Header.Values("Authorization"), "|"))
	valid := u.valid
	u.mu.Unlock()
	if valid != "" && r.Header.Get("Authorization") != "Bearer "+valid && !strings.HasPrefix(r.URL.Path, "/auth/") {
		w.WriteHeader(401)
		return
	}
	body, _ := io.ReadAll(r.Body)
	fmt.Fprintf(w, "ok %s %s %s", r.Method, r.URL.Path, body)
}

func (u *upstream) seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.auths...)
}

type testEnv struct {
	proxy  *Proxy
	addr   string
	client *http.Client
	src    *memSource
	up     *upstream
	upSrv  *httptest.Server
}

func newTestEnv(t *testing.T, mutate func(*Options)) *testEnv {
	t.Helper()
	up := &upstream{}
	upSrv := httptest.NewUnstartedServer(up)
	upSrv.EnableHTTP2 = true
	upSrv.StartTLS()
	t.Cleanup(upSrv.Close)
	ca, err := certs.LoadOrCreate(t.TempDir(), certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(upSrv.Certificate())
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "example.com"},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, upSrv.Listener.Addr().String())
		},
		ForceAttemptHTTP2: true,
	}
	src := &memSource{}
	opts := Options{
		CA:          ca,
		Passthrough: true,
		Transport:   tr,
		Accounts:    []*Account{{Name: "acct", Type: "fake", Hosts: []string{brokerHost}, Broker: fakeBroker{}, Source: src}},
		MaxBody:     1024,
	}
	if mutate != nil {
		mutate(&opts)
	}
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(func() { srv.Close(); p.Close() })
	proxyURL, _ := url.Parse(srv.URL)
	clientRoots := x509.NewCertPool()
	clientRoots.AddCert(ca.Certificate())
	client := &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(proxyURL),
		TLSClientConfig: &tls.Config{RootCAs: clientRoots},
	}, Timeout: 10 * time.Second}
	return &testEnv{proxy: p, addr: proxyURL.Host, client: client, src: src, up: up, upSrv: upSrv}
}

func (e *testEnv) do(t *testing.T, method, path string, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "https://"+brokerHost+path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestInjectReplacesClientAuthorization(t *testing.T) {
	e := newTestEnv(t, nil)
	resp, body := e.do(t, "POST", "/orders", `{"a":1}`, map[string]string{"Authorization": "Bearer from-client"})
	if resp.StatusCode != 200 || body != `ok POST /orders {"a":1}` {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if got := e.up.seen(); len(got) != 1 || got[0] != "Bearer tok-1" {
		t.Fatalf("upstream saw Authorization %q, want exactly the injected token", got)
	}
}

func TestReplayAfterRejection(t *testing.T) {
	e := newTestEnv(t, nil)
	e.up.valid = "tok-2" // the first token is refused
	resp, body := e.do(t, "POST", "/orders", `{"x":"y"}`, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `{"x":"y"}`) {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if got := e.up.seen(); len(got) != 2 || got[0] != "Bearer tok-1" || got[1] != "Bearer tok-2" {
		t.Fatalf("upstream saw %q", got)
	}
	// A second rejection is passed through: at most one replay per request.
	e.up.valid = "never"
	resp, _ = e.do(t, "GET", "/x", "", nil)
	if resp.StatusCode != 401 {
		t.Fatalf("status %d after a second rejection, want the broker's 401", resp.StatusCode)
	}
	if n := e.src.relogin.Load(); n != 2 {
		t.Fatalf("relogins = %d, want 2 (one per request)", n)
	}
}

func TestBypassForwardsUntouched(t *testing.T) {
	e := newTestEnv(t, nil)
	e.src.err = errors.New("must not be called")
	resp, _ := e.do(t, "POST", "/auth/login", `{}`, map[string]string{"Authorization": "Basic client"})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := e.up.seen(); len(got) != 1 || got[0] != "Basic client" {
		t.Fatalf("upstream saw %q, want the client's own header", got)
	}
}

func TestErrorsNeverForward(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"login failed", &auth.LoginError{Account: "acct", Message: "Invalid MPIN"}, 502, CodeLoginFailed},
		{"login required", fmt.Errorf("x: %w", auth.ErrLoginRequired), 511, CodeLoginRequired},
		{"rate limited", &auth.RateLimitError{Account: "acct", Until: time.Now().Add(time.Hour)}, 429, CodeRateLimited},
		{"not configured", &auth.NotConfiguredError{Account: "acct", Missing: []string{"X"}}, 502, CodeNotConfigured},
		{"unreachable", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, 502, CodeUpstreamUnreachable},
		{"timeout", context.DeadlineExceeded, 504, CodeTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, nil)
			e.src.err = tc.err
			resp, body := e.do(t, "GET", "/x", "", nil)
			if resp.StatusCode != tc.status || resp.Header.Get("X-Authproxy-Error") != tc.code {
				t.Fatalf("status %d code %q body %s", resp.StatusCode, resp.Header.Get("X-Authproxy-Error"), body)
			}
			if !strings.Contains(body, `"code":"`+tc.code+`"`) || !strings.Contains(body, `"account":"acct"`) {
				t.Fatalf("body %s", body)
			}
			if tc.code == CodeRateLimited && resp.Header.Get("Retry-After") == "" {
				t.Fatal("no Retry-After")
			}
			if len(e.up.seen()) != 0 {
				t.Fatal("the request was forwarded")
			}
		})
	}
}

func TestUntrustedUpstreamIsUpstreamTLS(t *testing.T) {
	e := newTestEnv(t, nil)
	// Rebuild with a transport that reaches the server but does not trust it.
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", e.upSrv.Listener.Addr().String())
	}}
	e.proxy.upstream = tr
	resp, body := e.do(t, "GET", "/x", "", nil)
	if resp.StatusCode != 502 || resp.Header.Get("X-Authproxy-Error") != CodeUpstreamTLS {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	if len(e.up.seen()) != 0 {
		t.Fatal("an untrusted server received the request")
	}
}

func TestBodyCapAndBadRequests(t *testing.T) {
	e := newTestEnv(t, nil)
	resp, body := e.do(t, "POST", "/x", strings.Repeat("a", 2000), nil)
	if resp.StatusCode != 413 || !strings.Contains(body, CodeTooLarge) {
		t.Fatalf("over-cap body: %d %s", resp.StatusCode, body)
	}
	if len(e.up.seen()) != 0 {
		t.Fatal("over-cap body was forwarded")
	}
	// Malformed CONNECT targets get 400.
	for _, target := range []string{"no-port", "host:abc", "host:99999", ":443"} {
		conn, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		if resp.StatusCode != 400 {
			t.Errorf("CONNECT %s: status %d, want 400", target, resp.StatusCode)
		}
		conn.Close()
	}
}

func TestPassthroughOffRefusesOtherHosts(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.Passthrough = false })
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 403 {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
}

func TestTunnelForOtherHosts(t *testing.T) {
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "origin auth=%q", r.Header.Get("Authorization"))
	}))
	defer origin.Close()
	e := newTestEnv(t, nil)
	// The client trusts only the origin's own certificate: a MITM would fail.
	proxyURL, _ := url.Parse("http://" + e.addr)
	c := origin.Client()
	c.Transport.(*http.Transport).Proxy = http.ProxyURL(proxyURL)
	resp, err := c.Get(origin.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != `origin auth=""` {
		t.Fatalf("got %q", b)
	}
	if e.proxy.OpenTunnels() < 0 {
		t.Fatal("negative tunnel count")
	}
}

func TestProxyAuth(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.Users = map[string]auth.Secret{"alice": "pw"} })
	_, err := e.client.Get("https://" + brokerHost + "/x")
	if err == nil || !strings.Contains(err.Error(), "Proxy Authentication Required") {
		t.Fatalf("no credentials: err %v, want 407", err)
	}
	proxyURL, _ := url.Parse("http://alice:pw@" + e.addr)
	e.client.Transport.(*http.Transport).Proxy = http.ProxyURL(proxyURL)
	resp, body := e.do(t, "GET", "/x", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("with credentials: %d %s", resp.StatusCode, body)
	}
	for _, h := range e.up.seen() {
		if strings.Contains(h, "Basic") {
			t.Fatalf("Proxy-Authorization leaked upstream: %q", h)
		}
	}
}

func TestAbsoluteFormHTTPSIsInjectedOverTLS(t *testing.T) {
	e := newTestEnv(t, nil)
	// A client that sends "GET https://broker/..." in plain text to the proxy.
	resp := rawProxyRequest(t, e.addr, "GET https://"+brokerHost+"/plain HTTP/1.1\r\nHost: "+brokerHost+"\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := e.up.seen(); len(got) != 1 || got[0] != "Bearer tok-1" {
		t.Fatalf("upstream saw %q", got)
	}
}

// rawProxyRequest writes one request to the proxy in plain text and reads
// the answer.
func rawProxyRequest(t *testing.T, addr, req string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	return resp
}

func TestStatusAndHealth(t *testing.T) {
	e := newTestEnv(t, nil)
	resp, err := http.Get("http://" + e.addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", err, resp)
	}
	resp.Body.Close()
	resp, err = http.Get("http://" + e.addr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"name": "acct"`) || !strings.Contains(string(b), `"state": "ready"`) {
		t.Fatalf("status: %s", b)
	}
}

func TestConcurrentRequestsShareOneToken(t *testing.T) {
	e := newTestEnv(t, nil)
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", "https://"+brokerHost+"/x", nil)
			resp, err := e.client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}()
	}
	wg.Wait()
	if n := e.src.logins.Load(); n != 1 {
		t.Fatalf("logins = %d", n)
	}
	for _, h := range e.up.seen() {
		if h != "Bearer tok-1" {
			t.Fatalf("upstream saw %q", h)
		}
	}
}
