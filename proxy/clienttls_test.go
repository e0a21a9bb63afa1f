package proxy

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// A client that does not trust the local CA breaks off the handshake: the
// proxy logs it once per client address (with the fix), and counts every
// failure in /status, /metrics and on the dashboard.
func TestClientTLSFailureCounted(t *testing.T) {
	var logs syncBuf
	var e *testEnv
	status := func() StatusReport { return e.proxy.Status() }
	m := NewMetrics(status)
	d := NewDashboard(DashboardOptions{Status: status})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m)
	mux.Handle("/", d)
	e = newTestEnv(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		o.Extra = mux
		o.Listen = "127.0.0.1:8899"
	})
	proxyURL, _ := url.Parse("http://" + e.addr)
	untrusting := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL),
		TLSClientConfig: &tls.Config{}}, Timeout: 10 * time.Second} // system roots only
	for i := range 3 {
		if _, err := untrusting.Get("https://" + brokerHost + "/x"); err == nil {
			t.Fatalf("attempt %d: a client without the CA got through", i)
		}
		untrusting.CloseIdleConnections()
	}
	// The server side notes the failure after the client's alert: wait
	// (bounded) for all three.
	deadline := time.Now().Add(10 * time.Second)
	for e.proxy.Status().ClientTLSFailures < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	rep := e.proxy.Status()
	if rep.ClientTLSFailures != 3 || !strings.Contains(rep.LastClientTLSFailure, brokerHost) {
		t.Fatalf("status: %d failures, last %q", rep.ClientTLSFailures, rep.LastClientTLSFailure)
	}
	if n := strings.Count(logs.String(), "client TLS handshake failed"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "http://127.0.0.1:8899/ca.pem") {
		t.Errorf("log lacks the fix:\n%s", logs.String())
	}
	plain := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}
	for path, want := range map[string]string{"/metrics": "authproxy_client_tls_failures_total 3", "/": "3 client TLS handshakes failed"} {
		resp, err := plain.Get("http://" + e.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), want) {
			t.Errorf("%s lacks %q", path, want)
		}
	}
	// A trusting client still works.
	if resp, _ := e.do(t, "GET", "/ok", "", nil); resp.StatusCode != 200 {
		t.Errorf("trusting client: %d", resp.StatusCode)
	}
}
