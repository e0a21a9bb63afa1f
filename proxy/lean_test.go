package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// leanServer is an HTTP/1.1 TLS origin counting the connections it accepts.
func leanServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *leanTransport, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	var d net.Dialer
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "example.com"},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, srv.Listener.Addr().String())
		},
		ResponseHeaderTimeout: 10 * time.Second,
	}
	lt := newLeanTransport(tr)
	if lt == nil {
		t.Fatal("newLeanTransport refused an HTTP/1.1 transport")
	}
	t.Cleanup(lt.close)
	return srv, lt, &conns
}

func leanDo(t *testing.T, lt *leanTransport, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "https://broker.test"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body = http.NoBody
	}
	resp, err := lt.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, path, err)
	}
	return resp.StatusCode, string(data)
}

func TestLeanTransportReusesConnection(t *testing.T) {
	_, lt, conns := leanServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/chunked":
			w.Write([]byte("a"))
			w.(http.Flusher).Flush()
			w.Write([]byte("b"))
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Write(append([]byte(r.Method+" "+r.Host+" "), b...))
		}
	})
	for i := range 5 {
		if code, got := leanDo(t, lt, "POST", "/x", "body"); code != 200 || got != "POST broker.test body" {
			t.Fatalf("request %d: %d %q", i, code, got)
		}
		if _, got := leanDo(t, lt, "GET", "/chunked", ""); got != "ab" {
			t.Fatalf("chunked: %q", got)
		}
		if code, _ := leanDo(t, lt, "GET", "/empty", ""); code != http.StatusNoContent {
			t.Fatalf("empty: %d", code)
		}
		if code, got := leanDo(t, lt, "HEAD", "/x", ""); code != 200 || got != "" {
			t.Fatalf("HEAD: %d %q", code, got)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("the origin accepted %d connections, want 1 (kept alive)", n)
	}
}

func TestLeanTransportBrokerClosedIdleConnection(t *testing.T) {
	srv, lt, conns := leanServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})
	leanDo(t, lt, "POST", "/x", "one")
	srv.CloseClientConnections()
	// Wait for the FIN to reach the pooled connection (no timing assertion:
	// a connection whose FIN is late fails the POST below, which is the
	// point of the test).
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		lt.mu.Lock()
		list := lt.idle["broker.test:443"]
		alive := len(list) == 1 && connAlive(list[0].conn.NetConn(), 0)
		lt.mu.Unlock()
		if !alive {
			break
		}
	}
	// A POST is not replayable: it must not be sent on the dead connection.
	if code, got := leanDo(t, lt, "POST", "/x", "two"); code != 200 || got != "two" {
		t.Fatalf("after the broker closed the idle connection: %d %q", code, got)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("the origin accepted %d connections, want 2", n)
	}
}

func TestLeanTransportUnreadBodyClosesConnection(t *testing.T) {
	_, lt, conns := leanServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 64<<10)))
	})
	req, _ := http.NewRequest("GET", "https://broker.test/big", http.NoBody)
	resp, err := lt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // before its end: the connection cannot be reused
	lt.mu.Lock()
	n := len(lt.idle["broker.test:443"])
	lt.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d pooled connections after an unread body, want 0", n)
	}
	leanDo(t, lt, "GET", "/big", "")
	if n := conns.Load(); n != 2 {
		t.Errorf("the origin accepted %d connections, want 2", n)
	}
}

func TestLeanTransportCancel(t *testing.T) {
	release := make(chan struct{})
	_, lt, _ := leanServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://broker.test/slow", http.NoBody)
	errc := make(chan error, 1)
	go func() {
		resp, err := lt.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("RoundTrip after cancel: %v, want context.Canceled", err)
	}
}

func TestLeanableFallsBack(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*http.Request)
		want bool
	}{
		{"plain GET", func(*http.Request) {}, true},
		{"websocket", func(r *http.Request) {
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", "websocket")
		}, false},
		{"streamed body", func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader("x"))
			r.ContentLength = -1
		}, false},
		{"http", func(r *http.Request) { r.URL.Scheme = "http" }, false},
	} {
		req, _ := http.NewRequest("GET", "https://broker.test/", http.NoBody)
		tc.mod(req)
		if got := leanable(req); got != tc.want {
			t.Errorf("%s: leanable = %v, want %v", tc.name, got, tc.want)
		}
	}
	if newLeanTransport(&http.Transport{ForceAttemptHTTP2: true, DialContext: (&net.Dialer{}).DialContext}) != nil {
		t.Error("an HTTP/2 transport must stay http.Transport")
	}
}
