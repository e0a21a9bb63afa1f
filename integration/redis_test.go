package integration

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authproxy/authproxy/auth/redisstore/redistest"
	tvfake "github.com/authproxy/authproxy/internal/fakebroker/tradovate"
)

// Credentials of the shared Tradovate account (this file's own, so that it
// does not depend on another test file's constants).
const (
	rsUser     = "desk-user"
	rsPassword = "rs-Pass-44721"
	rsAppID    = "authproxy-desk"
	rsSec      = "rs-sec-0c1d2e3f4a"
	rsDevice   = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"
	rsRedisPW  = "redis-Desk-pw-8e7d"
	rsAccount  = "tv"
	rsListURL  = "https://" + tvfake.HostDemo + "/v1/account/list"
)

const rsConfig = `[store]
kind = "redis"
url = "${RS_REDIS_URL}"
key = "${RS_STORE_KEY}"

[brokers.tv]
type = "tradovate"
environment = "demo"
hosts = ["demo.tradovateapi.com", "md.tradovateapi.com"]
username = "${RS_USER}"
password = "${RS_PASSWORD}"
app_id = "${RS_APP_ID}"
app_version = "1.0"
cid = "8123"
sec = "${RS_SEC}"
device_id = "` + rsDevice + `"

[limits]
refresh_margin = "1s"
`

// loginGate delays Tradovate's login endpoint while delay is set, and does
// not pass on a login whose client went away meanwhile (a killed proxy).
type loginGate struct {
	next    http.Handler
	delay   atomic.Int64 // nanoseconds
	arrived chan struct{}
	aborted atomic.Int64
}

func (g *loginGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if d := time.Duration(g.delay.Load()); d > 0 && strings.HasSuffix(strings.ToLower(r.URL.Path), "/auth/accesstokenrequest") {
		select {
		case g.arrived <- struct{}{}:
		default:
		}
		// net/http notices a client that went away only once the request
		// body has been read to its end: read it first.
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			g.aborted.Add(1)
			return
		}
	}
	g.next.ServeHTTP(w, r)
}

// rsClient is a Go client configured from `authproxy env` for one proxy.
type rsClient struct {
	p    *proc
	http *http.Client
}

func newRSClient(t *testing.T, w *world, cfg string, p *proc) *rsClient {
	t.Helper()
	vars := map[string]string{}
	for _, kv := range w.clientEnv(cfg, p) {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	proxyURL, err := url.Parse(vars["HTTPS_PROXY"])
	if err != nil || proxyURL.Host == "" {
		t.Fatalf("HTTPS_PROXY from authproxy env = %q", vars["HTTPS_PROXY"])
	}
	pem, err := os.ReadFile(vars["SSL_CERT_FILE"])
	if err != nil {
		t.Fatalf("the CA bundle from authproxy env: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("the CA bundle holds no certificate")
	}
	tr := &http.Transport{
		Proxy:               http.ProxyURL(proxyURL),
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		MaxIdleConnsPerHost: 64,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &rsClient{p: p, http: &http.Client{Transport: tr, Timeout: 45 * time.Second}}
}

// get fetches u through the proxy; it returns the status or an error.
func (c *rsClient) get(u string) (int, error) {
	resp, err := c.http.Get(u)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// status reads the proxy's /status for the account.
func (c *rsClient) status() (state, lastError string, err error) {
	resp, err := http.Get("http://" + c.p.addr + "/status")
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	var rep struct {
		Accounts []struct {
			Name      string `json:"name"`
			State     string `json:"state"`
			LastError string `json:"last_error"`
		} `json:"accounts"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return "", "", err
	}
	for _, a := range rep.Accounts {
		if a.Name == rsAccount {
			return a.State, a.LastError, nil
		}
	}
	return "", "", fmt.Errorf("no account %q in /status", rsAccount)
}

// traffic sends a request every interval through every client until stop
// is closed, counting results.
type traffic struct {
	wg       sync.WaitGroup
	stop     chan struct{}
	ok, fail atomic.Int64
	mu       sync.Mutex
	errs     []string
}

func startTraffic(clients []*rsClient, interval time.Duration) *traffic {
	tr := &traffic{stop: make(chan struct{})}
	for _, c := range clients {
		tr.wg.Go(func() {
			for n := 0; n < 10000; n++ {
				select {
				case <-tr.stop:
					return
				case <-time.After(interval):
				}
				code, err := c.get(rsListURL)
				if err == nil && code == http.StatusOK {
					tr.ok.Add(1)
					continue
				}
				tr.fail.Add(1)
				tr.mu.Lock()
				if len(tr.errs) < 10 {
					tr.errs = append(tr.errs, fmt.Sprintf("via %s: %d %v", c.p.addr, code, err))
				}
				tr.mu.Unlock()
			}
		})
	}
	return tr
}

func (tr *traffic) end() (ok, fail int64, errs []string) {
	close(tr.stop)
	tr.wg.Wait()
	return tr.ok.Load(), tr.fail.Load(), tr.errs
}

// TestRedisSharedStore: three authproxy processes (own state dirs) share one
// Redis and one strict fake Tradovate (two sessions per user). 150 cold
// requests spread over them open exactly one session; renewals happen once
// per period across the three; Redis stopped and restarted mid-run fails no
// request; a proxy killed mid-login holds the others up no longer than its
// lease; Redis never holds a token in the clear.
func TestRedisSharedStore(t *testing.T) {
	needIntegration(t)
	t.Parallel()
	started := time.Now()
	rdb := redistest.Start(t, redistest.Options{Password: rsRedisPW})
	raw := redis.NewClient(&redis.Options{Addr: rdb.Addr(), Password: rsRedisPW, DisableIdentity: true})
	defer raw.Close()

	w := newWorld(t)
	fake := tvfake.New(tvfake.Options{
		Username: rsUser, Password: rsPassword, AppID: rsAppID, AppVersion: "1.0", CID: "8123",
		Sec: rsSec, DeviceID: rsDevice, TokenTTL: 6 * time.Second,
	})
	gate := &loginGate{next: fake, arrived: make(chan struct{}, 1)}
	w.serve(gate, tvfake.Hosts()...)
	keyBytes := make([]byte, 32)
	_, _ = rand.Read(keyBytes)
	storeKey := base64.StdEncoding.EncodeToString(keyBytes)
	w.env["RS_REDIS_URL"] = rdb.URL()
	w.env["RS_STORE_KEY"] = storeKey
	w.env["RS_USER"] = rsUser
	w.env["RS_PASSWORD"] = rsPassword
	w.env["RS_APP_ID"] = rsAppID
	w.env["RS_SEC"] = rsSec

	var procs []*proc
	var clients []*rsClient
	for i := range 3 {
		w.stateDir = filepath.Join(w.dir, fmt.Sprintf("state-%d", i))
		cfg := filepath.Join(w.dir, fmt.Sprintf("rules-%d.toml", i))
		if err := os.Rename(w.writeConfig(rsConfig), cfg); err != nil {
			t.Fatal(err)
		}
		p := w.start(cfg)
		procs = append(procs, p)
		clients = append(clients, newRSClient(t, w, cfg, p))
	}
	outputs := func() string {
		var b strings.Builder
		for i, p := range procs {
			fmt.Fprintf(&b, "--- proxy %d (%s)\n%s", i, p.addr, p.Output())
		}
		return b.String()
	}

	// 1. 150 concurrent cold requests spread over the three: one login.
	gate.delay.Store(int64(time.Second)) // a slow login, so all of them wait for it
	var wg sync.WaitGroup
	codes := make([]int, 150)
	errs := make([]error, 150)
	for i := range 150 {
		wg.Go(func() { codes[i], errs[i] = clients[i%3].get(rsListURL) })
	}
	wg.Wait()
	gate.delay.Store(0)
	for i := range 150 {
		if errs[i] != nil || codes[i] != http.StatusOK {
			t.Fatalf("cold request %d via proxy %d: %d %v\n%s", i, i%3, codes[i], errs[i], outputs())
		}
	}
	if c := fake.Counters(); c.Sessions != 1 || c.LoginAttempts != 1 {
		t.Fatalf("after 150 cold requests over 3 proxies: %+v; want exactly 1 login and 1 session\n%s", c, outputs())
	}

	// Redis holds the token encrypted: none of the tokens the fake saw,
	// nor any credential, is in the raw value.
	ctx := t.Context()
	checkRaw := func(when string) {
		t.Helper()
		val, err := raw.Get(ctx, "authproxy:token:"+rsAccount).Bytes()
		if err != nil {
			t.Fatalf("%s: raw GET of the token: %v", when, err)
		}
		for _, r := range fake.Requests() {
			tok := strings.TrimPrefix(r.Authorization, "Bearer ")
			if len(tok) >= 8 && strings.Contains(string(val), tok) {
				t.Fatalf("%s: Redis holds a token in the clear", when)
			}
		}
		for _, s := range []string{rsPassword, rsSec, "accessToken", "Bearer"} {
			if strings.Contains(string(val), s) {
				t.Fatalf("%s: the raw Redis value contains %q", when, s)
			}
		}
	}
	checkRaw("after the first login")

	// 2. Steady traffic through all three over several 6s token lifetimes
	// (renewed at their 3s midpoint): one renewal per period in all.
	before := fake.Counters()
	start := time.Now()
	tr := startTraffic(clients, 250*time.Millisecond)
	time.Sleep(10 * time.Second)
	ok, fail, failures := tr.end()
	elapsed := time.Since(start)
	after := fake.Counters()
	periods := int(elapsed / (3 * time.Second))
	renewals := after.Renewals - before.Renewals
	if fail != 0 || ok < 60 {
		t.Fatalf("steady traffic: %d ok, %d failed %v\n%s", ok, fail, failures, outputs())
	}
	if renewals < periods-1 || renewals > periods+1 || after.Sessions != 1 || after.APIRejected != 0 {
		t.Fatalf("in %s (%d renewal periods) across 3 proxies: %d renewals, counters %+v; want one renewal per period, 1 session, no rejected call\n%s",
			elapsed.Round(time.Millisecond), periods, renewals, after, outputs())
	}
	checkRaw("after the renewals")

	// 3. Redis stops and comes back (empty) under traffic: no request
	// fails, the proxies say so meanwhile, and sharing resumes.
	tr = startTraffic(clients, 200*time.Millisecond)
	rdb.Stop()
	sawStoreError := false
	for deadline := time.Now().Add(2500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if state, lastErr, err := clients[1].status(); err == nil && state == "ready" && strings.Contains(lastErr, "token store") {
			sawStoreError = true
		}
	}
	rdb.Restart()
	if !tvWaitFor(10*time.Second, func() bool { return raw.Exists(ctx, "authproxy:token:"+rsAccount).Val() == 1 }) {
		t.Fatalf("the token was not shared again within 10s of Redis's restart\n%s", outputs())
	}
	time.Sleep(2 * time.Second)
	ok, fail, failures = tr.end()
	if fail != 0 || ok < 30 {
		t.Fatalf("traffic across the Redis outage: %d ok, %d failed %v\n%s", ok, fail, failures, outputs())
	}
	if !sawStoreError {
		t.Errorf("/status never reported the unreachable token store while Redis was down\n%s", outputs())
	}
	if c := fake.Counters(); c.Sessions != 1 || c.APIRejected != 0 {
		t.Fatalf("after the Redis outage: %+v; want still 1 session and no rejected call\n%s", c, outputs())
	}
	checkRaw("after the restart")

	// Long tokens from here on, so that no renewal interferes below; wait
	// until the three share one.
	fake.SetTokenTTL(2 * time.Minute)
	mark := fake.Counters().Renewals
	if !tvWaitFor(8*time.Second, func() bool { return fake.Counters().Renewals > mark }) {
		t.Fatalf("no renewal after the TTL change\n%s", outputs())
	}
	time.Sleep(1500 * time.Millisecond)

	// 4. Every session is closed elsewhere; proxy 0 starts the new login
	// under the lease and is killed in the middle of it. The other two
	// get a token within the lease's 10s, with one new session.
	select {
	case <-gate.arrived: // phase 1's login
	default:
	}
	before = fake.Counters()
	gate.delay.Store(int64(30 * time.Second))
	fake.CloseAllSessions()
	go func() { _, _ = clients[0].get(rsListURL) }()
	select {
	case <-gate.arrived:
	case <-time.After(15 * time.Second):
		t.Fatalf("proxy 0 never started its login\n%s", outputs())
	}
	_ = procs[0].cmd.Process.Kill()
	<-procs[0].done
	gate.delay.Store(0)
	killed := time.Now()
	var got [2][10]int
	var gotErr [2][10]error
	for j := range 2 {
		for k := range 10 {
			wg.Go(func() {
				// A client waits at most [upstream] timeout (10s) for a
				// login, here the dead holder's lease and the new login:
				// past it `timeout`, and the script retries.
				for range 3 {
					got[j][k], gotErr[j][k] = clients[1+j].get(rsListURL)
					if got[j][k] != http.StatusGatewayTimeout {
						return
					}
				}
			})
		}
	}
	wg.Wait()
	took := time.Since(killed)
	for j := range 2 {
		for k := range 10 {
			if gotErr[j][k] != nil || got[j][k] != http.StatusOK {
				t.Fatalf("proxy %d after proxy 0 died mid-login: %d %v\n%s", 1+j, got[j][k], gotErr[j][k], outputs())
			}
		}
	}
	if took > 15*time.Second {
		t.Errorf("the survivors needed %s after the holder died; want about the 10s lease\n%s", took, outputs())
	}
	c := fake.Counters()
	if c.Sessions-before.Sessions != 1 || gate.aborted.Load() != 1 {
		t.Errorf("after the holder died: %d new sessions, %d aborted logins; want 1 and 1 (counters %+v)\n%s",
			c.Sessions-before.Sessions, gate.aborted.Load(), c, outputs())
	}
	checkRaw("after the takeover")

	secrets := []string{rsPassword, rsSec, rsRedisPW, storeKey}
	for _, r := range fake.Requests() {
		secrets = append(secrets, strings.TrimPrefix(r.Authorization, "Bearer "))
	}
	assertNoSecrets(t, "proxy output", outputs(), secrets...)
	if d := time.Since(started); d > 110*time.Second {
		t.Errorf("the test took %s; keep it under 2 minutes", d)
	}
}
