package proxy

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

type followBroker struct{ fakeBroker }

func (followBroker) FollowRedirect(to *url.URL) bool { return to.Hostname() == "org.example.com" }

// TestFollowBrokerRedirect: a 307 to another of the broker's hosts is
// followed inside the proxy with the same token; any other redirect reaches
// the client.
func TestFollowBrokerRedirect(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	e := newTestEnv(t, func(o *Options) {
		o.Accounts[0].Broker = followBroker{}
		o.Transport = roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			var body []byte
			if r.Body != nil {
				body, _ = io.ReadAll(r.Body)
			}
			mu.Lock()
			seen = append(seen, r.URL.Host+r.URL.Path+" "+r.Header.Get("Authorization")+" "+string(body))
			mu.Unlock()
			resp := &http.Response{StatusCode: 200, Header: http.Header{}, Request: r, ProtoMajor: 1, ProtoMinor: 1,
				Body: io.NopCloser(strings.NewReader("done " + r.URL.Host)), ContentLength: -1}
			switch r.URL.Path {
			case "/moved":
				resp.StatusCode = http.StatusTemporaryRedirect
				resp.Header.Set("Location", "https://org.example.com/v1/order")
			case "/away":
				resp.StatusCode = http.StatusTemporaryRedirect
				resp.Header.Set("Location", "https://evil.example/steal")
			}
			return resp, nil
		})
	})
	resp, body := e.do(t, "POST", "/moved", `{"q":1}`, nil)
	if resp.StatusCode != 200 || body != "done org.example.com" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	mu.Lock()
	got := append([]string(nil), seen...)
	mu.Unlock()
	if len(got) != 2 || got[1] != `org.example.com/v1/order Bearer tok-1 {"q":1}` {
		t.Fatalf("broker saw %q", got)
	}
	if n := e.src.logins.Load(); n != 1 {
		t.Fatalf("logins = %d, want 1 (same session)", n)
	}
	e.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ = e.do(t, "GET", "/away", "", nil)
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("redirect to a foreign host: %d, want the 307 passed on", resp.StatusCode)
	}
}
