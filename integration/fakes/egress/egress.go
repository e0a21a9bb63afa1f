// Package egress is a fake egress proxy for tests: the machine with the
// static IP that brokers whitelist. One listener speaks both HTTP CONNECT
// (with Basic Proxy-Authorization) and SOCKS5 (RFC 1928, user/password
// authentication per RFC 1929), requires the configured credentials, and
// records every connection it is asked to open. Targets are dialled on
// loopback only.
package egress

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Conn is one tunnel the proxy was asked for.
type Conn struct {
	Kind   string // "connect" or "socks5"
	Target string // host:port as the client named it
	User   string
	OK     bool // credentials accepted and target reached
}

// Server is a running fake egress proxy.
type Server struct {
	User, Password string
	// Resolve maps a requested "host:port" to the address actually dialled
	// (the fake brokers listen on 127.0.0.1).
	Resolve map[string]string

	ln    net.Listener
	mu    sync.Mutex
	conns []Conn
	wg    sync.WaitGroup
	ctx   context.Context
	stop  context.CancelFunc
	open  map[net.Conn]struct{}
}

// Start listens on 127.0.0.1 and serves until Close.
func Start(user, password string, resolve map[string]string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{User: user, Password: password, Resolve: resolve, ln: ln, ctx: ctx, stop: stop, open: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr is host:port of the proxy.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// HTTPURL is the [upstream] proxy value for HTTP CONNECT with the credentials.
func (s *Server) HTTPURL() string { return "http://" + s.User + ":" + s.Password + "@" + s.Addr() }

// SOCKS5URL is the [upstream] proxy value for SOCKS5 with the credentials.
func (s *Server) SOCKS5URL() string { return "socks5://" + s.User + ":" + s.Password + "@" + s.Addr() }

// Conns returns every connection recorded so far.
func (s *Server) Conns() []Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Conn(nil), s.conns...)
}

// Close stops the proxy and every tunnel.
func (s *Server) Close() error {
	s.stop()
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.open {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) track(c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.ctx.Err() != nil {
			return false
		}
		s.open[c] = struct{}{}
	} else {
		delete(s.open, c)
	}
	return true
}

func (s *Server) record(c Conn) {
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		if !s.track(c, true) {
			_ = c.Close()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.track(c, false)
			defer c.Close()
			s.handle(c)
		}()
	}
}

func (s *Server) handle(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	if err != nil {
		return
	}
	var (
		target string
		ok     bool
	)
	if first[0] == 5 {
		target, ok = s.socks5(c, br)
	} else {
		target, ok = s.connect(c, br)
	}
	if !ok {
		return
	}
	_ = c.SetDeadline(time.Time{})
	s.pipe(c, br, target)
}

func (s *Server) dial(target string) (net.Conn, error) {
	addr := target
	if to, ok := s.Resolve[strings.ToLower(target)]; ok {
		addr = to
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("fake egress dials loopback only, not %s", addr)
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	return d.DialContext(s.ctx, "tcp", addr)
}

func (s *Server) connect(c net.Conn, br *bufio.Reader) (string, bool) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return "", false
	}
	rec := Conn{Kind: "connect", Target: req.Host}
	if req.Method != http.MethodConnect {
		s.record(rec)
		_, _ = io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
		return "", false
	}
	user, pass, ok := basic(req.Header.Get("Proxy-Authorization"))
	rec.User = user
	if !ok || user != s.User || pass != s.Password {
		s.record(rec)
		_, _ = io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"egress\"\r\nContent-Length: 0\r\n\r\n")
		return "", false
	}
	up, err := s.dial(req.Host)
	if err != nil {
		s.record(rec)
		_, _ = io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return "", false
	}
	_ = up.Close() // reachability checked; pipe dials again
	rec.OK = true
	s.record(rec)
	_, _ = io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	return req.Host, true
}

func basic(h string) (user, pass string, ok bool) {
	const prefix = "Basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(h[len(prefix):])
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(raw), ":")
	return user, pass, ok
}

// socks5 runs the greeting, user/password authentication and CONNECT.
func (s *Server) socks5(c net.Conn, br *bufio.Reader) (string, bool) {
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return "", false
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(br, methods); err != nil {
		return "", false
	}
	hasUserPass := false
	for _, m := range methods {
		if m == 2 {
			hasUserPass = true
		}
	}
	rec := Conn{Kind: "socks5"}
	if !hasUserPass {
		s.record(rec)
		_, _ = c.Write([]byte{5, 0xff})
		return "", false
	}
	_, _ = c.Write([]byte{5, 2})
	ver, err := br.ReadByte()
	if err != nil || ver != 1 {
		return "", false
	}
	user, err := readLenString(br)
	if err != nil {
		return "", false
	}
	pass, err := readLenString(br)
	if err != nil {
		return "", false
	}
	rec.User = user
	if user != s.User || pass != s.Password {
		s.record(rec)
		_, _ = c.Write([]byte{1, 1})
		return "", false
	}
	_, _ = c.Write([]byte{1, 0})
	req := make([]byte, 4)
	if _, err := io.ReadFull(br, req); err != nil || req[0] != 5 || req[1] != 1 {
		return "", false
	}
	var host string
	switch req[3] {
	case 1:
		ip := make([]byte, 4)
		if _, err := io.ReadFull(br, ip); err != nil {
			return "", false
		}
		host = net.IP(ip).String()
	case 4:
		ip := make([]byte, 16)
		if _, err := io.ReadFull(br, ip); err != nil {
			return "", false
		}
		host = net.IP(ip).String()
	case 3:
		if host, err = readLenString(br); err != nil {
			return "", false
		}
	default:
		return "", false
	}
	pb := make([]byte, 2)
	if _, err := io.ReadFull(br, pb); err != nil {
		return "", false
	}
	target := net.JoinHostPort(host, strconv.Itoa(int(pb[0])<<8|int(pb[1])))
	rec.Target = target
	up, err := s.dial(target)
	if err != nil {
		s.record(rec)
		_, _ = c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		return "", false
	}
	_ = up.Close()
	rec.OK = true
	s.record(rec)
	_, _ = c.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0})
	return target, true
}

func readLenString(br *bufio.Reader) (string, error) {
	n, err := br.ReadByte()
	if err != nil {
		return "", err
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		return "", err
	}
	return string(b), nil
}

// pipe copies bytes both ways between the client and target.
func (s *Server) pipe(c net.Conn, br *bufio.Reader, target string) {
	up, err := s.dial(target)
	if err != nil {
		return
	}
	if !s.track(up, true) {
		_ = up.Close()
		return
	}
	defer s.track(up, false)
	defer up.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(up, br)
		if tc, ok := up.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		close(done)
	}()
	_, _ = io.Copy(c, up)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	select {
	case <-done:
	case <-s.ctx.Done():
	}
}
