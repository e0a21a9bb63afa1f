package tradovate_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/authtest"
	"github.com/authproxy/authproxy/auth/tradovate"
	"github.com/authproxy/authproxy/internal/fakebroker/fakeca"
	fake "github.com/authproxy/authproxy/internal/fakebroker/tradovate"
)

type clock = authtest.Clock

// Credentials shared by the tests.
const (
	testUser     = "apiuser"
	testPassword = "pw-Secret-123"
	testAppID    = "authproxy-test"
	testVersion  = "1.0"
	testCID      = "8123"
	testSec      = "sec-f00dfeed-0123"
	testDevice   = "3b5e0c5e-7d5c-4e0b-9a3c-1d2e3f405162"
	testClientID = "4321"
	testClientSc = "client-secret-abcdef"
)

func newClock() *clock { return authtest.Fixed(time.Now()) }

// world is a fake Tradovate on real TLS and clients that reach every
// Tradovate host name there.
type world struct {
	fake   *fake.Fake
	client *auth.HTTPClient
	hc     *http.Client // plain client for API calls, no redirects followed
}

func fakeOptions(now func() time.Time) fake.Options {
	return fake.Options{
		Username: testUser, Password: testPassword, AppID: testAppID, AppVersion: testVersion,
		CID: testCID, Sec: testSec, DeviceID: testDevice,
		ClientID: testClientID, ClientSecret: testClientSc,
		Now: now,
	}
}

// serve starts h for every Tradovate host name and returns an upstream
// client and a plain HTTP client that reach it.
func serve(t *testing.T, h http.Handler) (*auth.HTTPClient, *http.Client) {
	t.Helper()
	ca, err := fakeca.New()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Serve(h, fake.Hosts()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, srv.Addr)
		},
		TLSClientConfig:   &tls.Config{RootCAs: ca.CertPool(), MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	client := auth.NewHTTPClient(tr, nil, auth.RetryOptions{WaitMin: 10 * time.Millisecond, WaitMax: 50 * time.Millisecond})
	hc := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return client, hc
}

func startWorld(t *testing.T, opts fake.Options) *world {
	t.Helper()
	w := &world{fake: fake.New(opts)}
	w.client, w.hc = serve(t, w.fake)
	return w
}

func credConfig() tradovate.Config {
	return tradovate.Config{
		Account: "tv", Environment: "demo", Username: testUser, Password: testPassword,
		AppID: testAppID, AppVersion: testVersion, CID: testCID, Sec: testSec, DeviceID: testDevice,
	}
}

func (w *world) broker(t *testing.T, cfg tradovate.Config, now func() time.Time) *tradovate.Broker {
	t.Helper()
	b, err := tradovate.New(cfg, w.client, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// call sends GET https://host/path with t injected by b and returns the
// status.
func (w *world) call(t *testing.T, b auth.Broker, tok *auth.Token, host, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+host+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer client-supplied")
	if err := b.Inject(req, tok); err != nil {
		t.Fatal(err)
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func ctxTimeoutCancel(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx, cancel
}
