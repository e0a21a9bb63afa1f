// Package redistest runs a throwaway redis-server on 127.0.0.1 for tests:
// a free port, no persistence (--save "" --appendonly no), optionally a
// password and TLS, and Stop/Restart on the same port to play an outage.
//
// redis-server comes from Debian's "redis-server" package. When it is
// missing and the test runs as root with apt-get available, Start installs
// it (under a lock, so parallel test binaries install it once); otherwise
// the test fails saying how to install it.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	installLock    = "authproxy-redis-install.lock"
	installTimeout = 6 * time.Minute
	startTimeout   = 15 * time.Second
	stopTimeout    = 5 * time.Second
	readyLine      = "Ready to accept connections"
)

// Options configure a Server.
type Options struct {
	Password string // requirepass; "" for none
	// TLS files: when CertFile is set the server speaks only TLS.
	CertFile, KeyFile, CAFile string
}

// Server is a running (or stopped) redis-server.
type Server struct {
	t    testing.TB
	opts Options
	bin  string
	dir  string
	port int

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	output bytes.Buffer
}

// Start runs a redis-server for the rest of t and stops it in t.Cleanup.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, opts: opts, bin: Binary(t), dir: t.TempDir()}
	var err error
	for range 3 { // a free port can be taken between finding and binding it
		if s.port, err = freePort(); err != nil {
			t.Fatalf("redistest: %v", err)
		}
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is the redis:// (or, with TLS, rediss://) URL, password included.
func (s *Server) URL() string {
	scheme := "redis"
	if s.opts.CertFile != "" {
		scheme = "rediss"
	}
	auth := ""
	if s.opts.Password != "" {
		auth = ":" + s.opts.Password + "@"
	}
	return scheme + "://" + auth + s.Addr()
}

// Output is what redis-server printed so far.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.output.String()
}

// Stop stops the server (SIGTERM, then SIGKILL after 5s) and waits for it.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Restart starts a stopped server again on the same port, empty.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	for range 20 { // the port may linger briefly
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("redistest: restart on port %d: %v", s.port, err)
}

func (s *Server) args() []string {
	a := []string{
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--dir", s.dir,
		"--logfile", "",
		"--loglevel", "notice",
	}
	if s.opts.CertFile != "" {
		a = append(a, "--port", "0", "--tls-port", strconv.Itoa(s.port),
			"--tls-cert-file", s.opts.CertFile, "--tls-key-file", s.opts.KeyFile,
			"--tls-auth-clients", "no")
		if s.opts.CAFile != "" {
			a = append(a, "--tls-ca-cert-file", s.opts.CAFile)
		}
	} else {
		a = append(a, "--port", strconv.Itoa(s.port))
	}
	if s.opts.Password != "" {
		a = append(a, "--requirepass", s.opts.Password)
	}
	return a
}

// start runs redis-server and waits until it accepts connections.
func (s *Server) start() error {
	cmd := exec.Command(s.bin, s.args()...)
	pr, pw := io.Pipe()
	out := io.MultiWriter(pw, writerFunc(func(b []byte) (int, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.output.Write(b)
	}))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); pw.Close(); close(done) }()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.Contains(sc.Text(), readyLine) {
				signalled = true
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case <-ready:
	case <-done:
		return fmt.Errorf("redis-server exited at start:\n%s", s.Output())
	case <-time.After(startTimeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("redis-server not ready within %s:\n%s", startTimeout, s.Output())
	}
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Binary returns the path of redis-server, installing Debian's package
// first when it is missing (as root, under a lock). It fails t when it
// cannot.
func Binary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p
	}
	if err := install(); err != nil {
		t.Fatalf("redistest: redis-server is required for this test and is not installed; "+
			"install it with `apt-get install redis-server` (Debian/Ubuntu). Installing it here failed: %v", err)
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server still not found after installing the redis-server package: %v", err)
	}
	return p
}

// install runs apt-get under a lock shared by every test process.
func install() error {
	if os.Geteuid() != 0 {
		return errors.New("not running as root, so apt-get cannot be used")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return errors.New("apt-get is not available on this system")
	}
	f, err := os.OpenFile(filepath.Join(os.TempDir(), installLock), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("install lock: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("install lock: %w", err)
	}
	defer func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }()
	if _, err := exec.LookPath("redis-server"); err == nil {
		return nil // another test process installed it while we waited
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "redis-server"}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			tail := string(out)
			if len(tail) > 2000 {
				tail = tail[len(tail)-2000:]
			}
			return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, tail)
		}
	}
	return nil
}
