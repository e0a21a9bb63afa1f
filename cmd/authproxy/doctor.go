package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/proxy"
)

// Finding levels.
const (
	levelOK   = "ok"
	levelWarn = "warn"
	levelFail = "fail"
)

// finding is one line of `authproxy doctor`.
type finding struct {
	level string
	check string
	msg   string
	fix   string
}

// doctor diagnoses what stands between a script and the proxy.
type doctor struct {
	e       env
	cfg     *config.Config
	timeout time.Duration
	out     []finding

	addr   string // where the proxy answers ("" if it does not)
	caPath string
	ca     *x509.Certificate // nil when there is no local CA yet
	// lookPath is exec.LookPath; tests may replace it.
	lookPath func(string) (string, error)
}

func cmdDoctor(ctx context.Context, args []string, e env) error {
	var cf commonFlags
	fs := newFlags("doctor", e)
	cf.register(fs, false)
	timeout := fs.Duration("timeout", 5*time.Second, "time limit for each network check")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("doctor takes no arguments")
	}
	cfg, err := loadConfig(&cf, e)
	if err != nil {
		printFindings(e.stdout, []finding{{levelFail, "config", err.Error(),
			"fix the file (authproxy check --config FILE names each bad key and its line), or point --config / $AUTHPROXY_CONFIG at the right one"}})
		return errSilent
	}
	if abs, err := filepath.Abs(cfg.Path); err == nil && cfg.Path != "" {
		cfg.Path = abs
	}
	d := &doctor{e: e, cfg: cfg, timeout: *timeout, lookPath: exec.LookPath}
	d.run(ctx)
	printFindings(e.stdout, d.out)
	for _, f := range d.out {
		if f.level == levelFail {
			return errSilent
		}
	}
	return nil
}

func (d *doctor) add(level, check, msg, fix string) {
	d.out = append(d.out, finding{level: level, check: check, msg: msg, fix: fix})
}

func printFindings(w io.Writer, fs []finding) {
	counts := map[string]int{}
	for _, f := range fs {
		counts[f.level]++
		fmt.Fprintf(w, "%-4s  %-9s %s\n", f.level, f.check, f.msg)
		if f.fix != "" && f.level != levelOK {
			fmt.Fprintf(w, "      %-9s fix: %s\n", "", f.fix)
		}
	}
	fmt.Fprintf(w, "\n%d ok, %d warnings, %d failures\n", counts[levelOK], counts[levelWarn], counts[levelFail])
}

func (d *doctor) run(ctx context.Context) {
	d.add(levelOK, "config", fmt.Sprintf("%s: %d account(s)", d.cfg.Path, len(d.cfg.Accounts)), "")
	d.checkProxy(ctx)
	d.checkCA()
	d.checkProxyEnv()
	d.checkNoProxy()
	d.checkCurl(ctx)
	d.checkPython(ctx)
	d.checkNode()
	d.checkRedirects()
	d.checkEgress(ctx)
	d.checkClock(ctx)
	d.checkAccounts(ctx)
}

// runCmd is the command line that starts this config's proxy.
func (d *doctor) runCmd() string {
	if d.cfg.Path == "" {
		return "authproxy run"
	}
	return "authproxy run --config " + d.cfg.Path
}

func (d *doctor) envCmd() string {
	if d.cfg.Path == "" {
		return `eval "$(authproxy env)"`
	}
	return `eval "$(authproxy env --config ` + d.cfg.Path + `)"`
}

func (d *doctor) checkProxy(ctx context.Context) {
	addr := proxyAddr(d.cfg)
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		d.add(levelFail, "proxy", "nothing answers at "+addr+": "+shortErr(err),
			"start it: "+d.runCmd()+" (or try `authproxy demo`, which needs no accounts)")
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "ok") {
		d.add(levelFail, "proxy", fmt.Sprintf("something else answers at %s (/healthz: HTTP %d)", addr, resp.StatusCode),
			"another program holds the port: stop it, or give authproxy another listen address in "+d.cfg.Path)
		return
	}
	d.addr = addr
	msg := "running at " + addr
	if rt, err := readRuntime(d.cfg.StateDir); err == nil && rt.PID > 0 {
		msg += fmt.Sprintf(" (pid %d)", rt.PID)
	}
	d.add(levelOK, "proxy", msg, "")
}

func (d *doctor) checkCA() {
	d.caPath = filepath.Join(d.cfg.StateDir, "ca.pem")
	data, err := os.ReadFile(d.caPath)
	if err != nil {
		d.add(levelFail, "ca", "no local CA at "+d.caPath+": "+shortErr(err),
			"start the proxy once ("+d.runCmd()+"): it creates the CA and bundle.pem in "+d.cfg.StateDir)
		return
	}
	certs := parseCerts(data)
	if len(certs) == 0 {
		d.add(levelFail, "ca", d.caPath+" holds no certificate", "run `authproxy ca rotate` to issue a new CA, then restart the proxy")
		return
	}
	d.ca = certs[0]
	now := time.Now()
	switch {
	case now.After(d.ca.NotAfter):
		d.add(levelFail, "ca", "the local CA expired on "+d.ca.NotAfter.Format(time.DateOnly),
			"run `authproxy ca rotate`, restart the proxy, and re-run "+d.envCmd())
	case d.ca.NotAfter.Sub(now) < 30*24*time.Hour:
		d.add(levelWarn, "ca", "the local CA expires on "+d.ca.NotAfter.Format(time.DateOnly),
			"run `authproxy ca rotate` soon and re-trust it")
	default:
		d.add(levelOK, "ca", d.caPath+" (valid until "+d.ca.NotAfter.Format(time.DateOnly)+")", "")
	}
}

// proxyURLAddr extracts host:port from a proxy variable's value.
func proxyURLAddr(v string) (scheme, addr string, err error) {
	if !strings.Contains(v, "://") {
		v = "http://" + v
	}
	u, err := url.Parse(v)
	if err != nil {
		return "", "", err
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return u.Scheme, net.JoinHostPort(u.Hostname(), port), nil
}

// sameAddr compares host:port pairs, taking localhost as loopback.
func sameAddr(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb {
		return false
	}
	norm := func(h string) string {
		h = strings.ToLower(h)
		if h == "localhost" {
			return "127.0.0.1"
		}
		if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
			return "127.0.0.1"
		}
		return h
	}
	return norm(ha) == norm(hb)
}

func (d *doctor) checkProxyEnv() {
	want := d.addr
	if want == "" {
		want = proxyAddr(d.cfg)
	}
	fix := "run " + d.envCmd() + " in this shell (fish: authproxy env --shell fish | source; a notebook: authproxy env --python)"
	var set []string
	for _, k := range []string{"HTTPS_PROXY", "https_proxy"} {
		v, ok := d.e.lookupEnv(k)
		if !ok || v == "" {
			continue
		}
		scheme, addr, err := proxyURLAddr(v)
		switch {
		case err != nil:
			d.add(levelFail, "env", fmt.Sprintf("%s=%q is not a URL: %v", k, v, err), fix)
			return
		case scheme != "http":
			d.add(levelFail, "env", fmt.Sprintf("%s=%s: authproxy speaks plain http:// to its clients, not %s://", k, redactURL(v), scheme), fix)
			return
		case !sameAddr(addr, want):
			d.add(levelFail, "env", fmt.Sprintf("%s points at %s, but the proxy is at %s", k, addr, want), fix)
			return
		}
		set = append(set, k)
	}
	if len(set) == 0 {
		d.add(levelFail, "env", "HTTPS_PROXY is not set in this shell: scripts go straight to the brokers, without credentials", fix)
		return
	}
	msg := strings.Join(set, " and ") + " point at the proxy (" + want + ")"
	if len(set) == 1 {
		msg = set[0] + " points at the proxy (" + want + ")"
	}
	d.add(levelOK, "env", msg, "")
}

// redactURL hides a password in a proxy URL.
func redactURL(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return v
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	}
	return u.String()
}

// brokerHosts lists every literal (non-wildcard) broker host, each once.
func (d *doctor) brokerHosts() []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range d.cfg.Accounts {
		for _, h := range a.Hosts {
			if !strings.HasPrefix(h, "*.") && !seen[h] {
				seen[h] = true
				out = append(out, h)
			}
		}
	}
	return out
}

// noProxyMatch reports the NO_PROXY entry that sends host around the proxy
// in curl or Python requests: "*" matches everything; an entry matches the
// host itself and its subdomains (a leading "." or "*." changes nothing);
// requests also matches any plain suffix ("paisa.com" matches
// "openapi.5paisa.com"). IP and CIDR entries never match a name.
func noProxyMatch(noProxy, host string) (entry, why string, ok bool) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, raw := range strings.FieldsFunc(noProxy, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		e := strings.ToLower(strings.TrimSpace(raw))
		if e == "" {
			continue
		}
		if e == "*" {
			return raw, "'*' bypasses the proxy for every host", true
		}
		name := e
		if h, port, err := net.SplitHostPort(e); err == nil {
			if port != "443" {
				continue // only that port is bypassed
			}
			name = h
		}
		if strings.Contains(name, "/") || net.ParseIP(strings.Trim(name, "[]")) != nil {
			continue
		}
		name = strings.TrimPrefix(name, "*")
		name = strings.TrimSuffix(strings.TrimPrefix(name, "."), ".")
		if name == "" {
			continue
		}
		switch {
		case host == name:
			return raw, "it names the host", true
		case strings.HasSuffix(host, "."+name):
			return raw, "it matches the host's domain", true
		case strings.HasSuffix(host, name):
			return raw, "Python requests matches any suffix", true
		}
	}
	return "", "", false
}

func (d *doctor) checkNoProxy() {
	hosts := d.brokerHosts()
	bad := 0
	for _, k := range []string{"NO_PROXY", "no_proxy"} {
		v, ok := d.e.lookupEnv(k)
		if !ok || v == "" {
			continue
		}
		for _, h := range hosts {
			if entry, why, hit := noProxyMatch(v, h); hit {
				bad++
				d.add(levelFail, "no_proxy", fmt.Sprintf("%s entry %q sends %s around the proxy (%s)", k, entry, h, why),
					fmt.Sprintf("remove %q from %s; loopback is all it needs: %s=127.0.0.1,localhost,::1", entry, k, k))
			}
		}
	}
	if bad == 0 {
		d.add(levelOK, "no_proxy", "NO_PROXY/no_proxy leave every broker host to the proxy", "")
	}
}

// parseCerts returns every certificate in PEM data.
func parseCerts(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for len(data) > 0 {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// bundleTrust reads a CA bundle: does it hold the local CA, and what pool
// does it make.
func (d *doctor) bundleTrust(path string) (has bool, pool *x509.CertPool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 32<<20))
	if err != nil {
		return false, nil, err
	}
	pool = x509.NewCertPool()
	for _, c := range parseCerts(data) {
		pool.AddCert(c)
		if d.ca != nil && bytes.Equal(c.Raw, d.ca.Raw) {
			has = true
		}
	}
	return has, pool, nil
}

// systemBundles are where curl and OpenSSL look by default.
func systemBundles() []string {
	return []string{
		"/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine
		"/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
		"/etc/ssl/cert.pem",                  // macOS, OpenBSD
	}
}

// curlBundle is the bundle curl uses in this environment.
func (d *doctor) curlBundle() (path, from string) {
	for _, k := range []string{"CURL_CA_BUNDLE", "SSL_CERT_FILE"} {
		if v, ok := d.e.lookupEnv(k); ok && v != "" {
			return v, "$" + k
		}
	}
	for _, p := range systemBundles() {
		if _, err := os.Stat(p); err == nil {
			return p, "the system bundle"
		}
	}
	return "", ""
}

func (d *doctor) checkCurl(ctx context.Context) {
	if d.ca == nil {
		d.add(levelWarn, "curl", "skipped: no local CA yet", "")
		return
	}
	fix := "run " + d.envCmd() + " (it sets CURL_CA_BUNDLE and SSL_CERT_FILE to " + filepath.Join(d.cfg.StateDir, "bundle.pem") + ")"
	path, from := d.curlBundle()
	if path == "" {
		d.add(levelFail, "curl", "no CA bundle found for curl", fix)
		return
	}
	has, pool, err := d.bundleTrust(path)
	switch {
	case err != nil:
		d.add(levelFail, "curl", from+" ("+path+") cannot be read: "+shortErr(err), fix)
		return
	case !has:
		d.add(levelFail, "curl", from+" ("+path+") does not contain the authproxy CA: curl will refuse the broker hosts' certificates", fix)
		return
	}
	msg := from + " (" + path + ") contains the authproxy CA"
	if d.addr != "" {
		if host := d.firstHost(); host != "" {
			if err := d.handshake(ctx, host, pool); err != nil {
				var ce *tls.CertificateVerificationError
				if errors.As(err, &ce) {
					d.add(levelFail, "curl", msg+", but the proxy's certificate for "+host+" does not verify against it: "+shortErr(err),
						"restart the proxy (it may hold an older CA than "+d.caPath+"), then re-run "+d.envCmd())
				} else {
					d.add(levelFail, "curl", msg+", but a TLS connection to "+host+" through the proxy failed: "+shortErr(err), fix)
				}
				return
			}
			msg += "; the proxy's certificate for " + host + " verifies against it"
		}
	}
	d.add(levelOK, "curl", msg, "")
}

func (d *doctor) firstHost() string {
	if hs := d.brokerHosts(); len(hs) > 0 {
		return hs[0]
	}
	return ""
}

// handshake opens a CONNECT tunnel to host:443 through the proxy and does a
// TLS handshake verified against pool, as a client would. No request is
// sent, so no broker is contacted.
func (d *doctor) handshake(ctx context.Context, host string, pool *x509.CertPool) error {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	target := net.JoinHostPort(host, "443")
	auth := ""
	if user := d.proxyUser(); user != nil {
		pass, _ := user.Password()
		auth = "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user.Username()+":"+pass)) + "\r\n"
	}
	if _, err := fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", target, target, auth); err != nil {
		return err
	}
	// Read the CONNECT answer byte by byte so no TLS bytes are swallowed.
	var head []byte
	one := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if len(head) > 8<<10 {
			return errors.New("CONNECT answer too long")
		}
		if _, err := conn.Read(one); err != nil {
			return fmt.Errorf("CONNECT: %w", err)
		}
		head = append(head, one[0])
	}
	status, _, _ := strings.Cut(string(head), "\r\n")
	switch {
	case strings.Contains(status, " 407"):
		return errors.New("the proxy wants [proxy_auth] credentials: put USER:PASSWORD@ after http:// in HTTPS_PROXY")
	case !strings.Contains(status, " 200"):
		return fmt.Errorf("CONNECT refused: %s", status)
	}
	tc := tls.Client(conn, &tls.Config{ServerName: host, RootCAs: pool, MinVersion: tls.VersionTLS12})
	defer tc.Close()
	return tc.HandshakeContext(ctx)
}

// proxyUser is the user name and password in HTTPS_PROXY, if any.
func (d *doctor) proxyUser() *url.Userinfo {
	for _, k := range []string{"HTTPS_PROXY", "https_proxy"} {
		if v, ok := d.e.lookupEnv(k); ok && v != "" {
			if u, err := url.Parse(v); err == nil && u.User != nil {
				return u.User
			}
		}
	}
	return nil
}

// output runs a program (bounded) and returns its trimmed stdout.
func (d *doctor) output(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	return strings.TrimSpace(string(out)), err
}

func (d *doctor) checkPythonBundle(ctx context.Context) {
	if d.ca == nil {
		d.add(levelWarn, "python", "skipped: no local CA yet", "")
		return
	}
	fix := "run " + d.envCmd() + " before starting Python (REQUESTS_CA_BUNDLE for requests, SSL_CERT_FILE for httpx and aiohttp); in a notebook: authproxy env --python"
	// requests reads REQUESTS_CA_BUNDLE, then CURL_CA_BUNDLE, then certifi.
	for _, k := range []string{"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"} {
		v, ok := d.e.lookupEnv(k)
		if !ok || v == "" {
			continue
		}
		has, _, err := d.bundleTrust(v)
		switch {
		case err != nil:
			d.add(levelFail, "python", "$"+k+" ("+v+") cannot be read: "+shortErr(err), fix)
		case !has:
			d.add(levelFail, "python", "$"+k+" ("+v+") does not contain the authproxy CA: requests will fail with CERTIFICATE_VERIFY_FAILED", fix)
		default:
			d.add(levelOK, "python", "requests trusts the proxy ($"+k+" contains the authproxy CA)", "")
		}
		return
	}
	py, err := d.lookPath("python3")
	if err != nil {
		d.add(levelOK, "python", "python3 not found; nothing to check", "")
		return
	}
	where, err := d.output(ctx, py, "-c", "import certifi; print(certifi.where())")
	if err != nil || where == "" {
		d.add(levelWarn, "python", "REQUESTS_CA_BUNDLE is unset and certifi could not be located ("+py+")", fix)
		return
	}
	has, _, err := d.bundleTrust(where)
	if err == nil && has {
		d.add(levelOK, "python", "certifi's bundle ("+where+") contains the authproxy CA", "")
		return
	}
	d.add(levelFail, "python", "REQUESTS_CA_BUNDLE is unset and certifi's bundle ("+where+") lacks the authproxy CA: requests will fail with CERTIFICATE_VERIFY_FAILED", fix)
}

func (d *doctor) checkNode() {
	v, ok := d.e.lookupEnv("NODE_EXTRA_CA_CERTS")
	if !ok || v == "" {
		if _, err := d.lookPath("node"); err != nil {
			d.add(levelOK, "node", "node not found; nothing to check", "")
			return
		}
		d.add(levelWarn, "node", "NODE_EXTRA_CA_CERTS is unset: Node.js will refuse the proxy's certificates",
			"run "+d.envCmd()+" before starting node (Node reads NODE_EXTRA_CA_CERTS only at startup)")
		return
	}
	if d.ca == nil {
		d.add(levelWarn, "node", "skipped: no local CA yet", "")
		return
	}
	has, _, err := d.bundleTrust(v)
	switch {
	case err != nil:
		d.add(levelFail, "node", "$NODE_EXTRA_CA_CERTS ("+v+") cannot be read: "+shortErr(err), "run "+d.envCmd())
	case !has:
		d.add(levelFail, "node", "$NODE_EXTRA_CA_CERTS ("+v+") does not contain the authproxy CA", "run "+d.envCmd())
	default:
		d.add(levelOK, "node", "$NODE_EXTRA_CA_CERTS contains the authproxy CA", "")
	}
}

// Clock skew limits: TOTP codes live 30 s and brokers accept one step of
// drift; token expiry maths tolerates a little.
const (
	skewWarn = 5 * time.Second
	skewFail = 30 * time.Second
)

func (d *doctor) checkClock(ctx context.Context) {
	host := d.firstHost()
	if host == "" {
		d.add(levelOK, "clock", "no broker host configured; nothing to compare with", "")
		return
	}
	tr, err := proxy.NewTransport(proxy.UpstreamOptions{CAFile: d.cfg.Upstream.CAFile, Resolve: d.cfg.Upstream.Resolve, Timeout: d.timeout, Proxy: d.cfg.Upstream.Proxy})
	if err != nil {
		d.add(levelWarn, "clock", "cannot build the upstream transport: "+shortErr(err), "fix [upstream] in "+d.cfg.Path)
		return
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodHead, "https://"+host+"/", nil)
	t0 := time.Now()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		d.add(levelWarn, "clock", "could not reach "+host+" to compare clocks: "+shortErr(err),
			"check this machine's network and DNS; the proxy needs https://"+host+" too")
		return
	}
	t1 := time.Now()
	resp.Body.Close()
	server, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		d.add(levelWarn, "clock", host+" sent no usable Date header", "")
		return
	}
	local := t0.Add(t1.Sub(t0) / 2)
	// Date has whole seconds: compare against the server's second's midpoint.
	skew := local.Sub(server.Add(500 * time.Millisecond)).Round(time.Second)
	abs := skew
	if abs < 0 {
		abs = -abs
	}
	dir := "ahead of"
	if skew < 0 {
		dir = "behind"
	}
	fix := "sync the clock (Linux: timedatectl set-ntp true; macOS: sntp -sS time.apple.com; Windows: w32tm /resync)"
	switch {
	case abs >= skewFail:
		d.add(levelFail, "clock", fmt.Sprintf("this machine is %s %s %s: TOTP logins will be refused", abs, dir, host), fix)
	case abs >= skewWarn:
		d.add(levelWarn, "clock", fmt.Sprintf("this machine is %s %s %s", abs, dir, host), fix)
	default:
		d.add(levelOK, "clock", fmt.Sprintf("within %s of %s", max(abs, time.Second), host), "")
	}
}

func (d *doctor) checkAccounts(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	rep, live, err := fetchStatus(ctx, d.cfg)
	if err != nil {
		d.add(levelWarn, "accounts", "cannot read account state: "+shortErr(err), "")
		return
	}
	now := time.Now()
	byName := map[string]*config.Account{}
	for _, a := range d.cfg.Accounts {
		byName[a.Name] = a
	}
	loginFix := func(name, url string) string {
		if url == "" {
			url = "http://" + proxyAddr(d.cfg) + "/login/" + name
		}
		return "open " + url + " in a browser (or run: authproxy login " + name + ")"
	}
	for _, a := range rep.Accounts {
		check := "account"
		a.Type = a.Name + " (" + a.Type + ")"
		interactive := a.Interactive
		if ca := byName[a.Name]; !live && ca != nil && browserOnly(ca) {
			interactive = true
		}
		switch a.State {
		case "unconfigured":
			d.add(levelWarn, check, a.Type+": unconfigured: unset "+strings.Join(a.Missing, ", "),
				"export "+strings.Join(a.Missing, "=… ")+"=… where the proxy starts, then restart it (or delete [brokers."+a.Name+"] if you don't use it)")
		case "ready":
			left := "no known expiry"
			if a.Expiry != nil {
				left = "token expires " + humanUntil(a.Expiry.Sub(now))
			}
			if interactive && a.Expiry != nil && a.Expiry.Sub(now) < time.Hour {
				d.add(levelWarn, check, a.Type+": ready, but the browser login "+humanExpiry(a.Expiry.Sub(now))+" and cannot renew itself",
					loginFix(a.Name, a.LoginURL))
				continue
			}
			d.add(levelOK, check, a.Type+": ready, "+left, "")
		case "refreshing":
			d.add(levelOK, check, a.Type+": logging in right now", "")
		case "needs login":
			d.add(levelWarn, check, a.Type+": needs a browser login", loginFix(a.Name, a.LoginURL))
		case "error":
			reason := a.Reason
			if reason == "" {
				reason = a.LastError
			}
			d.add(levelFail, check, a.Type+": error: "+reason,
				"check this account's variables and the proxy's log; `authproxy status` shows the state, and the next request retries")
		case "locked out":
			until := ""
			if a.LockedUntil != nil {
				until = " until " + a.LockedUntil.Local().Format("15:04 MST")
			}
			d.add(levelFail, check, a.Type+": the broker locked the account out"+until+": "+a.LastError,
				"wait until then (retrying extends some brokers' lockouts); check the credentials before the next attempt")
		case "expired", "empty", "no token":
			if interactive {
				d.add(levelWarn, check, a.Type+": no valid browser login", loginFix(a.Name, a.LoginURL))
				continue
			}
			d.add(levelOK, check, a.Type+": configured; logs in on the first request", "")
		default:
			d.add(levelWarn, check, a.Type+": "+a.State+" "+a.Reason, "")
		}
	}
	if !live && d.addr != "" {
		d.add(levelWarn, "accounts", "the proxy at "+d.addr+" did not answer /status; the states above come from tokens.json",
			"if [proxy_auth] is on, that is expected; else check the proxy's log")
	}
}

// browserOnly reports whether an account logs in only through a browser,
// judged from its config (for when the proxy is not running).
func browserOnly(a *config.Account) bool {
	k, ok := kindOf(a.Type)
	return ok && k.BrowserLogin != nil && k.BrowserLogin(a.Values)
}

func humanExpiry(d time.Duration) string {
	if d <= 0 {
		return "has expired"
	}
	return "expires " + humanUntil(d)
}

// shortErr trims an error to one readable line.
func shortErr(err error) string {
	s := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		s = ue.Err.Error()
	}
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
