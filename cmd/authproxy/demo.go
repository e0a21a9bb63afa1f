package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	fakeao "github.com/authproxy/authproxy/internal/fakebroker/angelone"
	"github.com/authproxy/authproxy/internal/fakebroker/fakeca"
	fake5p "github.com/authproxy/authproxy/internal/fakebroker/fivepaisa"
	fakekt "github.com/authproxy/authproxy/internal/fakebroker/kite"
	fakepf "github.com/authproxy/authproxy/internal/fakebroker/pocketful"
	faketg "github.com/authproxy/authproxy/internal/fakebroker/tradingo"
	faketv "github.com/authproxy/authproxy/internal/fakebroker/tradovate"
	fakeux "github.com/authproxy/authproxy/internal/fakebroker/upstox"
	"github.com/authproxy/authproxy/proxy"
)

// The demo's made-up credentials: the fakes expect exactly these. They
// reach the proxy through a lookup function, never the real environment.
const (
	demoTGClient = "DEMO01"
	demoTGMPIN   = "4821"
	demoTGTOTP   = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

	demoTVUser     = "demo-trader"
	demoTVPassword = "demo-Pass-2026"
	demoTVAppID    = "authproxy-demo"
	demoTVVersion  = "1.0"
	demoTVCID      = "4242"
	demoTVSec      = "demo-sec-8c1f2e7a9b"
	demoTVDevice   = "6b1d2c3e-4f50-4a61-9b72-8c9d0e1f2a3b"

	demoFPAppKey = "DemoAppKeyQ7s9L2v"
	demoFPUserID = "DemoUser5501"
	demoFPEncKey = "DemoEncKeyZ3x8W1"
	demoFPClient = "55501234"
	demoFPPIN    = "260408"
	demoFPTOTP   = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

	demoPFAppID     = "DemoPfApp01"
	demoPFAppSecret = "demo-pf-secret-4b7c9d1e"
	demoPFClientID  = "DEMO02"

	demoKTAPIKey    = "demokiteapp01"
	demoKTAPISecret = "demo-kite-secret-5e2a9c"

	demoAOAPIKey     = "DemoSmartKey01"
	demoAOClientCode = "D123456"
	demoAOPIN        = "1357"
	demoAOTOTP       = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"

	demoUXClientID     = "demo-upstox-app"
	demoUXClientSecret = "demo-ux-secret-7f3b1d"
)

// demoVars are the ${VARS} the demo config uses.
func demoVars() map[string]string {
	return map[string]string{
		"DEMO_TRADINGO_CLIENT_CODE": demoTGClient, "DEMO_TRADINGO_MPIN": demoTGMPIN, "DEMO_TRADINGO_TOTP_SECRET": demoTGTOTP,
		"DEMO_TRADOVATE_USERNAME": demoTVUser, "DEMO_TRADOVATE_PASSWORD": demoTVPassword, "DEMO_TRADOVATE_APP_ID": demoTVAppID,
		"DEMO_TRADOVATE_CID": demoTVCID, "DEMO_TRADOVATE_SEC": demoTVSec,
		"DEMO_FIVEPAISA_APP_KEY": demoFPAppKey, "DEMO_FIVEPAISA_USER_ID": demoFPUserID,
		"DEMO_FIVEPAISA_ENCRYPTION_KEY": demoFPEncKey, "DEMO_FIVEPAISA_CLIENT_CODE": demoFPClient,
		"DEMO_FIVEPAISA_PIN": demoFPPIN, "DEMO_FIVEPAISA_TOTP_SECRET": demoFPTOTP,
		"DEMO_POCKETFUL_CLIENT_ID": demoPFAppID, "DEMO_POCKETFUL_CLIENT_SECRET": demoPFAppSecret,
		"DEMO_KITE_API_KEY": demoKTAPIKey, "DEMO_KITE_API_SECRET": demoKTAPISecret,
		"DEMO_ANGELONE_API_KEY": demoAOAPIKey, "DEMO_ANGELONE_CLIENT_CODE": demoAOClientCode,
		"DEMO_ANGELONE_PIN": demoAOPIN, "DEMO_ANGELONE_TOTP_SECRET": demoAOTOTP,
		"DEMO_UPSTOX_CLIENT_ID": demoUXClientID, "DEMO_UPSTOX_CLIENT_SECRET": demoUXClientSecret,
	}
}

const demoAccounts = `
[brokers.tradingo]
type = "tradingo"
client_code = "${DEMO_TRADINGO_CLIENT_CODE}"
mpin = "${DEMO_TRADINGO_MPIN}"
totp_secret = "${DEMO_TRADINGO_TOTP_SECRET}"

[brokers.tradovate]
type = "tradovate"
environment = "demo"
username = "${DEMO_TRADOVATE_USERNAME}"
password = "${DEMO_TRADOVATE_PASSWORD}"
app_id = "${DEMO_TRADOVATE_APP_ID}"
app_version = "` + demoTVVersion + `"
cid = "${DEMO_TRADOVATE_CID}"
sec = "${DEMO_TRADOVATE_SEC}"
device_id = "` + demoTVDevice + `"

[brokers.fivepaisa]
type = "fivepaisa"
app_key = "${DEMO_FIVEPAISA_APP_KEY}"
user_id = "${DEMO_FIVEPAISA_USER_ID}"
encryption_key = "${DEMO_FIVEPAISA_ENCRYPTION_KEY}"
client_code = "${DEMO_FIVEPAISA_CLIENT_CODE}"
pin = "${DEMO_FIVEPAISA_PIN}"
totp_secret = "${DEMO_FIVEPAISA_TOTP_SECRET}"

[brokers.pocketful]
type = "pocketful"
client_id = "${DEMO_POCKETFUL_CLIENT_ID}"
client_secret = "${DEMO_POCKETFUL_CLIENT_SECRET}"

[brokers.kite]
type = "kite"
api_key = "${DEMO_KITE_API_KEY}"
api_secret = "${DEMO_KITE_API_SECRET}"

[brokers.angelone]
type = "angelone"
api_key = "${DEMO_ANGELONE_API_KEY}"
client_code = "${DEMO_ANGELONE_CLIENT_CODE}"
pin = "${DEMO_ANGELONE_PIN}"
totp_secret = "${DEMO_ANGELONE_TOTP_SECRET}"

[brokers.upstox]
type = "upstox"
client_id = "${DEMO_UPSTOX_CLIENT_ID}"
client_secret = "${DEMO_UPSTOX_CLIENT_SECRET}"
`

// demoFakes are the running fake brokers.
type demoFakes struct {
	tg      *faketg.Fake
	tv      *faketv.Fake
	fp      *fake5p.Fake
	pf      *fakepf.Fake
	kt      *fakekt.Fake
	ao      *fakeao.Fake
	ux      *fakeux.Fake
	servers []*fakeca.Server
	resolve map[string]string
	caFile  string
	// ktLogin is the address of the fake Kite login page
	// (kite.zerodha.com), which a browser reaches directly, not through
	// the proxy.
	ktLogin string
}

func (f *demoFakes) close() {
	for _, s := range f.servers {
		_ = s.Close()
	}
}

func cmdDemo(ctx context.Context, args []string, e env) error {
	fs := newFlags("demo", e)
	once := fs.Bool("once", false, "exit after the sample requests instead of serving the dashboard until Ctrl-C")
	listenAddr := fs.String("listen", "127.0.0.1:8899", "address for the demo proxy (a free port is used if it is taken)")
	verbose := fs.Bool("verbose", false, "show the proxy's own log lines")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("demo takes no arguments")
	}
	dir, err := os.MkdirTemp("", "authproxy-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(dir)

	fakes, err := startDemoFakes(dir)
	if err != nil {
		return err
	}
	defer fakes.close()
	addr, err := demoListen(ctx, *listenAddr)
	if err != nil {
		return err
	}
	if !sameAddr(addr, *listenAddr) && !strings.HasSuffix(*listenAddr, ":0") {
		fmt.Fprintf(e.stdout, "%s is in use (another authproxy? `authproxy status` tells), so the demo listens on %s instead; pass --listen to choose.\n\n", *listenAddr, addr)
	}
	fakes.pf.SetRedirectURI("http://" + addr + "/callback/pocketful")
	fakes.kt.SetRedirectURL("http://" + addr + "/callback/kite")
	fakes.ux.SetRedirectURI("http://" + addr + "/callback/upstox")
	cfgPath, err := writeDemoConfig(dir, addr, fakes)
	if err != nil {
		return err
	}
	vars := demoVars()
	cfg, err := schema().Load(cfgPath, func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		return &configError{path: cfgPath, err: err}
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))

	w := e.stdout
	fmt.Fprintf(w, "authproxy demo: seven fake brokers on loopback, an authproxy in front of them, one request each.\n")
	fmt.Fprintf(w, "Nothing here is real: the brokers, their certificates and the credentials are made up for this run.\n\n")

	srvCtx, stop := context.WithCancel(ctx)
	defer stop()
	type started struct {
		addr string
		p    *proxy.Proxy
	}
	ready := make(chan started, 1)
	served := make(chan error, 1)
	go func() {
		served <- serve(srvCtx, cfg, logger, func(a string, p *proxy.Proxy) { ready <- started{a, p} })
	}()
	var run started
	select {
	case run = <-ready:
	case err := <-served:
		return fmt.Errorf("demo proxy: %w", err)
	case <-time.After(30 * time.Second):
		return errors.New("demo proxy did not start within 30s")
	}
	// stopProxy ends serve and waits (bounded) for tokens to be saved.
	stopProxy := func() error {
		stop()
		select {
		case err := <-served:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("demo proxy did not stop within 10s")
		}
	}

	client, err := demoClient(cfg.StateDir, run.addr)
	if err != nil {
		_ = stopProxy()
		return err
	}
	failed := demoRequests(ctx, w, client, run.addr, fakes)

	fmt.Fprintf(w, "Dashboard:  http://%s/   (JSON: /status, Prometheus: /metrics)\n\n", run.addr)
	self := selfCommand()
	fmt.Fprintf(w, "Use this proxy from another shell while the demo runs:\n")
	fmt.Fprintf(w, "  eval \"$(%s env --config %s)\"   # sh, bash, zsh\n", self, cfgPath)
	fmt.Fprintf(w, "  %s env --config %s --shell fish | source   # fish\n", self, cfgPath)
	fmt.Fprintf(w, "  curl -X POST https://%s/kb/OrderBook/GetOrderBookList \\\n", "tradingorestapi.swastika.co.in")
	fmt.Fprintf(w, "       -H 'Content-Type: application/json' -d '{\"Uid\":\"%s\"}'\n", demoTGClient)
	fmt.Fprintf(w, "With your own accounts: copy rules.toml, export your credentials, then `authproxy run` (see README).\n")

	if *once {
		fmt.Fprintf(w, "\n(--once: the demo stops now; run `authproxy demo` to keep it up.)\n")
	}
	if !*once && failed == 0 {
		fmt.Fprintf(w, "\nThe dashboard stays up until you press Ctrl-C.\n")
		select {
		case <-ctx.Done():
		case err := <-served:
			return fmt.Errorf("demo proxy: %w", err)
		}
		fmt.Fprintln(w)
	}
	if err := stopProxy(); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("demo: %d of %d sample requests failed", failed, demoSteps)
	}
	return nil
}

// startDemoFakes starts the seven fake brokers with certificates from a
// throwaway CA.
func startDemoFakes(dir string) (*demoFakes, error) {
	ca, err := fakeca.New()
	if err != nil {
		return nil, err
	}
	caFile, err := ca.WriteCertFile(dir)
	if err != nil {
		return nil, err
	}
	f := &demoFakes{
		tg: faketg.New(faketg.Options{ClientCode: demoTGClient, MPIN: demoTGMPIN, TOTPSecret: demoTGTOTP}),
		tv: faketv.New(faketv.Options{Username: demoTVUser, Password: demoTVPassword, AppID: demoTVAppID,
			AppVersion: demoTVVersion, CID: demoTVCID, Sec: demoTVSec, DeviceID: demoTVDevice}),
		fp: fake5p.New(fake5p.Options{AppKey: demoFPAppKey, UserID: demoFPUserID, EncryptionKey: demoFPEncKey,
			ClientCode: demoFPClient, PIN: demoFPPIN, TOTPSecret: demoFPTOTP}),
		pf: fakepf.New(fakepf.Options{AppID: demoPFAppID, AppSecret: demoPFAppSecret, ClientID: demoPFClientID}),
		kt: fakekt.New(fakekt.Options{APIKey: demoKTAPIKey, APISecret: demoKTAPISecret}),
		ao: fakeao.New(fakeao.Options{APIKey: demoAOAPIKey, ClientCode: demoAOClientCode, PIN: demoAOPIN,
			TOTPSecret: demoAOTOTP}),
		ux:      fakeux.New(fakeux.Options{ClientID: demoUXClientID, ClientSecret: demoUXClientSecret}),
		resolve: map[string]string{},
		caFile:  caFile,
	}
	for _, s := range []struct {
		h     http.Handler
		hosts []string
	}{
		{f.tg, []string{"tradingorestapi.swastika.co.in"}},
		{f.tv, faketv.Hosts()},
		{f.fp, []string{fake5p.APIHost, fake5p.VendorHost}},
		{f.pf, []string{"trade.pocketful.in"}},
		{f.kt, []string{fakekt.APIHost, fakekt.TickerHost, fakekt.LoginHost}},
		{f.ao, []string{fakeao.APIHost, fakeao.StreamHost}},
		{f.ux, []string{fakeux.APIHost, fakeux.OrderHost}},
	} {
		srv, err := ca.Serve(s.h, s.hosts...)
		if err != nil {
			f.close()
			return nil, err
		}
		f.servers = append(f.servers, srv)
		for _, h := range s.hosts {
			if h == fakekt.LoginHost {
				f.ktLogin = srv.Addr // not the proxy's: no resolve entry
				continue
			}
			f.resolve[h+":443"] = srv.Addr
		}
	}
	return f, nil
}

// demoListen picks the proxy's address: the one asked for if it is free,
// else a free port on the same host.
func demoListen(ctx context.Context, want string) (string, error) {
	host, port, err := net.SplitHostPort(want)
	if err != nil {
		return "", usagef("--listen %q: %v", want, err)
	}
	if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" {
		return "", usagef("--listen %q: the demo listens on loopback only", want)
	}
	var lc net.ListenConfig
	if port != "0" {
		if ln, err := lc.Listen(ctx, "tcp", want); err == nil {
			a := ln.Addr().String()
			ln.Close()
			return a, nil
		}
	}
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("demo: no free port on %s: %w", host, err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func writeDemoConfig(dir, addr string, f *demoFakes) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "# authproxy demo config: written by `authproxy demo`, deleted when it exits.\n")
	fmt.Fprintf(&b, "listen = %s\nstate_dir = %s\n\n[upstream]\nca_file = %s\ntimeout = \"10s\"\nresolve = { ",
		strconv.Quote(addr), strconv.Quote(filepath.Join(dir, "state")), strconv.Quote(f.caFile))
	hosts := make([]string, 0, len(f.resolve))
	for h := range f.resolve {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for i, h := range hosts {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s = %s", strconv.Quote(h), strconv.Quote(f.resolve[h]))
	}
	b.WriteString(" }\n")
	b.WriteString(demoAccounts)
	path := filepath.Join(dir, "rules.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	return path, nil
}

// demoClient is a script's HTTP client configured the way `authproxy env`
// configures one: the proxy for https, loopback direct, the local CA trusted.
func demoClient(stateDir, proxyAddr string) (*http.Client, error) {
	pem, err := os.ReadFile(filepath.Join(stateDir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, errors.New("demo: ca.pem holds no certificate")
	}
	proxyURL := &url.URL{Scheme: "http", Host: proxyAddr}
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			Proxy: func(r *http.Request) (*url.URL, error) {
				if ip := net.ParseIP(r.URL.Hostname()); ip != nil && ip.IsLoopback() {
					return nil, nil
				}
				return proxyURL, nil
			},
			TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		},
	}, nil
}

// demoRequests sends one request per broker and prints what the proxy
// added; it returns how many failed.
func demoRequests(ctx context.Context, w io.Writer, c *http.Client, addr string, f *demoFakes) int {
	failed := 0
	step := func(name string, fn func() ([]string, error)) {
		lines, err := fn()
		fmt.Fprintf(w, "%s\n", name)
		for _, l := range lines {
			fmt.Fprintf(w, "  %s\n", l)
		}
		if err != nil {
			failed++
			fmt.Fprintf(w, "  FAILED: %v\n", err)
		}
		fmt.Fprintln(w)
	}
	step("Tradingo (TOTP + MPIN login, done by the proxy)", func() ([]string, error) {
		u := "https://tradingorestapi.swastika.co.in/kb/OrderBook/GetOrderBookList"
		body := `{"Uid":"` + demoTGClient + `"}`
		line, err := demoDo(ctx, c, http.MethodPost, u, body)
		out := []string{line, "the script sent: no credentials, body " + body}
		if err != nil {
			return out, err
		}
		reqs := f.tg.Requests()
		if len(reqs) == 0 {
			return out, errors.New("the fake saw no request")
		}
		return append(out, "the proxy added: Authorization: "+redactAuth(reqs[len(reqs)-1].Authorization)), nil
	})
	step("Tradovate (credentials + app secret; 90-minute token renewed ahead of expiry)", func() ([]string, error) {
		u := "https://" + faketv.HostDemo + "/v1/account/list"
		line, err := demoDo(ctx, c, http.MethodGet, u, "")
		out := []string{line, "the script sent: no credentials"}
		if err != nil {
			return out, err
		}
		reqs := f.tv.Requests()
		if len(reqs) == 0 {
			return out, errors.New("the fake saw no request")
		}
		return append(out, "the proxy added: Authorization: "+redactAuth(reqs[len(reqs)-1].Authorization)), nil
	})
	step("5paisa (TOTP login and request-token exchange; credentials inside the JSON body)", func() ([]string, error) {
		u := "https://" + fake5p.APIHost + fake5p.ServicePrefix + "V3/OrderBook"
		body := `{"head":{},"body":{}}`
		line, err := demoDo(ctx, c, http.MethodPost, u, body)
		out := []string{line, "the script sent: no credentials, body " + body}
		if err != nil {
			return out, err
		}
		reqs := f.fp.Requests()
		if len(reqs) == 0 {
			return out, errors.New("the fake saw no request")
		}
		r := reqs[len(reqs)-1]
		return append(out, "the proxy added: Authorization: "+redactAuth(r.Authorization),
			"                 body.head.key = "+redactSecret(r.HeadKey)+" (your app key)",
			"                 body.body.ClientCode = "+strconv.Quote(r.ClientCode)), nil
	})
	step("Pocketful (browser OAuth login, once a day)", func() ([]string, error) {
		loginURL := "http://" + addr + "/login/pocketful"
		var out []string
		hops, title, err := demoBrowserLogin(ctx, c, loginURL)
		out = append(out, "browser: "+strings.Join(hops, " -> "))
		if err != nil {
			return out, err
		}
		out = append(out, "the page says: "+title+" (the fake consent page approves at once; a person logs in there)")
		u := "https://trade.pocketful.in/api/v1/holdings"
		line, err := demoDo(ctx, c, http.MethodGet, u, "")
		out = append(out, line, "the script sent: no credentials, no client_id")
		if err != nil {
			return out, err
		}
		reqs := f.pf.Requests()
		if len(reqs) == 0 {
			return out, errors.New("the fake saw no request")
		}
		r := reqs[len(reqs)-1]
		q, _ := url.ParseQuery(r.RawQuery)
		return append(out, "the proxy added: Authorization: "+redactAuth(r.Authorization),
			"                 ?client_id="+q.Get("client_id")), nil
	})
	step("Zerodha Kite (browser login once a day; Zerodha's own login page)", func() ([]string, error) {
		var out []string
		bc, err := demoKiteBrowser(c, f)
		if err != nil {
			return out, err
		}
		hops, title, err := demoBrowserLogin(ctx, bc, "http://"+addr+"/login/kite")
		out = append(out, "browser: "+strings.Join(hops, " -> "))
		if err != nil {
			return out, err
		}
		out = append(out, "the page says: "+title+" (the fake login page approves at once; a person logs in there)")
		line, err := demoDo(ctx, c, http.MethodGet, "https://"+fakekt.APIHost+"/user/profile", "")
		out = append(out, line, "the script sent: no credentials, no X-Kite-Version")
		if err != nil {
			return out, err
		}
		reqs := f.kt.Requests()
		if len(reqs) == 0 {
			return out, errors.New("the fake saw no request")
		}
		r := reqs[len(reqs)-1]
		return append(out, "the proxy added: Authorization: "+redactAuth(r.Authorization)+" (api_key:access_token)",
			"                 X-Kite-Version: "+r.Header.Get("X-Kite-Version")), nil
	})
	step("Angel One SmartAPI (TOTP + PIN login, done by the proxy; renewed with its refresh token)", func() ([]string, error) {
		u := "https://" + fakeao.APIHost + "/rest/secure/angelbroking/user/v1/getRMS"
		line, err := demoDo(ctx, c, http.MethodGet, u, "")
		out := []string{line, "the script sent: no credentials, no X-PrivateKey"}
		if err != nil {
			return out, err
		}
		reqs := f.ao.Requests()
		if len(reqs) == 0 {
			return out, errors.New("the fake saw no request")
		}
		r := reqs[len(reqs)-1]
		return append(out, "the proxy added: Authorization: "+redactAuth(r.Authorization),
			"                 X-PrivateKey: "+redactSecret(r.Header.Get("X-PrivateKey"))+" (your API key)"), nil
	})
	step("Upstox (browser OAuth login, once a day)", func() ([]string, error) {
		var out []string
		hops, title, err := demoBrowserLogin(ctx, c, "http://"+addr+"/login/upstox")
		out = append(out, "browser: "+strings.Join(hops, " -> "))
		if err != nil {
			return out, err
		}
		out = append(out, "the page says: "+title+" (the fake dialog approves at once; a person logs in there)")
		line, err := demoDo(ctx, c, http.MethodGet, "https://"+fakeux.APIHost+"/v2/user/profile", "")
		out = append(out, line, "the script sent: no credentials")
		if err != nil {
			return out, err
		}
		reqs := f.ux.Requests()
		if len(reqs) == 0 {
			return out, errors.New("the fake saw no request")
		}
		return append(out, "the proxy added: Authorization: "+redactAuth(reqs[len(reqs)-1].Authorization)), nil
	})
	return failed
}

// demoSteps is how many sample requests demoRequests sends.
const demoSteps = 7

// demoKiteBrowser is c as a person's browser for Kite's login: Zerodha's
// login page (kite.zerodha.com, not a host the proxy claims) is reached
// directly, here the fake's, trusted by the demo's throwaway CA; everything
// else goes as c sends it.
func demoKiteBrowser(c *http.Client, f *demoFakes) (*http.Client, error) {
	base, ok := c.Transport.(*http.Transport)
	if !ok {
		return nil, errors.New("demo: unexpected client transport")
	}
	pem, err := os.ReadFile(f.caFile)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	tr := base.Clone()
	roots := tr.TLSClientConfig.RootCAs.Clone()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, errors.New("demo: the fake brokers' CA file holds no certificate")
	}
	tr.TLSClientConfig.RootCAs = roots
	viaProxy := base.Proxy
	tr.Proxy = func(r *http.Request) (*url.URL, error) {
		if strings.EqualFold(r.URL.Hostname(), fakekt.LoginHost) {
			return nil, nil
		}
		return viaProxy(r)
	}
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
		if strings.EqualFold(a, fakekt.LoginHost+":443") {
			a = f.ktLogin
		}
		return d.DialContext(ctx, network, a)
	}
	bc := *c
	bc.Transport = tr
	return &bc, nil
}

// demoDo sends one request and describes the answer in a line.
func demoDo(ctx context.Context, c *http.Client, method, u, body string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	line := method + " " + u
	resp, err := c.Do(req)
	if err != nil {
		return line, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	line += " -> " + resp.Status + ": " + summarize(data)
	if resp.StatusCode != http.StatusOK {
		return line, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return line, nil
}

// summarize shortens a JSON answer to one line.
func summarize(data []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, data) == nil {
		data = buf.Bytes()
	}
	s := strings.Join(strings.Fields(string(data)), " ")
	if len(s) > 110 {
		s = s[:110] + "…"
	}
	return s
}

// demoBrowserLogin follows /login/NAME the way a browser does and returns
// the hops (hosts and paths only) and the final page's heading.
func demoBrowserLogin(ctx context.Context, c *http.Client, loginURL string) ([]string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var hops []string
	bc := *c
	bc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("too many redirects")
		}
		hops = append(hops, req.URL.Host+req.URL.Path)
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loginURL, nil)
	if err != nil {
		return nil, "", err
	}
	u, _ := url.Parse(loginURL)
	hops = append(hops, u.Host+u.Path)
	resp, err := bc.Do(req)
	if err != nil {
		return hops, "", err
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	title := between(string(page), "<h1", "</h1>")
	if i := strings.Index(title, ">"); i >= 0 {
		title = title[i+1:]
	}
	if resp.StatusCode != http.StatusOK || title != "Logged in" {
		return hops, title, fmt.Errorf("login ended with HTTP %d %q: %s", resp.StatusCode, title, between(string(page), `<p id="message">`, "</p>"))
	}
	return hops, title, nil
}

func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, to)
	return v
}

// redactAuth shows an Authorization value's scheme and the token's shape,
// never the token: "Bearer eyJh…(redacted, 312 chars)".
func redactAuth(v string) string {
	if v == "" {
		return "(none)"
	}
	scheme, tok, ok := strings.Cut(v, " ")
	if !ok {
		return redactSecret(v)
	}
	return scheme + " " + redactSecret(tok)
}

// redactSecret keeps only a JWT's constant "eyJh" opening and the length.
func redactSecret(v string) string {
	if v == "" {
		return "(none)"
	}
	prefix := ""
	if strings.HasPrefix(v, "eyJ") && len(v) > 20 {
		prefix = v[:4]
	}
	return fmt.Sprintf("%s…(redacted, %d chars)", prefix, len(v))
}
