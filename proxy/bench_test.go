package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
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
	"github.com/authproxy/authproxy/internal/fakebroker/fakeca"
)

// This file holds the hot-path micro-benchmarks (see BENCHMARKS.md) and the
// count-based check that steady-state traffic makes no broker logins.

const benchHost = "api.bench-broker.test"

// benchBroker issues long-lived tokens, counts its logins and injects a
// bearer header.
type benchBroker struct{ logins atomic.Int64 }

func (b *benchBroker) Login(context.Context) (*auth.Token, error) {
	n := b.logins.Add(1)
	now := time.Now()
	return &auth.Token{Access: auth.Secret("bench-token-" + string(rune('a'+n%26))), Expiry: now.Add(24 * time.Hour), Obtained: now}, nil
}

func (b *benchBroker) Inject(r *http.Request, t *auth.Token) error {
	r.Header.Del("Authorization")
	r.Header.Set("Authorization", "Bearer "+t.Access.Reveal())
	return nil
}

func (b *benchBroker) Rejected(resp *http.Response, _ func() []byte) bool {
	return resp.StatusCode == http.StatusUnauthorized
}

// benchCA is one CA for all benchmarks and tests in this file.
func benchCA(tb testing.TB) *certs.CA {
	tb.Helper()
	ca, err := certs.LoadOrCreate(tb.TempDir(), certs.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return ca
}

// benchMatchProxy has the accounts of a typical config: four brokers with
// their default hosts plus one wildcard account.
func benchMatchProxy(tb testing.TB) *Proxy {
	tb.Helper()
	hosts := [][]string{
		{"tradingorestapi.swastika.co.in"},
		{"demo.tradovateapi.com", "md.tradovateapi.com"},
		{"openapi.5paisa.com", "openfeed.5paisa.com", "aopenfeed.5paisa.com", "bopenfeed.5paisa.com"},
		{"trade.pocketful.in"},
		{"*.staging.example-broker.test"},
	}
	var accts []*Account
	for i, h := range hosts {
		accts = append(accts, &Account{Name: string(rune('a' + i)), Type: "fake", Hosts: h, Broker: &benchBroker{}})
	}
	p, err := New(Options{CA: benchCA(tb), Accounts: accts, Transport: benchCanned{}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

func BenchmarkMatchExact(b *testing.B) {
	p := benchMatchProxy(b)
	b.ReportAllocs()
	for b.Loop() {
		if len(p.match("openapi.5paisa.com")) != 1 {
			b.Fatal("no match")
		}
	}
}

func BenchmarkMatchWildcard(b *testing.B) {
	p := benchMatchProxy(b)
	b.ReportAllocs()
	for b.Loop() {
		if len(p.match("api.staging.example-broker.test")) != 1 {
			b.Fatal("no match")
		}
	}
}

func BenchmarkMatchMiss(b *testing.B) {
	p := benchMatchProxy(b)
	b.ReportAllocs()
	for b.Loop() {
		if len(p.match("pypi.org")) != 0 {
			b.Fatal("matched")
		}
	}
}

// BenchmarkIntercepts is the CONNECT decision with host normalisation
// (mixed case, trailing dot).
func BenchmarkIntercepts(b *testing.B) {
	p := benchMatchProxy(b)
	b.ReportAllocs()
	for b.Loop() {
		if !p.Intercepts("TradingoRestAPI.swastika.co.in.") {
			b.Fatal("not intercepted")
		}
	}
}

// benchCanned is an upstream that answers every request at once with a
// small JSON body, so the pipeline benchmark measures only the proxy.
type benchCanned struct{}

var benchReply = []byte(`{"StatusCode":200,"Message":"Success","IsError":false,"Result":{"Data":[]}}`)

func (benchCanned) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	if r.Header.Get("Authorization") == "" {
		return &http.Response{StatusCode: http.StatusUnauthorized, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	}
	return &http.Response{StatusCode: http.StatusOK, ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(benchReply)),
		ContentLength: int64(len(benchReply)), Request: r}, nil
}

// benchPipelineProxy is a proxy for benchHost with a warm auth.Cache.
func benchPipelineProxy(tb testing.TB) (*Proxy, *benchBroker) {
	tb.Helper()
	br := &benchBroker{}
	cache := auth.NewCache("bench", br, nil, auth.CacheOptions{})
	if _, err := cache.Token(context.Background()); err != nil {
		tb.Fatal(err)
	}
	p, err := New(Options{CA: benchCA(tb), Transport: benchCanned{},
		Accounts: []*Account{{Name: "bench", Type: "fake", Hosts: []string{benchHost}, Broker: br, Source: cache}}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p, br
}

// benchRecorder is a minimal ResponseWriter that keeps only the status.
type benchRecorder struct {
	h      http.Header
	status int
	n      int
}

func (r *benchRecorder) Header() http.Header         { return r.h }
func (r *benchRecorder) WriteHeader(s int)           { r.status = s }
func (r *benchRecorder) Write(b []byte) (int, error) { r.n += len(b); return len(b), nil }

// BenchmarkPipeline is one decrypted request through serveBroker, the
// ReverseProxy, token lookup, injection and response copy, with the network
// replaced by a canned upstream: the proxy's own per-request work.
func BenchmarkPipeline(b *testing.B) {
	p, br := benchPipelineProxy(b)
	body := []byte(`{"Uid":"GO11240","Exchange":"NSE","Segment":"E"}`)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/kb/OrderBook/GetOrderBookList", bytes.NewReader(body))
		req.Host = benchHost
		req.Header.Set("Content-Type", "application/json")
		w := &benchRecorder{h: http.Header{}}
		p.serveBroker(w, req, benchHost, "443", "", p.match(benchHost))
		if w.status != http.StatusOK && w.status != 0 {
			b.Fatalf("status %d", w.status)
		}
	}
	if n := br.logins.Load(); n != 1 {
		b.Fatalf("%d logins after warm-up, want none", n-1)
	}
}

// benchWorld is a real proxy (MITM over TLS, the verifying upstream
// transport built by NewTransport) in front of a TLS origin for benchHost.
type benchWorld struct {
	proxy   *Proxy
	broker  *benchBroker
	cache   *auth.Cache
	client  *http.Transport // keep-alive client through the proxy
	newConn func() *http.Transport
	ok, bad atomic.Int64
}

func newBenchWorld(t *testing.T) *benchWorld {
	t.Helper()
	w := &benchWorld{broker: &benchBroker{}}
	fca, err := fakeca.New()
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := fca.WriteCertFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w.cache = auth.NewCache("bench", w.broker, nil, auth.CacheOptions{})
	var (
		mu   sync.Mutex
		want string
	)
	srv, err := fca.Serve(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		exp := want
		mu.Unlock()
		if r.Header.Get("Authorization") != exp || len(r.Header.Values("Authorization")) != 1 {
			w.bad.Add(1)
			rw.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.ok.Add(1)
		_, _ = rw.Write(benchReply)
	}), benchHost)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	ca := benchCA(t)
	p, err := New(Options{CA: ca, Passthrough: true,
		Upstream: UpstreamOptions{CAFile: caFile, Resolve: map[string]string{benchHost + ":443": srv.Addr}, Timeout: 10 * time.Second},
		Accounts: []*Account{{Name: "bench", Type: "fake", Hosts: []string{benchHost}, Broker: w.broker, Source: w.cache}}})
	if err != nil {
		t.Fatal(err)
	}
	w.proxy = p
	front := httptest.NewServer(p)
	t.Cleanup(func() { front.Close(); p.Close() })

	// Warm-up: the first token, so the origin knows what to expect.
	tok, err := w.cache.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	want = "Bearer " + tok.Access.Reveal()
	mu.Unlock()

	proxyURL, _ := url.Parse(front.URL)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	mk := func() *http.Transport {
		return &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: roots},
			MaxIdleConnsPerHost: 16, ForceAttemptHTTP2: false}
	}
	w.client, w.newConn = mk(), mk
	t.Cleanup(w.client.CloseIdleConnections)
	return w
}

func benchDo(t *testing.T, tr *http.Transport, close bool) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "https://"+benchHost+"/api/quote", strings.NewReader(`{"sym":"INFY"}`))
	if err != nil {
		t.Error(err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer stale-client-token")
	req.Close = close
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Error(err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}
}

// TestSteadyStateMakesNoLogins: once a token is cached, API requests (kept
// alive, concurrent, on new connections, with Connection: close) cause no
// broker login at all. Counted, never timed.
func TestSteadyStateMakesNoLogins(t *testing.T) {
	w := newBenchWorld(t)
	if n := w.broker.logins.Load(); n != 1 {
		t.Fatalf("warm-up made %d logins, want 1", n)
	}
	const workers, perWorker = 8, 25
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWorker {
				benchDo(t, w.client, false)
			}
		}()
	}
	wg.Wait()
	for range 10 {
		tr := w.newConn()
		benchDo(t, tr, false)
		tr.CloseIdleConnections()
		benchDo(t, w.client, true)
	}
	const total = workers*perWorker + 20
	if got := w.ok.Load(); got != total || w.bad.Load() != 0 {
		t.Fatalf("origin: %d requests with the cached bearer, %d without; want %d and 0", got, w.bad.Load(), total)
	}
	if n := w.broker.logins.Load(); n != 1 {
		t.Fatalf("%d requests made %d broker logins after warm-up, want 0", total, n-1)
	}
	if st := w.cache.Status(); st.Logins != 1 || st.Refreshes != 0 || st.Rejections != 0 {
		t.Fatalf("cache status after steady traffic: logins %d refreshes %d rejections %d, want 1/0/0",
			st.Logins, st.Refreshes, st.Rejections)
	}
}
