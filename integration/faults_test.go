package integration

// The fault suite: fake brokers behind integration/fakes/faulty stall,
// reset, answer 5xx, 429 or garbage, and revoke tokens, while real clients
// use the built proxy. Each test logs one "GUARANTEE ok: ..." line per
// guarantee it proved (go test -v -run 'Fault' ./integration).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/integration/fakes/faulty"
	fake5p "github.com/authproxy/authproxy/internal/fakebroker/fivepaisa"
	"github.com/authproxy/authproxy/internal/fakebroker/pocketful"
	"github.com/authproxy/authproxy/internal/fakebroker/tradingo"
	tvfake "github.com/authproxy/authproxy/internal/fakebroker/tradovate"
)

// faultTimeout is [upstream] timeout in the fault suite: small, so that a
// stalled broker costs seconds.
const faultTimeout = 2 * time.Second

// serveFaulty serves h behind a fault injector for hosts.
func (w *world) serveFaulty(h http.Handler, hosts ...string) *faulty.Handler {
	w.t.Helper()
	fh := faulty.Wrap(h)
	w.serve(fh, hosts...)
	w.t.Cleanup(fh.Close) // runs before the server closes: stalls end first
	return fh
}

// writeFaultConfig is writeConfig with [upstream] timeout = faultTimeout.
func (w *world) writeFaultConfig(body string) string {
	w.t.Helper()
	path := w.writeConfig(body)
	data, err := os.ReadFile(path)
	if err != nil {
		w.t.Fatal(err)
	}
	const def = `timeout = "10s"`
	if !bytes.Contains(data, []byte(def)) {
		w.t.Fatalf("the harness config has no %s line to shorten:\n%s", def, data)
	}
	data = bytes.Replace(data, []byte(def), []byte(fmt.Sprintf("timeout = %q", faultTimeout.String())), 1)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		w.t.Fatal(err)
	}
	return path
}

// proxyError is the DESIGN.md error body.
type proxyError struct {
	Code, Account, Message, Hint string
}

// wantProxyError checks that res is the proxy's own JSON error with one of
// codes (header and body agreeing) for account, and returns it.
func wantProxyError(t *testing.T, what string, res curlResult, account string, codes ...string) proxyError {
	t.Helper()
	var body struct {
		Error proxyError `json:"error"`
	}
	if err := json.Unmarshal([]byte(res.Body), &body); err != nil {
		t.Fatalf("%s: the answer is not the proxy's JSON error (%d, %s): %q", what, res.Status, res.Err, res.Body)
	}
	e := body.Error
	ok := false
	for _, c := range codes {
		ok = ok || e.Code == c
	}
	if !ok || res.Header.Get("X-Authproxy-Error") != e.Code || e.Account != account || e.Message == "" {
		t.Fatalf("%s: got %d %q (header %q), want one of %v for account %q: %s", what, res.Status, e.Code,
			res.Header.Get("X-Authproxy-Error"), codes, account, res.Body)
	}
	wantStatus := map[string]int{"timeout": 504, "upstream_unreachable": 502, "login_failed": 502, "rate_limited": 429}[e.Code]
	if wantStatus != 0 && res.Status != wantStatus {
		t.Fatalf("%s: code %s came with HTTP %d, want %d", what, e.Code, res.Status, wantStatus)
	}
	if e.Code == "rate_limited" && res.Header.Get("Retry-After") == "" {
		t.Fatalf("%s: rate_limited without Retry-After", what)
	}
	return e
}

// guarantee logs a one-line summary of a guarantee when t passes.
func guarantee(t *testing.T, text string, faults ...string) {
	t.Helper()
	line := text
	if len(faults) > 0 {
		line += " (faults: " + strings.Join(faults, ",") + ")"
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("GUARANTEE FAILED: " + line)
			return
		}
		t.Log("GUARANTEE ok: " + line)
	})
}

// runConcurrently runs each case as a subtest, all at once. The fault
// suite's cases mostly wait (for a TOTP step, a token's lifetime), so they
// overlap whatever go test's -parallel is.
func runConcurrently[C any](t *testing.T, cases []C, name func(C) string, f func(*testing.T, C)) {
	t.Helper()
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(name(c), func(t *testing.T) { f(t, c) })
		}()
	}
	wg.Wait()
}

func faultName(fc faultCase) string { return fc.name }

// pollUntil calls f every 250ms until it returns true or d passes.
func pollUntil(d time.Duration, f func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if f() {
			return true
		}
		time.Sleep(250 * time.Millisecond)
	}
	return f()
}

// tgAllAuthenticated fails if the Tradingo fake ever saw an API request
// without a well-formed bearer token.
func tgAllAuthenticated(t *testing.T, fake *tradingo.Fake) {
	t.Helper()
	for i, r := range fake.Requests() {
		if !strings.HasPrefix(r.Authorization, "Bearer ey") || strings.Count(r.Authorization, "Bearer") != 1 {
			t.Errorf("API request %d (%s %s) reached Tradingo with Authorization %q", i, r.Method, r.Path, r.Authorization)
		}
	}
}

// faultCase is one broker fault and what the client may see.
type faultCase struct {
	name  string
	fault faulty.Fault
	codes []string
	// strict: the first request after the fault clears must succeed (no
	// lockout or failure hold applies).
	strict bool
}

// loginFaults are the faults a login endpoint suffers. A 429 is a lockout
// (rate_limited, Retry-After) and a garbled 200 a refused login, which the
// proxy holds for a few seconds before it tries again; the others clear at
// once.
func loginFaults() []faultCase {
	return []faultCase{
		{"stall", faulty.Stall(3 * faultTimeout), []string{"timeout"}, true},
		{"reset", faulty.Reset(), []string{"upstream_unreachable"}, true},
		// A 500 may have used the code: never resent. (A gateway's 502/503/504
		// means the endpoint never saw the request: resent with backoff, see
		// TestRealAccountFivepaisa.)
		{"5xx", faulty.Status(http.StatusInternalServerError), []string{"upstream_unreachable", "login_failed"}, true},
		{"429", faulty.Status(http.StatusTooManyRequests).With("Retry-After", "1"), []string{"rate_limited"}, false},
		{"garbage", faulty.Garbage(), []string{"login_failed", "upstream_unreachable"}, false},
	}
}

const tgOrderBody = `{"Uid":"` + tgClientCode + `"}`

func tgOrderBook(t *testing.T, env []string) curlResult {
	t.Helper()
	return curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", tgOrderBody, orderBookURL)
}

// TestFaultTradingoLogin: every kind of fault on Tradingo's TOTP login.
// The login spends a TOTP code, so it is sent exactly once per client
// request; the client gets the DESIGN.md error at once (bounded by
// [upstream] timeout), nothing is forwarded without a token, and after the
// broker recovers the same running proxy logs in and serves the request.
func TestFaultTradingoLogin(t *testing.T) {
	t.Parallel()
	var names []string
	for _, fc := range loginFaults() {
		names = append(names, fc.name)
	}
	guarantee(t, "Tradingo login faults: one attempt per TOTP code, DESIGN.md error, recovery without restart", names...)
	runConcurrently(t, loginFaults(), faultName, func(t *testing.T, fc faultCase) {
		w := newWorld(t)
		fake := tradingo.New(tradingo.Options{ClientCode: tgClientCode, MPIN: tgMPIN, TOTPSecret: tgTOTPSecret})
		fh := w.serveFaulty(fake, tgHost)
		w.env["TG_CLIENT_CODE"], w.env["TG_MPIN"], w.env["TG_TOTP_SECRET"] = tgClientCode, tgMPIN, tgTOTPSecret
		cfg := w.writeFaultConfig(tgAccount)
		p := w.start(cfg)
		env := w.clientEnv(cfg, p)

		fh.Fail(tradingo.LoginPath, 1, fc.fault)
		start := time.Now()
		res := tgOrderBook(t, env)
		took := time.Since(start)
		wantProxyError(t, fc.name, res, "tg", fc.codes...)
		if took > 2*faultTimeout+3*time.Second {
			t.Errorf("%s: the client waited %v", fc.name, took)
		}
		if n := fh.Hits(tradingo.LoginPath); n != 1 {
			t.Errorf("%s: %d login requests for one client request; a TOTP login is never retried", fc.name, n)
		}
		if n := len(fake.Requests()); n != 0 {
			t.Fatalf("%s: %d API requests reached Tradingo without a login", fc.name, n)
		}

		// Recovery: the fault is spent; the next login waits for a fresh
		// TOTP step (up to 30s) and succeeds. A client waits for it at most
		// [upstream] timeout (then `timeout`, the login going on), so poll.
		if !pollUntil(45*time.Second, func() bool {
			res := tgOrderBook(t, env)
			if res.Status != 200 && res.Header.Get("X-Authproxy-Error") != "timeout" && fc.strict {
				t.Errorf("%s: after recovery: %d %s", fc.name, res.Status, res.Body)
			}
			return res.Status == 200 && strings.Contains(res.Body, `"IsError":false`)
		}) {
			t.Fatalf("%s: no recovery within 45s\n%s", fc.name, p.Output())
		}
		if fake.Logins() != 1 || fake.LoginAttempts() != 1 {
			t.Errorf("%s: logins %d attempts %d, want 1 and 1", fc.name, fake.Logins(), fake.LoginAttempts())
		}
		tgAllAuthenticated(t, fake)
		assertNoSecrets(t, "proxy output", p.Output(), tgMPIN, tgTOTPSecret)
	})
}

// TestFaultTradovateRevokedThenLoginDown: the broker ends the session and
// its login endpoint is down. The rejected request is not handed to the
// client as the broker's 401 and nothing goes out without a token; the
// client gets the proxy's error, and once the login answers again the
// request succeeds on the same running proxy.
func TestFaultTradovateRevokedThenLoginDown(t *testing.T) {
	t.Parallel()
	guarantee(t, "a revoked token with the login down: no request forwarded without credentials, recovery without restart", "revoke", "5xx")
	const loginPath = "/v1/auth/accesstokenrequest"
	w := newWorld(t)
	fake := tvfake.New(tvfake.Options{Username: tvUser, Password: tvPassword, AppID: tvAppID, AppVersion: tvAppVersion,
		CID: tvCID, Sec: tvSec, DeviceID: tvDevice})
	fh := w.serveFaulty(fake, append(tvfake.Hosts(), tvOrgHost)...)
	w.env["TV_USER"], w.env["TV_PASSWORD"], w.env["TV_APP_ID"], w.env["TV_SEC"] = tvUser, tvPassword, tvAppID, tvSec
	cfg := w.writeFaultConfig(tvAccount)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)
	if res := curl(t, env, tvREST+"/v1/account/list"); res.Status != 200 {
		t.Fatalf("first request: %d %s\n%s", res.Status, res.Body, p.Output())
	}

	fake.CloseAllSessions()
	fh.Fail(loginPath, -1, faulty.Status(http.StatusBadGateway))
	// 502 is resent with backoff within the request; the client waits at
	// most [upstream] timeout for it (then `timeout`).
	wantProxyError(t, "revoked, login down", curl(t, env, tvREST+"/v1/account/list"), "tv", "upstream_unreachable", "login_failed", "timeout")
	if c := fake.Counters(); c.APICalls != 2 || c.APIRejected != 1 {
		t.Errorf("counters %+v: want the first call and the one rejected call only", c)
	}
	for range 3 { // still the proxy's answer; nothing unauthenticated goes out
		wantProxyError(t, "revoked, login down (again)", curl(t, env, tvMD+"/v1/md/getChart"), "tv", "upstream_unreachable", "login_failed", "timeout")
	}
	if c := fake.Counters(); c.APICalls != 2 {
		t.Errorf("with no valid token, %d requests reached the API", c.APICalls-2)
	}
	fh.Clear()
	if res := curl(t, env, tvREST+"/v1/account/list"); res.Status != 200 {
		t.Fatalf("after the login recovered: %d %s\n%s", res.Status, res.Body, p.Output())
	}
	for i, r := range fake.Requests() {
		if !strings.HasPrefix(r.Authorization, "Bearer ") || strings.Count(r.Authorization, "Bearer") != 1 {
			t.Errorf("API request %d (%s %s) reached Tradovate with Authorization %q", i, r.Method, r.Path, r.Authorization)
		}
	}
	if c := fake.Counters(); c.Sessions != 2 || c.APIRejected != 1 {
		t.Errorf("counters %+v, want 2 sessions and the one rejected call", c)
	}
}

// TestFaultTradovateLogin: faults on accesstokenrequest, which opens a
// session: never retried, the client gets the DESIGN.md error, and the
// proxy logs in once the broker is back.
func TestFaultTradovateLogin(t *testing.T) {
	t.Parallel()
	var names []string
	for _, fc := range loginFaults() {
		names = append(names, fc.name)
	}
	guarantee(t, "Tradovate login faults: a session request is never sent twice, DESIGN.md error, recovery without restart", names...)
	const loginPath = "/v1/auth/accesstokenrequest"
	runConcurrently(t, loginFaults(), faultName, func(t *testing.T, fc faultCase) {
		w := newWorld(t)
		opts := tvfake.Options{Username: tvUser, Password: tvPassword, AppID: tvAppID, AppVersion: tvAppVersion,
			CID: tvCID, Sec: tvSec, DeviceID: tvDevice}
		fake := tvfake.New(opts)
		fh := w.serveFaulty(fake, append(tvfake.Hosts(), tvOrgHost)...)
		w.env["TV_USER"], w.env["TV_PASSWORD"], w.env["TV_APP_ID"], w.env["TV_SEC"] = tvUser, tvPassword, tvAppID, tvSec
		cfg := w.writeFaultConfig(tvAccount)
		p := w.start(cfg)
		env := w.clientEnv(cfg, p)

		fh.Fail(loginPath, 1, fc.fault)
		start := time.Now()
		res := curl(t, env, tvREST+"/v1/account/list")
		took := time.Since(start)
		wantProxyError(t, fc.name, res, "tv", fc.codes...)
		if took > 2*faultTimeout+3*time.Second {
			t.Errorf("%s: the client waited %v", fc.name, took)
		}
		if n := fh.Hits(loginPath); n != 1 {
			t.Errorf("%s: %d accesstokenrequests for one client request; a login is never retried blindly", fc.name, n)
		}
		if c := fake.Counters(); c.APICalls != 0 {
			t.Fatalf("%s: %d API calls reached Tradovate without a login", fc.name, c.APICalls)
		}
		if fc.strict {
			if res := curl(t, env, tvREST+"/v1/account/list"); res.Status != 200 {
				t.Fatalf("%s: the first request after recovery: %d %s\n%s", fc.name, res.Status, res.Body, p.Output())
			}
		} else if !pollUntil(20*time.Second, func() bool { return curl(t, env, tvREST+"/v1/account/list").Status == 200 }) {
			t.Fatalf("%s: no recovery within 20s\n%s", fc.name, p.Output())
		}
		if c := fake.Counters(); c.Sessions != 1 || c.APIRejected != 0 {
			t.Errorf("%s: counters %+v, want 1 session and no rejected call", fc.name, c)
		}
		assertNoSecrets(t, "proxy output", p.Output(), tvPassword, tvSec)
	})
}

// tvTraffic sends requests to the Tradovate fake through the proxy every
// 200ms until stop is closed, and reports how many did not answer 200.
func tvTraffic(t *testing.T, env []string, stop <-chan struct{}) (wait func() (sent, bad int, firstBad string)) {
	var (
		mu        sync.Mutex
		n, nbad   int
		firstFail string
		done      = make(chan struct{})
	)
	go func() {
		defer close(done)
		for i := 0; i < 600; i++ { // bounded: 600 * 200ms = 2 minutes at most
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			res := curl(t, env, tvREST+"/v1/user/syncrequest")
			mu.Lock()
			n++
			if res.Status != 200 {
				nbad++
				if firstFail == "" {
					firstFail = fmt.Sprintf("%d %s %s", res.Status, res.Body, res.Err)
				}
			}
			mu.Unlock()
		}
	}()
	return func() (int, int, string) {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return n, nbad, firstFail
	}
}

// TestFaultTradovateRenewal: faults on renewaccesstoken, which is safe to
// retry. Retryable faults are retried with backoff inside one renewal; a
// renewal that fails leaves the still-valid token in use; when renewals
// fail until the token expires, the proxy logs in again instead of ever
// sending the expired token. Clients see no error throughout.
func TestFaultTradovateRenewal(t *testing.T) {
	t.Parallel()
	const renewPath = "/v1/auth/renewaccesstoken"
	cases := []struct {
		name  string
		fault faulty.Fault
		n     int
		// retried: the renewal that met the fault still succeeded.
		retried bool
	}{
		{"5xx", faulty.Status(http.StatusServiceUnavailable), 2, true},
		{"stall", faulty.Stall(3 * faultTimeout), 1, true},
		{"429", faulty.Status(http.StatusTooManyRequests).With("Retry-After", "1"), 1, true},
		{"reset", faulty.Reset(), 1, true},
		{"garbage", faulty.Garbage(), 1, false},
	}
	var names []string
	for _, c := range cases {
		names = append(names, c.name)
	}
	guarantee(t, "a failed renewal keeps serving the valid token; safe renewals are retried with backoff", names...)
	guarantee(t, "no expired token is ever injected (renewals down until expiry)", "5xx")

	w := newWorld(t)
	fake := tvfake.New(tvfake.Options{Username: tvUser, Password: tvPassword, AppID: tvAppID, AppVersion: tvAppVersion,
		CID: tvCID, Sec: tvSec, DeviceID: tvDevice, TokenTTL: 6 * time.Second})
	fh := w.serveFaulty(fake, append(tvfake.Hosts(), tvOrgHost)...)
	w.env["TV_USER"], w.env["TV_PASSWORD"], w.env["TV_APP_ID"], w.env["TV_SEC"] = tvUser, tvPassword, tvAppID, tvSec
	cfg := w.writeFaultConfig(tvAccount)
	p := w.start(cfg)
	env := w.clientEnv(cfg, p)
	if res := curl(t, env, tvREST+"/v1/account/list"); res.Status != 200 {
		t.Fatalf("first request: %d %s\n%s", res.Status, res.Body, p.Output())
	}
	stop := make(chan struct{})
	wait := tvTraffic(t, env, stop)
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
			wait()
		}
	}()

	for _, c := range cases {
		before := fake.Counters().Renewals
		hitsBefore := fh.Hits(renewPath)
		fh.Fail(renewPath, c.n, c.fault)
		// A renewal comes every ~3s (half of the 6s lifetime); a failed
		// one is tried again a second or so later.
		if !pollUntil(15*time.Second, func() bool { return fake.Counters().Renewals > before }) {
			t.Fatalf("%s: no successful renewal within 15s: %+v\n%s", c.name, fake.Counters(), p.Output())
		}
		evs := fh.Events(renewPath)[hitsBefore:]
		if len(evs) < c.n+1 {
			t.Fatalf("%s: %d renewal requests, want at least %d", c.name, len(evs), c.n+1)
		}
		if c.retried {
			// The faulted attempts and the good one belong to one renewal:
			// backoff waits, not a new renewal a lifetime later.
			span := evs[c.n].Time.Sub(evs[0].Time)
			if span > 3*faultTimeout+2*time.Second {
				t.Errorf("%s: retries spread over %v", c.name, span)
			}
			if evs[c.n].Fault != "" {
				t.Errorf("%s: attempt %d still faulted", c.name, c.n+1)
			}
		}
		if pending := fh.Pending(); pending != 0 {
			t.Fatalf("%s: %d faults left unused", c.name, pending)
		}
	}
	if c := fake.Counters(); c.Sessions != 1 || c.APIRejected != 0 {
		t.Fatalf("after renewal faults: %+v, want 1 session and no rejected call\n%s", c, p.Output())
	}

	// Renewals down for good: the token runs out; the proxy logs in again
	// (one new session) and never sends the expired token.
	fh.Fail(renewPath, -1, faulty.Status(http.StatusServiceUnavailable))
	if !pollUntil(15*time.Second, func() bool { return fake.Counters().Sessions >= 2 }) {
		t.Fatalf("no new login after the token expired: %+v\n%s", fake.Counters(), p.Output())
	}
	time.Sleep(time.Second) // traffic on the new session
	close(stop)
	stopped = true
	sent, bad, firstBad := wait()
	fh.Clear()
	c := fake.Counters()
	if sent < 20 || bad != 0 {
		t.Errorf("client traffic: %d requests, %d not 200 (first: %s)", sent, bad, firstBad)
	}
	// A request that leaves a millisecond before expiry can arrive just
	// after it; the proxy then logs in and replays it. More would mean it
	// sent expired tokens.
	if c.Sessions != 2 || c.APIRejected > 1 {
		t.Errorf("counters %+v: want 2 sessions and at most one call rejected at the expiry edge", c)
	}
	assertNoSecrets(t, "proxy output", p.Output(), tvPassword, tvSec)
}

// TestFaultFivepaisaLogin: 5paisa's two-step login. A TOTPLogin spends a
// TOTP code and GetAccessToken a one-time request token: neither is ever
// retried. The client gets the DESIGN.md error and the proxy recovers.
func TestFaultFivepaisaLogin(t *testing.T) {
	t.Parallel()
	guarantee(t, "5paisa login faults: TOTPLogin and GetAccessToken sent once each, DESIGN.md error, recovery without restart",
		"reset", "5xx", "stall")
	const (
		totpPath = "/VendorsAPI/Service1.svc/TOTPLogin"
		atPath   = "/VendorsAPI/Service1.svc/GetAccessToken"
	)
	type fpCase struct {
		name, path string
		fault      faulty.Fault
		codes      []string
	}
	cases := []fpCase{
		{"totp-reset", totpPath, faulty.Reset(), []string{"upstream_unreachable"}},
		{"accesstoken-5xx", atPath, faulty.Status(http.StatusInternalServerError), []string{"upstream_unreachable", "login_failed"}},
		{"accesstoken-stall", atPath, faulty.Stall(3 * faultTimeout), []string{"timeout"}},
	}
	runConcurrently(t, cases, func(c fpCase) string { return c.name }, func(t *testing.T, c fpCase) {
		w := newWorld(t)
		fake := fake5p.New(fake5p.Options{AppKey: fpAppKey, UserID: fpUserID, EncryptionKey: fpEncKey,
			ClientCode: fpClient, PIN: fpPIN, TOTPSecret: fpSecret})
		fh := w.serveFaulty(fake, fake5p.Hosts()...)
		w.env["FP_APP_KEY"], w.env["FP_USER_ID"], w.env["FP_ENC_KEY"] = fpAppKey, fpUserID, fpEncKey
		w.env["FP_CLIENT"], w.env["FP_PIN"], w.env["FP_TOTP_SECRET"] = fpClient, fpPIN, fpSecret
		cfg := w.writeFaultConfig(fpTOTPAccount)
		p := w.start(cfg)
		env := w.clientEnv(cfg, p)
		order := func() curlResult {
			return curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"body":{}}`, fpService+"V3/OrderBook")
		}

		fh.Fail(c.path, 1, c.fault)
		wantProxyError(t, c.name, order(), "fp", c.codes...)
		if a, b := fh.Hits(totpPath), fh.Hits(atPath); a != 1 || b > 1 {
			t.Errorf("%s: %d TOTPLogin and %d GetAccessToken calls for one request, want 1 and at most 1", c.name, a, b)
		}
		if n := len(fake.Requests()); n != 0 {
			t.Fatalf("%s: %d API requests reached 5paisa without a login", c.name, n)
		}
		if !pollUntil(45*time.Second, func() bool { return order().Status == 200 }) {
			t.Fatalf("%s: no recovery within 45s\n%s", c.name, p.Output())
		}
		if fake.Logins() != 1 {
			t.Errorf("%s: logins = %d, want 1", c.name, fake.Logins())
		}
		for i, r := range fake.Requests() {
			if !strings.HasPrefix(r.Authorization, "bearer ey") || r.HeadKey != fpAppKey {
				t.Errorf("%s: API request %d reached 5paisa without its credentials", c.name, i)
			}
		}
		assertNoSecrets(t, "proxy output", p.Output(), fpSecrets(fake)...)
	})
}

// TestFaultPocketfulLogin: the browser login's code exchange fails (not
// retried: the code is spent) and the person can log in again at once;
// trading_info, which is safe to repeat, is retried through 5xx.
func TestFaultPocketfulLogin(t *testing.T) {
	t.Parallel()
	guarantee(t, "Pocketful: a failed code exchange is not retried and a new browser login works; trading_info is retried", "5xx", "reset")
	w, fake := pocketfulWorld(t)
	fh := faulty.Wrap(fake)
	// pocketfulWorld served the fake directly; serve the wrapped one instead.
	w.serve(fh, pfHost)
	t.Cleanup(fh.Close)
	cfg := w.writeFaultConfig(pfAccount)
	p := w.start(cfg)
	fake.SetRedirectURI("http://" + p.addr + "/callback/pf")
	env := w.clientEnv(cfg, p)

	browse := func() browserResult {
		out, err := python(t, env, pfBrowser, "http://"+p.addr+"/login/pf")
		if err != nil {
			t.Fatalf("browser: %v\n%s", err, p.Output())
		}
		var br browserResult
		if err := json.Unmarshal([]byte(out), &br); err != nil {
			t.Fatalf("browser output %q: %v", out, err)
		}
		return br
	}

	fh.Fail(pocketful.TokenPath, 1, faulty.Status(http.StatusInternalServerError))
	br := browse()
	if br.Status == 200 && strings.Contains(br.Text, "Logged in") {
		t.Fatalf("the login succeeded although the code exchange failed: %+v", br)
	}
	if n := fh.Hits(pocketful.TokenPath); n != 1 {
		t.Errorf("%d code exchanges for one callback; a code is spent once sent", n)
	}
	want511(t, p, curl(t, env, pfAPI+"/api/v1/holdings"))

	fh.Fail(pocketful.TradingInfoPath, 1, faulty.Status(http.StatusServiceUnavailable))
	fh.Fail(pocketful.TradingInfoPath, 1, faulty.Reset())
	br = browse()
	if br.Status != 200 || !strings.Contains(br.Text, "Logged in") {
		t.Fatalf("second browser login: %+v\n%s", br, p.Output())
	}
	if n := fh.Hits(pocketful.TradingInfoPath); n != 3 {
		t.Errorf("trading_info requests = %d, want 3 (two faults retried)", n)
	}
	res := curl(t, env, pfAPI+"/api/v1/holdings")
	if res.Status != 200 {
		t.Fatalf("after the login: %d %s\n%s", res.Status, res.Body, p.Output())
	}
	if r := lastRequest(t, fake, "/api/v1/holdings"); r.RawQuery != "client_id="+pfClientID {
		t.Errorf("client_id not filled in after a retried trading_info: query %q", r.RawQuery)
	}
	assertNoSecrets(t, "proxy output", p.Output(), pfAppSecret)
}
