package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	fakeao "github.com/authproxy/authproxy/internal/fakebroker/angelone"
	fakekite "github.com/authproxy/authproxy/internal/fakebroker/kite"
	fakeux "github.com/authproxy/authproxy/internal/fakebroker/upstox"
)

// Credentials of the three brokers of issue 17 (made up; the strict fakes
// check them).
const (
	ktAPIKey    = "kitefakeapikey42"
	ktAPISecret = "kiteFakeApiSecret7d1e0b5c"
	ktAPI       = "https://" + fakekite.APIHost
	// ktSessionPath is Kite's token exchange (request_token -> access_token).
	ktSessionPath = "/session/token"

	aoAPIKey     = "SmartFakeKey9q"
	aoClientCode = "A123456"
	aoPIN        = "7316"
	aoTOTPSecret = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"
	aoAPI        = "https://" + fakeao.APIHost

	uxClientID     = "upstox-fake-client-id"
	uxClientSecret = "UpstoxFakeSecret3c9a1f"
	uxAPI          = "https://" + fakeux.APIHost
	uxOrderAPI     = "https://" + fakeux.OrderHost
)

// newBrokersConfig is the three accounts, every credential from the
// environment, redirect_uri left to its default (the proxy's callback).
const newBrokersConfig = `[brokers.kt]
type = "kite"
api_key = "${KT_API_KEY}"
api_secret = "${KT_API_SECRET}"

[brokers.ao]
type = "angelone"
api_key = "${AO_API_KEY}"
client_code = "${AO_CLIENT_CODE}"
pin = "${AO_PIN}"
totp_secret = "${AO_TOTP_SECRET}"

[brokers.ux]
type = "upstox"
client_id = "${UX_CLIENT_ID}"
client_secret = "${UX_CLIENT_SECRET}"

[limits]
refresh_margin = "5s"
`

// newBrokers is one environment shared by the three brokers (one proxy,
// one build) to keep the suite's time down.
type newBrokers struct {
	w         *world
	kite      *fakekite.Fake
	ao        *fakeao.Fake
	ux        *fakeux.Fake
	kiteLogin string // the fake Kite login page's address (kite.zerodha.com is not the proxy's)
	cfg       string
	p         *proc
	env       []string
}

func startNewBrokers(t *testing.T) *newBrokers {
	w := newWorld(t)
	nb := &newBrokers{w: w}
	nb.kite = fakekite.New(fakekite.Options{APIKey: ktAPIKey, APISecret: ktAPISecret})
	nb.ao = fakeao.New(fakeao.Options{APIKey: aoAPIKey, ClientCode: aoClientCode, PIN: aoPIN, TOTPSecret: aoTOTPSecret})
	nb.ux = fakeux.New(fakeux.Options{ClientID: uxClientID, ClientSecret: uxClientSecret})
	srv := w.serve(nb.kite, fakekite.APIHost, fakekite.TickerHost, fakekite.LoginHost)
	// The login page is reached by the person's browser directly, never
	// through the proxy's resolve table.
	delete(w.resolve, fakekite.LoginHost+":443")
	nb.kiteLogin = srv.Addr
	w.serve(nb.ao, fakeao.APIHost, fakeao.StreamHost)
	w.serve(nb.ux, fakeux.APIHost, fakeux.OrderHost)
	for k, v := range map[string]string{
		"KT_API_KEY": ktAPIKey, "KT_API_SECRET": ktAPISecret,
		"AO_API_KEY": aoAPIKey, "AO_CLIENT_CODE": aoClientCode, "AO_PIN": aoPIN, "AO_TOTP_SECRET": aoTOTPSecret,
		"UX_CLIENT_ID": uxClientID, "UX_CLIENT_SECRET": uxClientSecret,
	} {
		w.env[k] = v
	}
	nb.cfg = w.writeConfig(newBrokersConfig)
	nb.p = w.start(nb.cfg)
	// Both apps are registered with the proxy's own callback (the default
	// redirect_uri), which names the port the proxy got.
	nb.kite.SetRedirectURL("http://" + nb.p.addr + "/callback/kt")
	nb.ux.SetRedirectURI("http://" + nb.p.addr + "/callback/ux")
	nb.env = w.clientEnv(nb.cfg, nb.p)
	return nb
}

// accountStatus is the running proxy's /status entry for account name.
func accountStatus(t *testing.T, p *proc, name string) map[string]any {
	t.Helper()
	var rep struct {
		Accounts []map[string]any `json:"accounts"`
	}
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+p.addr+"/status")), &rep); err != nil {
		t.Fatal(err)
	}
	for _, a := range rep.Accounts {
		if a["name"] == name {
			return a
		}
	}
	t.Fatalf("no account %s in /status: %v", name, rep)
	return nil
}

// wantLoginRequired checks a 511 login_required answer for account name.
func wantLoginRequired(t *testing.T, p *proc, name string, res curlResult) {
	t.Helper()
	var body struct {
		Error struct{ Code, Account, Hint string }
	}
	_ = json.Unmarshal([]byte(res.Body), &body)
	loginURL := "http://" + p.addr + "/login/" + name
	if res.Status != http.StatusNetworkAuthenticationRequired || res.Header.Get("X-Authproxy-Error") != "login_required" ||
		body.Error.Code != "login_required" || body.Error.Account != name || !strings.Contains(body.Error.Hint, loginURL) {
		t.Fatalf("want 511 login_required for %s with hint %s; got %d %s (%s)\nproxy output:\n%s",
			name, loginURL, res.Status, res.Body, res.Err, p.Output())
	}
}

// lastRecorded is the latest request a new-broker fake saw to path.
func lastRecorded(t *testing.T, reqs []recorded, path string) recorded {
	t.Helper()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Path == path {
			return reqs[i]
		}
	}
	t.Fatalf("the fake saw no request to %s", path)
	return recorded{}
}

// recorded is the part of a fake's record the tests read.
type recorded struct {
	Method, Host, Path, RawQuery, Authorization string
	Header                                      http.Header
	Body                                        string
}

func kiteRequests(f *fakekite.Fake) []recorded {
	var out []recorded
	for _, r := range f.Requests() {
		out = append(out, recorded{r.Method, r.Host, r.Path, r.RawQuery, r.Authorization, r.Header, string(r.Body)})
	}
	return out
}

func aoRequests(f *fakeao.Fake) []recorded {
	var out []recorded
	for _, r := range f.Requests() {
		out = append(out, recorded{r.Method, r.Host, r.Path, r.RawQuery, r.Authorization, r.Header, string(r.Body)})
	}
	return out
}

func uxRequests(f *fakeux.Fake) []recorded {
	var out []recorded
	for _, r := range f.Requests() {
		out = append(out, recorded{r.Method, r.Host, r.Path, r.RawQuery, r.Authorization, r.Header, string(r.Body)})
	}
	return out
}

// TestNewBrokers drives Zerodha Kite, Angel One SmartAPI and Upstox
// through the built binary with curl and Python requests, against strict
// fakes: Kite's browser login and `token api_key:access_token`, Angel One's
// TOTP login by the proxy with Bearer + X-PrivateKey and renewal through
// generateTokens, Upstox's OAuth2 code flow and Bearer; orders journaled
// and paused; no secret in anything the proxy printed.
func TestNewBrokers(t *testing.T) {
	nb := startNewBrokers(t)
	p, env, w := nb.p, nb.env, nb.w

	// The config check, status and the dashboard know all three.
	if out := runCLI(t, w, "check", "--config", nb.cfg); !strings.Contains(out, "ok") {
		t.Errorf("check: %s", out)
	}
	if st := accountStatus(t, p, "kt"); st["state"] != "needs login" || st["interactive"] != true {
		t.Errorf("kite status before login = %v", st)
	}
	if st := accountStatus(t, p, "ux"); st["state"] != "needs login" || st["interactive"] != true {
		t.Errorf("upstox status before login = %v", st)
	}
	dash := httpGet(t, "http://"+p.addr+"/")
	for _, want := range []string{"Zerodha Kite", "Angel One SmartAPI", "Upstox", "/login/kt", "/login/ux"} {
		if !strings.Contains(dash, want) {
			t.Errorf("the dashboard lacks %q", want)
		}
	}

	// doctor knows them: the browser logins are due, Angel One logs in by
	// itself. (Its exit status depends on checks of this machine's own
	// environment, so only its findings about the accounts are read.)
	doc := exec.Command(binary, "doctor", "--config", nb.cfg, "--timeout", "5s")
	doc.Env = env
	docOut, _ := doc.CombinedOutput()
	for _, want := range []string{"kt (kite): needs a browser login", "open http://" + p.addr + "/login/kt",
		"ux (upstox): needs a browser login", "open http://" + p.addr + "/login/ux"} {
		if !strings.Contains(string(docOut), want) {
			t.Errorf("doctor output lacks %q:\n%s", want, docOut)
		}
	}
	if !regexp.MustCompile(`(?m)^ok\s+account\s+ao \(angelone\): `).Match(docOut) {
		t.Errorf("doctor does not find account ao fine:\n%s", docOut)
	}

	t.Run("kite", func(t *testing.T) {
		// Before the morning login: 511 with the /login/NAME hint, and
		// nothing reaches Kite.
		wantLoginRequired(t, p, "kt", curl(t, env, ktAPI+"/user/profile"))
		if c := nb.kite.Counts(); c.APICalls != 0 || c.TokenRejections != 0 {
			t.Fatalf("a request reached Kite unauthenticated: %+v", c)
		}

		// The browser login: /login/kt on the proxy, Kite's own login page
		// (reached directly, as a browser does), back to /callback/kt.
		res := curl(t, w.procEnv(), "-L", "--max-redirs", "5", "--cacert", w.caFile,
			"--connect-to", fakekite.LoginHost+":443:"+nb.kiteLogin, "http://"+p.addr+"/login/kt")
		if res.Status != 200 || !strings.Contains(res.Body, "Logged in") {
			t.Fatalf("kite browser login: %d %s %s\n%s", res.Status, res.Body, res.Err, p.Output())
		}
		if c := nb.kite.Counts(); c.Logins != 1 || c.Sessions != 1 || c.SessionFailures != 0 {
			t.Fatalf("kite counts after the login = %+v", c)
		}
		sess := lastRecorded(t, kiteRequests(nb.kite), ktSessionPath)
		if sess.Authorization != "" || sess.Header.Get("X-Kite-Version") != "3" {
			t.Errorf("session exchange: Authorization %q X-Kite-Version %q", sess.Authorization, sess.Header.Get("X-Kite-Version"))
		}
		if st := accountStatus(t, p, "kt"); st["state"] != "ready" {
			t.Errorf("kite status after login = %v", st)
		}

		// curl with a stale header and no X-Kite-Version: the proxy writes
		// `token api_key:access_token` and adds the version.
		res = curl(t, env, "-H", "Authorization: token stale:leftover", ktAPI+"/user/profile")
		if res.Status != 200 || !strings.Contains(res.Body, `"status":"success"`) {
			t.Fatalf("kite profile: %d %s %s\n%s", res.Status, res.Body, res.Err, p.Output())
		}
		got := lastRecorded(t, kiteRequests(nb.kite), "/user/profile")
		key, access, _ := strings.Cut(strings.TrimPrefix(got.Authorization, "token "), ":")
		if !strings.HasPrefix(got.Authorization, "token ") || key != ktAPIKey || !nb.kite.ValidToken(access) ||
			got.Header.Get("X-Kite-Version") != "3" {
			t.Errorf("profile reached Kite with Authorization %q X-Kite-Version %q", got.Authorization, got.Header.Get("X-Kite-Version"))
		}

		// Python requests as pykiteconnect sends them (form bodies, its
		// own X-Kite-Version): a data call and an order.
		out, err := python(t, env, `
import requests, sys
h = {"X-Kite-Version": "3"}
a = requests.get(sys.argv[1] + "/user/margins", headers=h)
b = requests.post(sys.argv[1] + "/orders/regular", headers=h, data={"tradingsymbol": "INFY", "exchange": "NSE",
    "transaction_type": "BUY", "quantity": 1, "order_type": "MARKET", "product": "CNC", "validity": "DAY"})
print(a.status_code, b.status_code, b.json()["data"]["order_id"])
`, ktAPI)
		if err != nil || !strings.HasPrefix(strings.TrimSpace(out), "200 200 2512070") {
			t.Fatalf("kite python: %q %v\n%s", out, err, p.Output())
		}
		if n := len(nb.kite.Orders()); n != 1 {
			t.Errorf("kite orders = %d, want 1", n)
		}

		// The token dies (06:00 IST flush, revocation): 403 TokenException
		// becomes 511 login_required; a browser broker is never logged in
		// by the proxy.
		nb.kite.RevokeAll()
		before := nb.kite.Counts()
		wantLoginRequired(t, p, "kt", curl(t, env, ktAPI+"/user/profile"))
		if c := nb.kite.Counts(); c.TokenRejections != before.TokenRejections+1 || c.Logins != 1 || c.Sessions != 1 {
			t.Errorf("after the rejection: %+v (before %+v)", c, before)
		}
		if st := accountStatus(t, p, "kt"); st["state"] != "needs login" {
			t.Errorf("kite status after the rejection = %v", st)
		}
	})

	t.Run("angelone", func(t *testing.T) {
		// The first request makes the proxy log in by itself with a TOTP
		// code; Bearer and X-PrivateKey are written in.
		res := curl(t, env, aoAPI+"/rest/secure/angelbroking/user/v1/getProfile")
		if res.Status != 200 || !strings.Contains(res.Body, `"status":true`) {
			t.Fatalf("angel one profile: %d %s %s\n%s", res.Status, res.Body, res.Err, p.Output())
		}
		if c := nb.ao.Counts(); c.Logins != 1 || c.LoginFailures != 0 || c.APICalls != 1 {
			t.Fatalf("angel one counts = %+v", c)
		}
		login := lastRecorded(t, aoRequests(nb.ao), fakeao.LoginPath)
		if login.Header.Get("X-UserType") != "USER" || login.Header.Get("X-SourceID") != "WEB" ||
			login.Header.Get("X-ClientLocalIP") == "" || login.Header.Get("X-MACAddress") == "" {
			t.Errorf("login headers: %v", login.Header)
		}
		got := lastRecorded(t, aoRequests(nb.ao), "/rest/secure/angelbroking/user/v1/getProfile")
		if !strings.HasPrefix(got.Authorization, "Bearer ey") || got.Header.Get("X-PrivateKey") != aoAPIKey {
			t.Errorf("profile reached Angel One with Authorization %q", got.Authorization)
		}

		// Python requests, as SmartConnect() with no key and no token sends
		// them: the proxy supplies both.
		out, err := python(t, env, `
import requests, sys
h = {"Content-Type": "application/json", "Accept": "application/json", "X-UserType": "USER", "X-SourceID": "WEB"}
a = requests.get(sys.argv[1] + "/rest/secure/angelbroking/user/v1/getRMS", headers=h)
b = requests.post(sys.argv[1] + "/rest/secure/angelbroking/order/v1/placeOrder", headers=h, json={"variety": "NORMAL",
    "tradingsymbol": "SBIN-EQ", "symboltoken": "3045", "transactiontype": "BUY", "exchange": "NSE", "ordertype": "MARKET",
    "producttype": "INTRADAY", "duration": "DAY", "quantity": "1"})
print(a.status_code, a.json()["status"], b.status_code, b.json()["data"]["orderid"])
`, aoAPI)
		if err != nil || !strings.HasPrefix(strings.TrimSpace(out), "200 True 200 251207") {
			t.Fatalf("angel one python: %q %v\n%s", out, err, p.Output())
		}

		// The broker's own auth endpoints are forwarded untouched: a
		// client cannot renew the account's session through the proxy.
		res = curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-H", "X-PrivateKey: client-own",
			"-d", `{"refreshToken":"client-own"}`, aoAPI+fakeao.RenewPath)
		own := lastRecorded(t, aoRequests(nb.ao), fakeao.RenewPath)
		if res.Header.Get("X-Authproxy-Error") != "" || own.Authorization != "" || own.Header.Get("X-PrivateKey") != "client-own" {
			t.Errorf("the client's own generateTokens was altered: %d %s; Authorization %q X-PrivateKey %q",
				res.Status, res.Body, own.Authorization, own.Header.Get("X-PrivateKey"))
		}

		// An in-band AG8001 (HTTP 200) rejection: the proxy renews with
		// the refresh token (generateTokens), not a new TOTP login, and
		// replays the request.
		nb.ao.RevokeAll()
		before := nb.ao.Counts()
		res = curl(t, env, aoAPI+"/rest/secure/angelbroking/user/v1/getProfile")
		if res.Status != 200 || !strings.Contains(res.Body, `"status":true`) {
			t.Fatalf("after AG8001: %d %s\n%s", res.Status, res.Body, p.Output())
		}
		if c := nb.ao.Counts(); c.Renewals != 1 || c.Logins != 1 || c.TokenRejections != before.TokenRejections+1 {
			t.Fatalf("after AG8001: %+v (before %+v)", c, before)
		}
		renew := lastRecorded(t, aoRequests(nb.ao), fakeao.RenewPath)
		if !strings.HasPrefix(renew.Authorization, "Bearer ey") || renew.Header.Get("X-PrivateKey") != aoAPIKey {
			t.Errorf("generateTokens sent Authorization %q X-PrivateKey %q", renew.Authorization, renew.Header.Get("X-PrivateKey"))
		}
	})

	t.Run("upstox", func(t *testing.T) {
		wantLoginRequired(t, p, "ux", curl(t, env, uxAPI+"/v2/user/profile"))
		if c := nb.ux.Counts(); c.APICalls != 0 || c.TokenRejections != 0 {
			t.Fatalf("a request reached Upstox unauthenticated: %+v", c)
		}

		// The OAuth2 code flow in a "browser" that uses the proxy: the
		// dialog on api.upstox.com is MITM'd but forwarded untouched.
		out, err := python(t, env, pfBrowser, "http://"+p.addr+"/login/ux")
		if err != nil {
			t.Fatalf("browser: %v\n%s", err, p.Output())
		}
		var br browserResult
		if err := json.Unmarshal([]byte(out), &br); err != nil {
			t.Fatalf("browser output %q: %v", out, err)
		}
		if br.Status != 200 || !strings.Contains(br.Text, "Logged in") || !strings.HasPrefix(br.URL, "http://"+p.addr+"/callback/ux?") ||
			len(br.History) != 2 || !strings.HasPrefix(br.History[1], uxAPI+fakeux.DialogPath+"?") {
			t.Fatalf("upstox browser login: %+v\n%s", br, p.Output())
		}
		dialog := lastRecorded(t, uxRequests(nb.ux), fakeux.DialogPath)
		q, _ := url.ParseQuery(dialog.RawQuery)
		if dialog.Authorization != "" || q.Get("redirect_uri") != "http://"+p.addr+"/callback/ux" || q.Get("client_id") != uxClientID {
			t.Errorf("dialog: Authorization %q query %q", dialog.Authorization, dialog.RawQuery)
		}
		if c := nb.ux.Counts(); c.Authorizations != 1 || c.Exchanges != 1 || c.ExchangeFailures != 0 {
			t.Fatalf("upstox counts after login = %+v", c)
		}

		// The SDK's empty `Authorization: Bearer ` is replaced.
		res := curl(t, env, "-H", "Authorization: Bearer ", "-H", "Api-Version: 2.0", uxAPI+"/v2/user/profile")
		if res.Status != 200 || !strings.Contains(res.Body, `"status":"success"`) {
			t.Fatalf("upstox profile: %d %s %s\n%s", res.Status, res.Body, res.Err, p.Output())
		}
		got := lastRecorded(t, uxRequests(nb.ux), "/v2/user/profile")
		if !nb.ux.ValidToken(strings.TrimPrefix(got.Authorization, "Bearer ")) {
			t.Errorf("profile reached Upstox with Authorization %q", got.Authorization)
		}

		// Python: the feed authorisation (a REST call) and an order on the
		// HFT host.
		out, err = python(t, env, `
import requests, sys
a = requests.get(sys.argv[1] + "/v3/feed/market-data-feed/authorize", headers={"Accept": "application/json"})
b = requests.post(sys.argv[2] + "/v2/order/place", json={"quantity": 1, "product": "D", "validity": "DAY", "price": 0,
    "instrument_token": "NSE_EQ|INE669E01016", "order_type": "MARKET", "transaction_type": "BUY", "disclosed_quantity": 0,
    "trigger_price": 0, "is_amo": False})
print(a.status_code, b.status_code, b.json()["data"]["order_id"])
`, uxAPI, uxOrderAPI)
		if err != nil || !strings.HasPrefix(strings.TrimSpace(out), "200 200 2512070") {
			t.Fatalf("upstox python: %q %v\n%s", out, err, p.Output())
		}

		// 401 means the day's login is over: 511 login_required.
		nb.ux.RevokeAll()
		before := nb.ux.Counts()
		wantLoginRequired(t, p, "ux", curl(t, env, uxAPI+"/v2/user/profile"))
		if c := nb.ux.Counts(); c.TokenRejections != before.TokenRejections+1 || c.Exchanges != 1 {
			t.Errorf("after the rejection: %+v (before %+v)", c, before)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("orders", func(t *testing.T) {
		// Log Kite and Upstox in again for the order checks.
		res := curl(t, w.procEnv(), "-L", "--max-redirs", "5", "--cacert", w.caFile,
			"--connect-to", fakekite.LoginHost+":443:"+nb.kiteLogin, "http://"+p.addr+"/login/kt")
		if res.Status != 200 || !strings.Contains(res.Body, "Logged in") {
			t.Fatalf("kite login again: %d %s %s", res.Status, res.Body, res.Err)
		}
		if out, err := python(t, env, pfBrowser, "http://"+p.addr+"/login/ux"); err != nil || !strings.Contains(out, "Logged in") {
			t.Fatalf("upstox login again: %q %v", out, err)
		}

		orders := func() [3]curlResult {
			return [3]curlResult{
				curl(t, env, "-X", "POST", "-d", "tradingsymbol=INFY&exchange=NSE&quantity=1", ktAPI+"/orders/regular"),
				curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"tradingsymbol":"SBIN-EQ","quantity":"1"}`,
					aoAPI+"/rest/secure/angelbroking/order/v1/placeOrder"),
				curl(t, env, "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"quantity":1,"instrument_token":"NSE_EQ|INE669E01016"}`,
					uxOrderAPI+"/v2/order/place"),
			}
		}
		names := [3]string{"kt", "ao", "ux"}
		counts := func() [3]int { return [3]int{len(nb.kite.Orders()), len(nb.ao.Orders()), len(nb.ux.Orders())} }

		out := runCLI(t, w, "pause", "kt", "ao", "ux", "--config", nb.cfg)
		if !strings.Contains(out, "authproxy resume") {
			t.Errorf("pause output: %s", out)
		}
		before := counts()
		for i, res := range orders() {
			if res.Status != 423 || res.Header.Get("X-Authproxy-Error") != "paused" || !strings.Contains(res.Body, `"account":"`+names[i]+`"`) {
				t.Errorf("%s order while paused: %d %s", names[i], res.Status, res.Body)
			}
		}
		if after := counts(); after != before {
			t.Fatalf("a paused order reached a broker: %v -> %v", before, after)
		}
		// Data still flows while paused.
		if res := curl(t, env, aoAPI+"/rest/secure/angelbroking/user/v1/getRMS"); res.Status != 200 {
			t.Errorf("angel one data while paused: %d %s", res.Status, res.Body)
		}
		runCLI(t, w, "resume", "--config", nb.cfg)
		for i, res := range orders() {
			if res.Status != 200 {
				t.Errorf("%s order after resume: %d %s\n%s", names[i], res.Status, res.Body, p.Output())
			}
		}

		// The journal has every order with its outcome, the broker's order
		// id and the broker type.
		types := map[string]string{"kt": "kite", "ao": "angelone", "ux": "upstox"}
		for _, name := range names {
			jl := runCLI(t, w, "journal", name, "--json", "--since", "1h", "--config", nb.cfg)
			outcomes := map[string]int{}
			sc := bufio.NewScanner(strings.NewReader(jl))
			for sc.Scan() {
				var e map[string]any
				if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
					t.Fatalf("journal line %q: %v", sc.Text(), err)
				}
				if e["account"] != name || e["broker"] != types[name] {
					t.Errorf("journal entry %v", e)
				}
				if e["outcome"] == "ok" {
					if id, _ := e["order_id"].(string); !strings.HasPrefix(id, "251207") {
						t.Errorf("journal entry without the broker's order id: %v", e)
					}
				}
				outcomes[e["outcome"].(string)]++
			}
			// One order from the subtests above, one paused, one after resume.
			if outcomes["ok"] != 2 || outcomes["paused"] != 1 {
				t.Errorf("%s journal outcomes %v, want ok 2, paused 1:\n%s", name, outcomes, jl)
			}
		}
		metrics := httpGet(t, "http://"+p.addr+"/metrics")
		for _, name := range names {
			for _, want := range []string{`authproxy_orders_total{account="` + name + `",outcome="paused"} 1`,
				`authproxy_orders_total{account="` + name + `",outcome="ok"} 2`} {
				if !strings.Contains(metrics, want) {
					t.Errorf("/metrics lacks %s", want)
				}
			}
		}
	})

	t.Run("streams", func(t *testing.T) {
		// Go WebSocket clients through the proxy, with placeholders where
		// the SDKs need values: each broker's handshake gets its own
		// credentials.
		hc := wsHTTPClient(t, w, p)
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()

		kc, _, err := websocket.Dial(ctx, "wss://"+fakekite.TickerHost+"/?api_key=placeholder&access_token=placeholder",
			&websocket.DialOptions{HTTPClient: hc, HTTPHeader: http.Header{"X-Kite-Version": {"3"}}})
		if err != nil {
			t.Fatalf("kite ticker: %v\n%s", err, p.Output())
		}
		kc.Close(websocket.StatusNormalClosure, "")
		if n := nb.kite.Counts().Tickers; n != 1 {
			t.Errorf("kite tickers accepted = %d, want 1", n)
		}

		ac, _, err := websocket.Dial(ctx, "wss://"+fakeao.StreamHost+fakeao.StreamPath, &websocket.DialOptions{HTTPClient: hc,
			HTTPHeader: http.Header{"Authorization": {"placeholder"}, "x-api-key": {"placeholder"},
				"x-client-code": {"placeholder"}, "x-feed-token": {"placeholder"}}})
		if err != nil {
			t.Fatalf("angel one SmartStream: %v\n%s", err, p.Output())
		}
		wsSend(ctx, t, ac, "ping")
		wsExpect(ctx, t, ac, "pong")
		ac.Close(websocket.StatusNormalClosure, "")

		uc, _, err := websocket.Dial(ctx, "wss://"+fakeux.APIHost+fakeux.FeedPath,
			&websocket.DialOptions{HTTPClient: hc, HTTPHeader: http.Header{"Authorization": {"Bearer "}}})
		if err != nil {
			t.Fatalf("upstox feed: %v\n%s", err, p.Output())
		}
		uc.Close(websocket.StatusNormalClosure, "")
		if nb.ao.Counts().Streams != 1 || nb.ux.Counts().Feeds != 1 {
			t.Errorf("angel one streams %d, upstox feeds %d; want 1 each", nb.ao.Counts().Streams, nb.ux.Counts().Feeds)
		}
	})

	t.Run("angelone relogin", func(t *testing.T) {
		// The session and its refresh token are both dead: generateTokens
		// is refused (AB8051) and the proxy does a new TOTP login with a
		// code of a fresh time step. That may wait for the next 30 s step;
		// a client waits at most [upstream] timeout (10 s), then retries.
		nb.ao.RevokeAll()
		nb.ao.ExpireRefresh()
		before := nb.ao.Counts()
		var res curlResult
		for range 5 {
			res = curl(t, env, aoAPI+"/rest/secure/angelbroking/user/v1/getProfile")
			if res.Status != 504 || res.Header.Get("X-Authproxy-Error") != "timeout" {
				break
			}
		}
		if res.Status != 200 || !strings.Contains(res.Body, `"status":true`) {
			t.Fatalf("after a refused refresh: %d %s\n%s", res.Status, res.Body, p.Output())
		}
		if c := nb.ao.Counts(); c.Logins != before.Logins+1 || c.LoginFailures != 0 || c.RenewFailures != before.RenewFailures+1 {
			t.Fatalf("after a refused refresh: %+v (before %+v)", c, before)
		}
	})

	// Restart: every account is served from tokens.json, no new login.
	p.stop()
	loginsBefore := [3]int{nb.kite.Counts().Sessions, nb.ao.Counts().Logins, nb.ux.Counts().Exchanges}
	p2 := w.start(nb.cfg)
	nb.kite.SetRedirectURL("http://" + p2.addr + "/callback/kt")
	nb.ux.SetRedirectURI("http://" + p2.addr + "/callback/ux")
	env2 := w.clientEnv(nb.cfg, p2)
	for _, u := range []string{ktAPI + "/user/profile", aoAPI + "/rest/secure/angelbroking/user/v1/getProfile", uxAPI + "/v2/user/profile"} {
		if res := curl(t, env2, u); res.Status != 200 {
			t.Errorf("after a restart %s: %d %s\n%s", u, res.Status, res.Body, p2.Output())
		}
	}
	if after := [3]int{nb.kite.Counts().Sessions, nb.ao.Counts().Logins, nb.ux.Counts().Exchanges}; after != loginsBefore {
		t.Errorf("a restart logged in again: %v -> %v", loginsBefore, after)
	}

	// No secret anywhere: the proxy's output, `authproxy status`, /status,
	// /metrics and the dashboard.
	// The PIN is looked for quoted, as a leaked login body would hold it:
	// four bare digits could be part of a port number.
	secrets := []string{ktAPISecret, aoAPIKey, `"` + aoPIN + `"`, aoTOTPSecret, uxClientSecret}
	for _, r := range kiteRequests(nb.kite) {
		if _, access, ok := strings.Cut(strings.TrimPrefix(r.Authorization, "token "), ":"); ok {
			secrets = append(secrets, access)
		}
		if r.Path == ktSessionPath {
			v, _ := url.ParseQuery(r.Body)
			secrets = append(secrets, v.Get("request_token"), v.Get("checksum"))
		}
	}
	for _, r := range aoRequests(nb.ao) {
		secrets = append(secrets, strings.TrimPrefix(r.Authorization, "Bearer "))
		if r.Path == fakeao.RenewPath {
			var v struct{ RefreshToken string }
			if json.Unmarshal([]byte(r.Body), &v) == nil && v.RefreshToken != "client-own" {
				secrets = append(secrets, v.RefreshToken)
			}
		}
	}
	for _, r := range uxRequests(nb.ux) {
		secrets = append(secrets, strings.TrimPrefix(r.Authorization, "Bearer "))
		if r.Path == fakeux.TokenPath {
			v, _ := url.ParseQuery(r.Body)
			secrets = append(secrets, v.Get("code"))
		}
	}
	base := "http://" + p2.addr
	assertNoSecrets(t, "proxy output", p.Output()+p2.Output(), secrets...)
	assertNoSecrets(t, "authproxy status", runCLI(t, w, "status", "--config", nb.cfg, "--json"), secrets...)
	for _, path := range []string{"/status", "/metrics", "/"} {
		assertNoSecrets(t, path, httpGet(t, base+path), secrets...)
	}
}
