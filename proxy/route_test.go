package proxy

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/authproxy/authproxy/auth"
)

type routeBroker struct{ fakeBroker }

func (routeBroker) UpstreamHost(host string, _ *auth.Token) string {
	if host == brokerHost {
		return "home." + brokerHost
	}
	return host
}

// TestRouteToTheTokensHost: a broker that names another of its hosts for
// the token (5paisa's RedirectServer) gets the request there, with a
// same-origin Origin following it; a foreign Origin is refused before.
func TestRouteToTheTokensHost(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	e := newTestEnv(t, func(o *Options) {
		o.Accounts[0].Broker = routeBroker{}
		o.Transport = roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			seen = append(seen, r.URL.Host+" "+r.Host+" "+r.Header.Get("Origin"))
			mu.Unlock()
			return &http.Response{StatusCode: 200, Header: http.Header{}, Request: r, ProtoMajor: 1, ProtoMinor: 1,
				Body: io.NopCloser(strings.NewReader("ok")), ContentLength: 2}, nil
		})
	})
	e.do(t, "GET", "/feed", "", map[string]string{"Origin": "https://" + brokerHost})
	// A page of another site gets nothing, wherever the token would send it.
	if resp, body := e.do(t, "GET", "/feed", "", map[string]string{"Origin": "https://elsewhere.example"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign Origin: %d %s, want 403 forbidden", resp.StatusCode, body)
	}
	mu.Lock()
	defer mu.Unlock()
	home := "home." + brokerHost
	want := []string{home + " " + home + " https://" + home}
	if strings.Join(seen, "|") != strings.Join(want, "|") {
		t.Fatalf("broker saw %q, want %q", seen, want)
	}
}
