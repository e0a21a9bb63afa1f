package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/authproxy/authproxy/internal/fakebroker/fakeca"
)

// originRef is how the bench uses the origin, wherever it runs: in this
// process or (the default) in a child process of its own, so that neither
// the direct nor the proxied path gets the shortcut of a client and a server
// sharing one Go scheduler, which no real script and broker do.
type originRef struct {
	addr   string
	caFile string
	roots  *x509.CertPool
	desc   string
	pid    int // the origin's process; os.Getpid() when in-process
	counts func() originCounts
	stop   func()
}

// directDialer routes brokerHost:443 to the origin, like [upstream] resolve.
func (r *originRef) directDialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if strings.EqualFold(addr, brokerHost+":443") {
			addr = r.addr
		}
		return d.DialContext(ctx, network, addr)
	}
}

// inprocOrigin starts the origin inside the bench process.
func inprocOrigin(dir, token string, h1Only bool) (*originRef, error) {
	ca, err := fakeca.New()
	if err != nil {
		return nil, err
	}
	caFile, err := ca.WriteCertFile(dir)
	if err != nil {
		return nil, err
	}
	o, err := startOrigin(ca, caFile, token, h1Only)
	if err != nil {
		return nil, err
	}
	return &originRef{addr: o.addr, caFile: caFile, roots: ca.CertPool(), desc: o.String() + ", in the bench process",
		pid: os.Getpid(), counts: o.counts, stop: o.close}, nil
}

// originInfo is what a child origin tells its parent.
type originInfo struct {
	Addr   string `json:"addr"`
	Counts string `json:"counts"` // plain-HTTP address serving the counters
	Desc   string `json:"desc"`
}

type countsJSON struct{ OK, Bad, Logins, Conns, Resumed, H2 int64 }

const originTokenEnv = "AUTHPROXY_BENCH_ORIGIN_TOKEN"

// serveOriginChild is the child process: it starts the origin, writes
// dir/origin.json and the CA to dir/fake-ca.pem, and runs until SIGTERM or
// until its stdin (a pipe from the parent) closes.
func serveOriginChild(dir string, h1Only bool) error {
	token := os.Getenv(originTokenEnv)
	if token == "" {
		return errors.New("origin child: no token in " + originTokenEnv)
	}
	ca, err := fakeca.New()
	if err != nil {
		return err
	}
	caFile, err := ca.WriteCertFile(dir)
	if err != nil {
		return err
	}
	o, err := startOrigin(ca, caFile, token, h1Only)
	if err != nil {
		return err
	}
	defer o.close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	cs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		c := o.counts()
		_ = json.NewEncoder(w).Encode(countsJSON{c.ok, c.bad, c.logins, c.conns, c.resumed, c.h2})
	})}
	go func() { _ = cs.Serve(ln) }()
	defer cs.Close()
	info, _ := json.Marshal(originInfo{Addr: o.addr, Counts: ln.Addr().String(), Desc: o.String()})
	tmp := filepath.Join(dir, ".origin.json")
	if err := os.WriteFile(tmp, info, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "origin.json")); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); stop() }()
	<-ctx.Done()
	return nil
}

// childOrigin runs the origin in a child process (this binary, re-executed
// with --serve-origin).
func childOrigin(dir, token string, h1Only bool) (*originRef, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	odir := filepath.Join(dir, "origin")
	if err := os.MkdirAll(odir, 0o700); err != nil {
		return nil, err
	}
	args := []string{"--serve-origin", odir}
	if h1Only {
		args = append(args, "--origin-h1")
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(cleanEnv(), originTokenEnv+"="+token)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	var info originInfo
	deadline := time.Now().Add(20 * time.Second)
	for {
		data, err := os.ReadFile(filepath.Join(odir, "origin.json"))
		if err == nil && json.Unmarshal(data, &info) == nil && info.Addr != "" {
			break
		}
		select {
		case <-exited:
			return nil, errors.New("origin child exited at start")
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, errors.New("origin child did not start within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	caFile := filepath.Join(odir, "fake-ca.pem")
	roots, err := caPool(caFile)
	if err != nil {
		stop()
		return nil, err
	}
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1}, Timeout: 5 * time.Second}
	counts := func() originCounts {
		resp, err := hc.Get("http://" + info.Counts + "/")
		if err != nil {
			panic(fmt.Sprintf("bench: origin counters unreachable: %v", err))
		}
		defer resp.Body.Close()
		var c countsJSON
		if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
			panic(fmt.Sprintf("bench: origin counters: %v", err))
		}
		return originCounts{c.OK, c.Bad, c.Logins, c.Conns, c.Resumed, c.H2}
	}
	return &originRef{addr: info.Addr, caFile: caFile, roots: roots, desc: info.Desc + ", in its own process",
		pid: cmd.Process.Pid, counts: counts, stop: func() { hc.CloseIdleConnections(); stop() }}, nil
}
