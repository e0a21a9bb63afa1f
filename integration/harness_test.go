package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/fakebroker/fakeca"
)

// binary is the authproxy built once for the whole package.
var binary string

func TestMain(m *testing.M) {
	code := func() int {
		flag.Parse()
		if testing.Short() {
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "authproxy-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "authproxy")
		cmd := exec.Command("go", "build", "-race", "-o", binary, "../cmd/authproxy")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building authproxy:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func needIntegration(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped under -short")
	}
}

// world is one test's set of fakes, config and running proxy.
type world struct {
	t        *testing.T
	dir      string
	stateDir string
	ca       *fakeca.CA
	caFile   string
	resolve  map[string]string
	env      map[string]string // extra environment for the proxy (credentials)
}

func newWorld(t *testing.T) *world {
	needIntegration(t)
	ca, err := fakeca.New()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile, err := ca.WriteCertFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, dir: dir, stateDir: filepath.Join(dir, "state"), ca: ca, caFile: caFile,
		resolve: map[string]string{}, env: map[string]string{}}
}

// serve starts h over TLS for hosts and routes host:443 to it.
func (w *world) serve(h http.Handler, hosts ...string) *fakeca.Server {
	w.t.Helper()
	srv, err := w.ca.Serve(h, hosts...)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { srv.Close() })
	for _, host := range hosts {
		w.resolve[host+":443"] = srv.Addr
	}
	return srv
}

// writeConfig writes rules.toml: the common header (listen on port 0,
// state dir, resolve, ca_file) followed by body.
func (w *world) writeConfig(body string) string {
	w.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "listen = \"127.0.0.1:0\"\nstate_dir = %q\n\n[upstream]\nca_file = %q\ntimeout = \"10s\"\n", w.stateDir, w.caFile)
	b.WriteString("resolve = { ")
	first := true
	for k, v := range w.resolve {
		if !first {
			b.WriteString(", ")
		}
		first = false
		fmt.Fprintf(&b, "%q = %q", k, v)
	}
	b.WriteString(" }\n\n")
	b.WriteString(body)
	path := filepath.Join(w.dir, "rules.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		w.t.Fatal(err)
	}
	return path
}

// proc is a running authproxy.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	mu     sync.Mutex
	output bytes.Buffer
	last   time.Time // when output last grew
	done   chan struct{}
}

// Output is everything the proxy printed so far, once its output has been
// quiet for a moment (settled).
func (p *proc) Output() string {
	return settled(&p.mu, &p.last, func() string { return p.output.String() })
}

// settled returns read() once nothing was written for 25 ms (waiting at most
// 500 ms): authproxy writes log lines that follow each other within 5 ms
// together, at most 5 ms late (burstWriter), so a line of something that
// already happened may still be on its way.
func settled(mu *sync.Mutex, last *time.Time, read func() string) string {
	deadline := time.Now().Add(500 * time.Millisecond)
	for {
		mu.Lock()
		if time.Since(*last) >= 25*time.Millisecond || time.Now().After(deadline) {
			defer mu.Unlock()
			return read()
		}
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
}

type lockedWriter struct{ p *proc }

func (l lockedWriter) Write(b []byte) (int, error) {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	l.p.last = time.Now()
	return l.p.output.Write(b)
}

var listenRE = regexp.MustCompile(`authproxy listening.* addr=([0-9.:\[\]]+)`)

// start runs `authproxy run --config cfg` and waits until it listens.
func (w *world) start(cfg string, extraArgs ...string) *proc {
	w.t.Helper()
	args := append([]string{"run", "--config", cfg}, extraArgs...)
	cmd := exec.Command(binary, args...)
	cmd.Env = w.procEnv()
	p := &proc{t: w.t, cmd: cmd, done: make(chan struct{})}
	pr, pw := io.Pipe()
	cmd.Stdout = lockedWriter{p}
	cmd.Stderr = io.MultiWriter(lockedWriter{p}, pw)
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); pw.Close(); close(p.done) }()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 8<<20)
		// Whatever happens to the scanner, keep draining so the proxy never
		// blocks writing its log.
		defer func() { _, _ = io.Copy(io.Discard, pr) }()
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case p.addr = <-found:
	case <-p.done:
		w.t.Fatalf("authproxy exited before listening:\n%s", p.Output())
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		w.t.Fatalf("authproxy did not start in 30s:\n%s", p.Output())
	}
	w.t.Cleanup(func() { p.stop() })
	return p
}

// stop sends SIGTERM and waits (bounded) for a clean exit.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("authproxy did not exit within 10s of SIGTERM")
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// procEnv is a clean environment: no inherited proxy variables.
func (w *world) procEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "AUTHPROXY_CONFIG":
			continue
		}
		out = append(out, kv)
	}
	for k, v := range w.env {
		out = append(out, k+"="+v)
	}
	return out
}

var exportRE = regexp.MustCompile(`^export ([A-Za-z_][A-Za-z0-9_]*)='(.*)'$`)

// clientEnv runs `authproxy env` and returns the environment a client gets
// from `eval "$(authproxy env)"`, pointed at the running proxy p.
func (w *world) clientEnv(cfg string, p *proc) []string {
	w.t.Helper()
	cmd := exec.Command(binary, "env", "--config", cfg)
	cmd.Env = w.procEnv()
	out, err := cmd.Output()
	if err != nil {
		w.t.Fatalf("authproxy env: %v", err)
	}
	env := []string{}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE":
			continue
		}
		env = append(env, kv)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		m := exportRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		v := m[2]
		// The config asks for port 0; the running proxy knows its port.
		v = strings.ReplaceAll(v, "127.0.0.1:0", p.addr)
		env = append(env, m[1]+"="+v)
		n++
	}
	if n == 0 {
		w.t.Fatalf("authproxy env printed no exports:\n%s", out)
	}
	return env
}

// curlResult is what curl saw.
type curlResult struct {
	Status int
	Body   string
	Header http.Header
	Proto  string // "HTTP/1.1", "HTTP/2" ... from the final response's status line
	Err    string
}

// curl runs curl with env and returns status, headers and body.
func curl(t *testing.T, env []string, args ...string) curlResult {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("curl is required for the integration tests: %v", err)
	}
	dir := t.TempDir()
	hdr := filepath.Join(dir, "h")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	full := append([]string{"-sS", "--max-time", "80", "-D", hdr, "-o", filepath.Join(dir, "b"), "-w", "%{http_code}"}, args...)
	cmd := exec.CommandContext(ctx, "curl", full...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	res := curlResult{Header: http.Header{}}
	if err != nil {
		res.Err = strings.TrimSpace(stderr.String()) + " (" + err.Error() + ")"
	}
	fmt.Sscanf(string(out), "%d", &res.Status)
	body, _ := os.ReadFile(filepath.Join(dir, "b"))
	res.Body = string(body)
	raw, _ := os.ReadFile(hdr)
	// With a proxy, -D holds the CONNECT response first; keep the last block.
	blocks := strings.Split(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\n\n")
	for i := len(blocks) - 1; i >= 0; i-- {
		if strings.TrimSpace(blocks[i]) == "" {
			continue
		}
		lines := strings.Split(blocks[i], "\n")
		res.Proto, _, _ = strings.Cut(lines[0], " ")
		for _, line := range lines[1:] {
			if k, v, ok := strings.Cut(line, ":"); ok {
				res.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
		}
		break
	}
	return res
}

// python runs a Python 3 script with env; it must print its result.
func python(t *testing.T, env []string, script string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatalf("python3 is required for the integration tests: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "python3", append([]string{"-c", script}, args...)...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("python: %v\n%s", err, stderr.String())
	}
	return string(out), nil
}

// assertNoSecrets fails if any secret appears in text.
//
// An all-digit secret (a PIN) counts only where no digit stands next to it:
// "4821" inside a port number such as 127.0.0.1:48212 is not a leak.
func assertNoSecrets(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if len(s) >= 4 && containsSecret(text, s) {
			t.Errorf("%s contains a secret (%q...):\n%s", what, s[:min(len(s), 6)], text)
		}
	}
}

// containsSecret reports whether text holds s; an all-digit s only where
// it is not part of a longer run of digits.
func containsSecret(text, s string) bool {
	if strings.Trim(s, "0123456789") != "" {
		return strings.Contains(text, s)
	}
	isDigit := func(b byte) bool { return b >= '0' && b <= '9' }
	for i := 0; ; {
		j := strings.Index(text[i:], s)
		if j < 0 {
			return false
		}
		at := i + j
		end := at + len(s)
		if (at == 0 || !isDigit(text[at-1])) && (end == len(text) || !isDigit(text[end])) {
			return true
		}
		i = at + 1
	}
}

// pemCert encodes a DER certificate as PEM.
func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
