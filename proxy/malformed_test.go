package proxy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// mitmConn opens a CONNECT tunnel to the broker host and completes TLS with
// the proxy's leaf, returning a raw connection for hand-written requests.
func (e *testEnv) mitmConn(t *testing.T) *tls.Conn {
	t.Helper()
	raw, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(raw, "CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n", brokerHost, brokerHost)
	br := bufio.NewReader(raw)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", err, resp)
	}
	roots := x509.NewCertPool()
	roots.AddCert(e.proxy.opts.CA.(interface{ Certificate() *x509.Certificate }).Certificate())
	tc := tls.Client(raw, &tls.Config{ServerName: brokerHost, RootCAs: roots, NextProtos: []string{"http/1.1"}})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return tc
}

func TestMalformedRequestsGet4xx(t *testing.T) {
	cases := []struct {
		name    string
		request string
		want    int
	}{
		{"bare LF in a header value", "GET /x HTTP/1.1\r\nHost: " + brokerHost + "\r\nX-A: a\nb\r\n\r\n", 400},
		{"CR in a header value", "GET /x HTTP/1.1\r\nHost: " + brokerHost + "\r\nX-A: a\rb\r\n\r\n", 400},
		{"huge header", "GET /x HTTP/1.1\r\nHost: " + brokerHost + "\r\nX-Big: " + strings.Repeat("a", 200<<10) + "\r\n\r\n", 431},
		{"absurd content length", "POST /x HTTP/1.1\r\nHost: " + brokerHost + "\r\nContent-Length: 99999999999\r\n\r\n", 413},
		{"garbage request line", "HELLO\r\n\r\n", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, nil)
			c := e.mitmConn(t)
			defer c.Close()
			if _, err := c.Write([]byte(tc.request)); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if n := len(e.up.seen()); n != 0 {
				t.Fatalf("%d requests were forwarded", n)
			}
		})
	}
}
