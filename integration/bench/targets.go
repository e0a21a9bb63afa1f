package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/tradingo"
	"github.com/authproxy/authproxy/certs"
	"github.com/authproxy/authproxy/proxy"
)

// Tradingo account values (not real credentials; the origin never sees a
// login because the token is already cached).
const (
	tgAccount    = "tg"
	tgClientCode = "GO11240"
	tgMPIN       = "4821"
	tgTOTPSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
)

// target is one way of reaching the origin: directly, or through a proxy.
type target struct {
	name     string
	proxyURL *url.URL       // nil: direct
	roots    *x509.CertPool // what the client trusts for brokerHost
	pid      int            // process to measure; 0: none
	inproc   bool           // the proxy runs inside the bench process
	stop     func()
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (t *target) direct() bool { return t.proxyURL == nil }

// clientTLS returns the client TLS config for t.
func (t *target) clientTLS(roots *x509.CertPool, sessions tls.ClientSessionCache, curves []tls.CurveID) *tls.Config {
	if roots == nil {
		roots = t.roots
	}
	return &tls.Config{RootCAs: roots, ClientSessionCache: sessions, CurvePreferences: curves}
}

// transport builds a client transport for t. maxIdle is the idle pool per
// host (the keep-alive rows size it to their concurrency).
func (t *target) transport(sessions tls.ClientSessionCache, curves []tls.CurveID, maxIdle int) *http.Transport {
	return t.transportTrusting(nil, sessions, curves, maxIdle)
}

// transportTrusting is transport with other roots (nil: t's own).
func (t *target) transportTrusting(roots *x509.CertPool, sessions tls.ClientSessionCache, curves []tls.CurveID, maxIdle int) *http.Transport {
	tr := &http.Transport{
		DialContext:           t.dial,
		TLSClientConfig:       t.clientTLS(roots, sessions, curves),
		MaxIdleConnsPerHost:   maxIdle,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   20 * time.Second,
		ResponseHeaderTimeout: 20 * time.Second,
		DisableCompression:    true,
	}
	if t.proxyURL != nil {
		tr.Proxy = http.ProxyURL(t.proxyURL)
	}
	return tr
}

func directTarget(o *originRef) *target {
	return &target{name: "direct", roots: o.roots, dial: o.directDialer(), stop: func() {}}
}

func plainDialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return d.DialContext
}

// prepareState writes tokens.json with a long-lived cached token for the
// account, in auth.FileStore's format, so the proxy never logs in.
func prepareState(stateDir, token string) error {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return err
	}
	now := time.Now()
	tok := &auth.Token{Access: auth.Secret(token), Expiry: now.Add(365 * 24 * time.Hour), Obtained: now.Add(-time.Minute)}
	return auth.NewFileStore(filepath.Join(stateDir, "tokens.json")).Save(context.Background(), tgAccount, tok)
}

// writeConfig writes rules.toml for the bench account.
func writeConfig(dir, stateDir string, o *originRef) (string, error) {
	cfg := fmt.Sprintf(`listen = "127.0.0.1:0"
state_dir = %q

[upstream]
ca_file = %q
timeout = "10s"
resolve = { %q = %q }

[brokers.%s]
type = "tradingo"
client_code = "${TG_CLIENT_CODE}"
mpin = "${TG_MPIN}"
totp_secret = "${TG_TOTP_SECRET}"
`, stateDir, o.caFile, brokerHost+":443", o.addr, tgAccount)
	path := filepath.Join(dir, "rules.toml")
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

func caPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no certificates", path)
	}
	return pool, nil
}

// buildAuthproxy builds the real binary (no -race) into dir.
func buildAuthproxy(dir string) (string, error) {
	bin := filepath.Join(dir, "authproxy")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/authproxy/authproxy/cmd/authproxy")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build authproxy: %w", err)
	}
	return bin, nil
}

// cleanEnv is the environment without proxy variables.
func cleanEnv(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY", "AUTHPROXY_CONFIG", "GODEBUG":
			continue
		}
		out = append(out, kv)
	}
	return append(out, extra...)
}

// startAuthproxy runs `authproxy run` on a prepared state dir and waits until
// it listens (state_dir/proxy.json names the bound address).
func startAuthproxy(bin, dir string, o *originRef, token string, extraArgs, extraEnv []string) (*target, error) {
	stateDir := filepath.Join(dir, "state")
	if err := prepareState(stateDir, token); err != nil {
		return nil, err
	}
	cfg, err := writeConfig(dir, stateDir, o)
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "authproxy.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	// A proxy.json left by a killed predecessor would name its old address.
	_ = os.Remove(filepath.Join(stateDir, "proxy.json"))
	args := append([]string{"run", "--config", cfg}, extraArgs...)
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv(append([]string{"TG_CLIENT_CODE=" + tgClientCode, "TG_MPIN=" + tgMPIN, "TG_TOTP_SECRET=" + tgTOTPSecret}, extraEnv...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	exited, stop, err := startChild(cmd, logf)
	if err != nil {
		return nil, err
	}
	addr, err := waitRuntime(stateDir, exited, 30*time.Second)
	if err != nil {
		stop()
		out, _ := os.ReadFile(filepath.Join(dir, "authproxy.log"))
		return nil, fmt.Errorf("authproxy did not start: %w\n%s", err, out)
	}
	roots, err := caPool(filepath.Join(stateDir, "ca.pem"))
	if err != nil {
		stop()
		return nil, err
	}
	return &target{name: "authproxy", proxyURL: &url.URL{Scheme: "http", Host: addr}, roots: roots,
		pid: cmd.Process.Pid, stop: stop, dial: plainDialer()}, nil
}

func waitRuntime(stateDir string, exited <-chan struct{}, limit time.Duration) (string, error) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return "", errors.New("process exited")
		default:
		}
		data, err := os.ReadFile(filepath.Join(stateDir, "proxy.json"))
		if err == nil {
			var rt struct {
				Addr string `json:"addr"`
			}
			if json.Unmarshal(data, &rt) == nil && rt.Addr != "" {
				return rt.Addr, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "", fmt.Errorf("no proxy.json within %s", limit)
}

// startInproc wires authproxy inside this process the way `authproxy run`
// does (FileStore, auth.Cache, tradingo broker, proxy.New, net/http server),
// for profiling with runtime/pprof.
func startInproc(dir string, o *originRef, token string) (*target, error) {
	stateDir := filepath.Join(dir, "state-inproc")
	if err := prepareState(stateDir, token); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "inproc.log"))
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ca, err := certs.LoadOrCreate(stateDir, certs.Options{PermittedDNS: []string{"swastika.co.in"}, Logger: logger})
	if err != nil {
		return nil, err
	}
	up := proxy.UpstreamOptions{CAFile: o.caFile, Resolve: map[string]string{brokerHost + ":443": o.addr}, Timeout: 10 * time.Second}
	tr, err := proxy.NewTransport(up)
	if err != nil {
		return nil, err
	}
	b, err := tradingo.New(tradingo.Config{Account: tgAccount, ClientCode: tgClientCode, MPIN: auth.Secret(tgMPIN),
		TOTPSecret: auth.Secret(tgTOTPSecret)}, auth.NewHTTPClient(tr, logger, auth.RetryOptions{}), nil, logger)
	if err != nil {
		return nil, err
	}
	// As `authproxy run` wires it: metrics and dashboard observe every
	// request and cache event.
	var p *proxy.Proxy
	status := func() proxy.StatusReport { return p.Status() }
	metrics := proxy.NewMetrics(status)
	dash := proxy.NewDashboard(proxy.DashboardOptions{Status: status})
	pages := http.NewServeMux()
	pages.Handle("GET /metrics", metrics)
	pages.Handle("/", dash)
	onEvent := func(ev auth.Event) { metrics.OnEvent(ev); dash.OnEvent(ev) }
	cache := auth.NewCache(tgAccount, b, auth.NewFileStore(filepath.Join(stateDir, "tokens.json")),
		auth.CacheOptions{Logger: logger, OnEvent: onEvent})
	if err := cache.Load(context.Background()); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p, err = proxy.New(proxy.Options{Logger: logger, Listen: ln.Addr().String(), CA: ca, Passthrough: true, Upstream: up,
		Accounts: []*proxy.Account{{Name: tgAccount, Type: "tradingo", Hosts: []string{brokerHost}, Broker: b, Source: cache}},
		Extra:    pages,
		Observe:  func(rec proxy.RequestRecord) { metrics.Observe(rec); dash.Observe(rec) }})
	if err != nil {
		ln.Close()
		return nil, err
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 5 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)}
	go func() { _ = srv.Serve(ln) }()
	roots, err := caPool(ca.CertPath())
	if err != nil {
		return nil, err
	}
	return &target{name: "authproxy", proxyURL: &url.URL{Scheme: "http", Host: ln.Addr().String()}, roots: roots,
		pid: os.Getpid(), inproc: true, dial: plainDialer(), stop: func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
			_ = p.Shutdown(ctx)
			logf.Close()
		}}, nil
}

// mitmAddon is the header-injection addon for mitmdump, equivalent to what
// authproxy does with a cached token: route the broker host to the origin
// (like [upstream] resolve) and replace Authorization.
const mitmAddon = `
HOST = %q
TARGET = ("127.0.0.1", %d)
VALUE = %q

class Inject:
    def server_connect(self, data):
        addr = data.server.address
        if addr and addr[0].lower() == HOST:
            data.server.address = TARGET

    def request(self, flow):
        if flow.request.pretty_host.lower() == HOST:
            flow.request.headers["Authorization"] = VALUE

addons = [Inject()]
`

// findMitmdump returns mitmdump's path, installing the Debian package when
// it is missing and we are root. note explains why it is unavailable.
func findMitmdump() (path, note string) {
	if p, err := exec.LookPath("mitmdump"); err == nil {
		return p, ""
	}
	if os.Geteuid() != 0 {
		return "", "mitmdump not installed and not root (apt-get install mitmproxy)"
	}
	fmt.Fprintln(os.Stderr, "mitmdump missing: running apt-get install -y mitmproxy ...")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "mitmproxy")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		tail := string(out)
		if len(tail) > 300 {
			tail = tail[len(tail)-300:]
		}
		return "", "apt-get install mitmproxy failed: " + err.Error() + ": " + strings.TrimSpace(tail)
	}
	if p, err := exec.LookPath("mitmdump"); err == nil {
		return p, ""
	}
	return "", "mitmdump still not found after installing mitmproxy"
}

// startMitmdump runs mitmdump with the injection addon, trusting the
// origin's CA upstream, and waits until its CA exists and it accepts.
func startMitmdump(exe, dir string, o *originRef, token string) (*target, error) {
	_, portStr, _ := net.SplitHostPort(o.addr)
	originPort, _ := strconv.Atoi(portStr)
	addon := filepath.Join(dir, "inject_addon.py")
	if err := os.WriteFile(addon, fmt.Appendf(nil, mitmAddon, brokerHost, originPort, "Bearer "+token), 0o600); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	confdir := filepath.Join(dir, "mitmproxy")
	logf, err := os.OpenFile(filepath.Join(dir, "mitmdump.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "--quiet", "--listen-host", "127.0.0.1", "--listen-port", strconv.Itoa(port),
		"--set", "confdir="+confdir, "--set", "ssl_verify_upstream_trusted_ca="+o.caFile, "-s", addon)
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	exited, stop, err := startChild(cmd, logf)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	caFile := filepath.Join(confdir, "mitmproxy-ca-cert.pem")
	deadline := time.Now().Add(45 * time.Second)
	for {
		select {
		case <-exited:
			out, _ := os.ReadFile(filepath.Join(dir, "mitmdump.log"))
			return nil, fmt.Errorf("mitmdump exited at start:\n%s", out)
		default:
		}
		if _, err := os.Stat(caFile); err == nil {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			return nil, errors.New("mitmdump did not start within 45s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	roots, err := caPool(caFile)
	if err != nil {
		stop()
		return nil, err
	}
	return &target{name: "mitmdump", proxyURL: &url.URL{Scheme: "http", Host: addr}, roots: roots,
		pid: cmd.Process.Pid, stop: stop, dial: plainDialer()}, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startChild starts cmd, whose output goes to logf (closed when the process
// ends). stop sends SIGTERM and kills the process if it has not exited
// within 10 s; it returns at once if the process already ended.
func startChild(cmd *exec.Cmd, logf *os.File) (<-chan struct{}, func(), error) {
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	stop := func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	return exited, stop, nil
}
