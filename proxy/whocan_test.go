package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
)

func TestParseProcNetTCP(t *testing.T) {
	// Lines as the kernel prints them on a little-endian machine.
	le := func(s string) string {
		if isBigEndian() {
			t.Skip("table written for a little-endian host")
		}
		return s
	}
	table := le(`  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:22C3 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:D431 0100007F:22C3 01 00000000:00000000 00:00000000 00000000  1000        0 2 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:22C3 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1
`)
	client := netip.MustParseAddrPort("127.0.0.1:54321")
	server := netip.MustParseAddrPort("127.0.0.1:8899")
	uid, err := parseProcNetTCP(strings.NewReader(table), client, server)
	if err != nil || uid != 1000 {
		t.Fatalf("uid %d err %v, want 1000 (the client socket, not the server's)", uid, err)
	}
	if _, err := parseProcNetTCP(strings.NewReader(table), netip.MustParseAddrPort("127.0.0.1:1"), server); !errors.Is(err, ErrPeerUnknown) {
		t.Fatalf("unknown socket: err %v, want ErrPeerUnknown", err)
	}
	table6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:D431 00000000000000000000000001000000:22C3 01 00000000:00000000 00:00000000 00000000  1234        0 4 1
   1: 0000000000000000FFFF00000100007F:D432 0000000000000000FFFF00000100007F:22C3 01 00000000:00000000 00:00000000 00000000  77        0 4 1
`
	if uid, err := parseProcNetTCP(strings.NewReader(table6), netip.MustParseAddrPort("[::1]:54321"), netip.MustParseAddrPort("[::1]:8899")); err != nil || uid != 1234 {
		t.Fatalf("ipv6: uid %d err %v, want 1234", uid, err)
	}
	if uid, err := parseProcNetTCP(strings.NewReader(table6), netip.MustParseAddrPort("127.0.0.1:54322"), netip.MustParseAddrPort("127.0.0.1:8899")); err != nil || uid != 77 {
		t.Fatalf("v4-mapped: uid %d err %v, want 77", uid, err)
	}
}

func isBigEndian() bool {
	switch runtime.GOARCH {
	case "ppc64", "mips", "mips64", "s390x", "sparc64":
		return true
	}
	return false
}

// The platform lookup finds the uid of a real loopback client socket.
func TestPlatformPeerUIDFindsOwnSocket(t *testing.T) {
	if !peerUIDSupported {
		t.Skip("no peer uid lookup on " + runtime.GOOS)
	}
	for network, ln := range loopbackListeners(t) {
		c, s := dialAccept(t, ln)
		lookup, closeLookup := newPlatformPeerUID()
		uid, err := lookup(netip.MustParseAddrPort(s.RemoteAddr().String()), netip.MustParseAddrPort(s.LocalAddr().String()))
		closeLookup()
		if err != nil || uid != os.Getuid() {
			t.Errorf("%s: uid %d err %v, want %d", network, uid, err, os.Getuid())
		}
		c.Close()
		s.Close()
		ln.Close()
	}
}

func wantForbidden(t *testing.T, resp *http.Response, body string) {
	t.Helper()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Authproxy-Error") != CodeForbidden {
		t.Fatalf("status %d code %q body %s, want 403 forbidden", resp.StatusCode, resp.Header.Get("X-Authproxy-Error"), body)
	}
	var eb errorBody
	if err := json.Unmarshal([]byte(body), &eb); err != nil || eb.Error.Code != CodeForbidden {
		t.Fatalf("body %q is not the JSON error shape with code forbidden", body)
	}
}

func TestAnotherUnixUserIsRefused(t *testing.T) {
	var asked int
	e := newTestEnv(t, func(o *Options) {
		o.PeerUID = func(client, server netip.AddrPort) (int, error) {
			asked++
			if !client.Addr().IsLoopback() || !server.Addr().IsLoopback() {
				return 0, fmt.Errorf("unexpected addresses %v %v", client, server)
			}
			return 4242, nil
		}
	})
	// CONNECT to a broker host: accepted, refused inside the tunnel.
	resp, body := e.do(t, "POST", "/orders", `{"a":1}`, nil)
	wantForbidden(t, resp, body)
	if !strings.Contains(body, "4242") {
		t.Errorf("message does not name the client's uid: %s", body)
	}
	// Absolute form and the own endpoints too.
	r := rawProxyRequest(t, e.addr, "GET https://"+brokerHost+"/x HTTP/1.1\r\nHost: "+brokerHost+"\r\n\r\n")
	b, _ := io.ReadAll(r.Body)
	wantForbidden(t, r, string(b))
	r = rawProxyRequest(t, e.addr, "GET /status HTTP/1.1\r\nHost: "+e.addr+"\r\n\r\n")
	b, _ = io.ReadAll(r.Body)
	wantForbidden(t, r, string(b))
	// A tunnel to another host is refused at CONNECT.
	r = rawProxyRequest(t, e.addr, "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n")
	if r.StatusCode != http.StatusForbidden {
		t.Errorf("passthrough CONNECT: %d, want 403", r.StatusCode)
	}
	if got := e.up.seen(); len(got) != 0 || e.src.logins.Load() != 0 {
		t.Fatalf("upstream saw %q, logins %d: want nothing", got, e.src.logins.Load())
	}
	if asked == 0 {
		t.Fatal("the peer uid was never looked up")
	}
}

func TestOwnerAndRootAreAllowed(t *testing.T) {
	for _, uid := range []int{0, os.Getuid()} {
		e := newTestEnv(t, func(o *Options) {
			o.PeerUID = func(netip.AddrPort, netip.AddrPort) (int, error) { return uid, nil }
		})
		if resp, body := e.do(t, "GET", "/x", "", nil); resp.StatusCode != 200 {
			t.Fatalf("uid %d: %d %s", uid, resp.StatusCode, body)
		}
	}
	// An unknown loopback socket fails closed.
	e := newTestEnv(t, func(o *Options) {
		o.PeerUID = func(netip.AddrPort, netip.AddrPort) (int, error) { return 0, ErrPeerUnknown }
	})
	resp, body := e.do(t, "GET", "/x", "", nil)
	wantForbidden(t, resp, body)
}

func TestBrowserPagesGetNothing(t *testing.T) {
	e := newTestEnv(t, nil)
	refused := []map[string]string{
		{"Origin": "https://evil.example"},
		{"Origin": "null"},
		{"Origin": "https://" + brokerHost + ":8443"},
		{"Origin": "http://" + brokerHost + ":8080"},
		{"Origin": "https://" + brokerHost + ".evil.example"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
		{"Sec-Fetch-Site": "cross-site", "Origin": "https://" + brokerHost},
	}
	for _, h := range refused {
		resp, body := e.do(t, "POST", "/orders", `{"a":1}`, h)
		wantForbidden(t, resp, body)
	}
	if got := e.up.seen(); len(got) != 0 {
		t.Fatalf("upstream saw %q", got)
	}
	allowed := []map[string]string{
		nil,
		{"Origin": "https://" + brokerHost}, // websocket-client
		{"Origin": "HTTPS://" + strings.ToUpper(brokerHost)},
		{"Sec-Fetch-Site": "none"},
		{"Sec-Fetch-Site": "same-origin", "Origin": "https://" + brokerHost},
	}
	for _, h := range allowed {
		if resp, body := e.do(t, "POST", "/orders", `{"a":1}`, h); resp.StatusCode != 200 {
			t.Fatalf("%v: %d %s", h, resp.StatusCode, body)
		}
	}
	// The broker's own login pages get no credentials, so a browser
	// redirected there (cross-site) still reaches them, untouched.
	resp, body := e.do(t, "GET", "/auth/consent", "", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
	if resp.StatusCode != 200 {
		t.Fatalf("login page: %d %s", resp.StatusCode, body)
	}
	if got := e.up.seen(); got[len(got)-1] != "" {
		t.Fatalf("login page got Authorization %q", got[len(got)-1])
	}
}

func TestPlainHTTPAndOtherPortsAndTraceRefused(t *testing.T) {
	e := newTestEnv(t, nil)
	cases := []struct{ name, req, hint string }{
		{"plain http", "GET http://" + brokerHost + "/orders HTTP/1.1\r\nHost: " + brokerHost + "\r\n\r\n", "https://" + brokerHost},
		{"plain http port 80", "GET http://" + brokerHost + ":80/orders HTTP/1.1\r\nHost: " + brokerHost + "\r\n\r\n", "https://"},
		{"https port 8443", "GET https://" + brokerHost + ":8443/orders HTTP/1.1\r\nHost: " + brokerHost + ":8443\r\n\r\n", "443"},
		{"trace", "TRACE https://" + brokerHost + "/orders HTTP/1.1\r\nHost: " + brokerHost + "\r\n\r\n", ""},
		{"track", "TRACK https://" + brokerHost + "/orders HTTP/1.1\r\nHost: " + brokerHost + "\r\n\r\n", ""},
	}
	for _, tc := range cases {
		r := rawProxyRequest(t, e.addr, tc.req)
		b, _ := io.ReadAll(r.Body)
		wantForbidden(t, r, string(b))
		if !strings.Contains(string(b), tc.hint) {
			t.Errorf("%s: body %s lacks %q", tc.name, b, tc.hint)
		}
	}
	// TRACE inside a MITM'd tunnel too.
	resp, body := e.do(t, "TRACE", "/orders", "", nil)
	wantForbidden(t, resp, body)
	if got := e.up.seen(); len(got) != 0 {
		t.Fatalf("upstream saw %q", got)
	}
}

func TestOwnEndpointsCheckHost(t *testing.T) {
	e := newTestEnv(t, nil)
	_, port, _ := net.SplitHostPort(e.addr)
	for _, host := range []string{"evil.example", "evil.example:" + port, "127.0.0.2:" + port, "localhost.evil.example"} {
		r := rawProxyRequest(t, e.addr, "GET /status HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
		b, _ := io.ReadAll(r.Body)
		wantForbidden(t, r, string(b))
	}
	for _, host := range []string{e.addr, "localhost:" + port, "127.0.0.1", "[::1]:" + port, "LOCALHOST"} {
		r := rawProxyRequest(t, e.addr, "GET /status HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
		if r.StatusCode != 200 {
			t.Errorf("Host %s: %d, want 200", host, r.StatusCode)
		}
	}
}

func TestProxyAuthAccountsAllowList(t *testing.T) {
	e := newTestEnv(t, func(o *Options) {
		o.Users = map[string]auth.Secret{"alice": "pw", "bob": "pw2", "carol": "pw3"}
		o.UserAccounts = map[string][]string{"alice": {"other", "acct"}, "carol": {"other"}}
	})
	as := func(user, pass string) {
		u, _ := url.Parse("http://" + user + ":" + pass + "@" + e.addr)
		e.client.Transport.(*http.Transport).Proxy = http.ProxyURL(u)
		e.client.Transport.(*http.Transport).CloseIdleConnections()
	}
	as("alice", "pw")
	if resp, body := e.do(t, "GET", "/x", "", nil); resp.StatusCode != 200 {
		t.Fatalf("alice: %d %s", resp.StatusCode, body)
	}
	for _, u := range [][2]string{{"bob", "pw2"}, {"carol", "pw3"}} {
		as(u[0], u[1])
		resp, body := e.do(t, "GET", "/x", "", nil)
		wantForbidden(t, resp, body)
	}
	if got := e.up.seen(); len(got) != 1 {
		t.Fatalf("upstream saw %q, want only alice's request", got)
	}
}

// A body trickling in (one byte, then nothing) is cut off by BodyTimeout,
// and nothing goes upstream.
func TestSlowBodyIsCutOff(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.BodyTimeout = 200 * time.Millisecond })
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "POST https://%s/orders HTTP/1.1\r\nHost: %s\r\nContent-Length: 100\r\n\r\n{", brokerHost, brokerHost)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("status %d, want a refusal", resp.StatusCode)
		}
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the proxy kept waiting for the body")
	}
	if got := e.up.seen(); len(got) != 0 {
		t.Fatalf("upstream saw %q", got)
	}
}

// Decrypted connections count against MaxTunnels.
func TestMITMConnectionsCountAsTunnels(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.MaxTunnels = 1 })
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n", brokerHost, brokerHost)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first CONNECT: %v %v", resp, err)
	}
	tc := tls.Client(&bufConn{Conn: c, r: br}, &tls.Config{InsecureSkipVerify: true, ServerName: brokerHost})
	if err := tc.HandshakeContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := e.proxy.OpenTunnels(); n != 1 {
		t.Fatalf("OpenTunnels = %d, want 1", n)
	}
	r := rawProxyRequest(t, e.addr, "CONNECT "+brokerHost+":443 HTTP/1.1\r\nHost: "+brokerHost+":443\r\n\r\n")
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second CONNECT: %d, want 503 too_many_tunnels", r.StatusCode)
	}
}

type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func TestProxyAuthUsersCannotReachPrivateAddresses(t *testing.T) {
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	creds := "Proxy-Authorization: Basic YWxpY2U6cHc=\r\n" // alice:pw
	for _, allow := range []bool{false, true} {
		e := newTestEnv(t, func(o *Options) {
			o.Users = map[string]auth.Secret{"alice": "pw"}
			o.AllowPrivate = allow
		})
		for _, host := range []string{target.Addr().String(), "localhost:" + strings.Split(target.Addr().String(), ":")[1]} {
			r := rawProxyRequest(t, e.addr, "CONNECT "+host+" HTTP/1.1\r\nHost: "+host+"\r\n"+creds+"\r\n")
			if want := map[bool]int{false: 403, true: 200}[allow]; r.StatusCode != want {
				t.Errorf("allow_private_networks=%v CONNECT %s: %d, want %d", allow, host, r.StatusCode, want)
			}
		}
	}
}

func TestPrivateIP(t *testing.T) {
	for s, want := range map[string]bool{
		"127.0.0.1": true, "10.1.2.3": true, "192.168.0.1": true, "172.16.0.1": true, "169.254.169.254": true,
		"::1": true, "fd00::1": true, "fe80::1": true, "0.0.0.0": true, "100.64.0.1": true, "::ffff:127.0.0.1": true,
		"8.8.8.8": false, "2606:4700::1111": false,
	} {
		if got := privateIP(netip.MustParseAddr(s)); got != want {
			t.Errorf("privateIP(%s) = %v, want %v", s, got, want)
		}
	}
}

// interactiveBroker is a fakeBroker with a browser login.
type interactiveBroker struct{ fakeBroker }

func (interactiveBroker) AuthURL(state, redirectURI string) string {
	return "https://consent.example-broker.test/auth?state=" + url.QueryEscape(state)
}
func (interactiveBroker) Exchange(context.Context, string, url.Values) (*auth.Token, error) {
	return &auth.Token{Access: "tok-browser", Expiry: time.Now().Add(time.Hour)}, nil
}
func (interactiveBroker) NeedsBrowser() bool { return true }

func TestLoginCannotBeStartedOrBlockedByAnotherSite(t *testing.T) {
	e := newTestEnv(t, func(o *Options) {
		o.Accounts = append(o.Accounts, &Account{Name: "pf", Type: "fake", Hosts: []string{"pf.example-broker.test"},
			Broker: interactiveBroker{}, Source: &memSource{}, RedirectURI: "http://127.0.0.1/callback/pf"})
	})
	get := func(site string) *http.Response {
		hdr := ""
		if site != "" {
			hdr = "Sec-Fetch-Site: " + site + "\r\n"
		}
		return rawProxyRequest(t, e.addr, "GET /login/pf HTTP/1.1\r\nHost: "+e.addr+"\r\n"+hdr+"\r\n")
	}
	for _, site := range []string{"cross-site", "same-site", "CROSS-SITE"} {
		if r := get(site); r.StatusCode != http.StatusForbidden {
			t.Errorf("Sec-Fetch-Site %s: %d, want 403", site, r.StatusCode)
		}
	}
	// However many logins were started, the newest state is always
	// accepted and the oldest beyond the cap are dropped.
	var states []string
	for i := range 3 * maxPendingLogins {
		site := []string{"", "none", "same-origin"}[i%3]
		r := get(site)
		if r.StatusCode != http.StatusFound {
			t.Fatalf("login %d (Sec-Fetch-Site %q): %d, want 302", i, site, r.StatusCode)
		}
		u, err := url.Parse(r.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, u.Query().Get("state"))
	}
	if !e.proxy.logins.pending.take("pf", states[len(states)-1]) {
		t.Fatal("the newest login state was not accepted")
	}
	if e.proxy.logins.pending.take("pf", states[0]) {
		t.Fatal("the oldest pending login survived past the cap")
	}
}

// Under [proxy_auth], a client without credentials gets its 407 at once
// and the connection is closed: the proxy never waits for its body.
func TestUnauthenticatedBodyIsNotAwaited(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.Users = map[string]auth.Secret{"alice": "pw"} })
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "POST https://%s/orders HTTP/1.1\r\nHost: %s\r\nContent-Length: 100000\r\n\r\n{", brokerHost, brokerHost)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusProxyAuthRequired || !resp.Close {
		t.Fatalf("status %d close %v, want 407 and Connection: close", resp.StatusCode, resp.Close)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the 407: %v, want the connection closed", err)
	}
}

// dialAccept dials ln and returns both ends of the connection, closed when
// the test ends.
func dialAccept(t *testing.T, ln net.Listener) (client, server net.Conn) {
	t.Helper()
	c, err := net.Dial(ln.Addr().Network(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// loopbackListeners returns a TCP listener on 127.0.0.1 and, where this
// machine has IPv6 loopback, one on [::1], by address; closed when the test
// ends.
func loopbackListeners(t *testing.T) map[string]net.Listener {
	t.Helper()
	out := map[string]net.Listener{}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			if addr == "[::1]:0" {
				continue // no IPv6 loopback here
			}
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		out[addr] = ln
	}
	return out
}
