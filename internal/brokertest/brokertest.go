// Package brokertest holds the set-up the broker packages' tests share: a
// fake broker behind a fresh fake CA, and an auth.HTTPClient that reaches
// it and keeps its logs. Production code never imports it.
package brokertest

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/authtest"
	"github.com/authproxy/authproxy/internal/fakebroker/fakeca"
)

// Env is one test's fake broker and the client that reaches it.
type Env struct {
	Srv    *fakeca.Server      // serves the fake on its hosts
	Clock  *authtest.Clock     // the fake's and the broker's clock
	Tr     *http.Transport     // trusts Srv's CA and dials Srv for its hosts
	Client *auth.HTTPClient    // over Tr, with retry waits of 5 to 20 ms
	Logs   *authtest.LogBuffer // everything Logger wrote
	Logger *slog.Logger        // debug-level text into Logs
}

// Serve serves h (a fake broker on clock's time) on hosts behind a new
// fake CA until the test ends, and returns the Env that reaches it.
func Serve(t testing.TB, clock *authtest.Clock, h http.Handler, hosts ...string) Env {
	t.Helper()
	ca, err := fakeca.New()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Serve(h, hosts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	e := Env{Srv: srv, Clock: clock, Tr: srv.Transport(), Logs: &authtest.LogBuffer{}}
	t.Cleanup(e.Tr.CloseIdleConnections)
	e.Logger = slog.New(slog.NewTextHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.Client = auth.NewHTTPClient(e.Tr, e.Logger, auth.RetryOptions{WaitMin: 5 * time.Millisecond, WaitMax: 20 * time.Millisecond})
	return e
}

// Callback plays the person's browser: it opens authURL through tr, wants
// the page (named page in failures) to redirect with 302 Found to
// redirectURI, and returns the callback's query.
func Callback(t testing.TB, tr http.RoundTripper, page, authURL, redirectURI string) url.Values {
	t.Helper()
	c := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, authURL, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("%s: HTTP %d: %s", page, resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		t.Fatalf("redirected to %s, want %s", got, redirectURI)
	}
	return loc.Query()
}

// AuthKeys counts the header keys that spell Authorization in any case.
func AuthKeys(h http.Header) int {
	n := 0
	for k := range h {
		if strings.EqualFold(k, "Authorization") {
			n++
		}
	}
	return n
}

// Do serves one request to h, a fake, without a network: method target
// with body and the headers in h, and returns the recorded answer.
func Do(h http.Handler, method, target, body string, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}
