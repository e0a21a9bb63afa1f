package proxy

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	xproxy "golang.org/x/net/proxy"
)

// ParseEgress checks an [upstream] proxy URL: "http://[user:pass@]host:port"
// (HTTP CONNECT) or "socks5://[user:pass@]host:port". The error never
// repeats the password.
func ParseEgress(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New(`not a URL; want "http://[user:pass@]host:port" or "socks5://[user:pass@]host:port"`)
	}
	switch u.Scheme {
	case "http", "socks5", "socks5h":
	default:
		return nil, fmt.Errorf(`scheme %q is not supported; want "http://" (CONNECT) or "socks5://"`, u.Scheme)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" || port == "" {
		return nil, errors.New("the proxy address must be host:port")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("the proxy URL must have no path, query or fragment")
	}
	return u, nil
}

// EgressDialer returns the DialContext for every broker connection (logins,
// renewals, API calls, WebSockets): the resolve overrides, then, with
// opts.Proxy set, a tunnel through that proxy to the (resolved) address.
// TLS runs inside the tunnel, so the broker's certificate is still verified
// end to end against its own name. Passthrough tunnels use Dialer instead.
func (o UpstreamOptions) EgressDialer() (func(ctx context.Context, network, addr string) (net.Conn, error), error) {
	direct := o.Dialer()
	if o.Proxy == "" {
		return direct, nil
	}
	u, err := ParseEgress(o.Proxy)
	if err != nil {
		return nil, fmt.Errorf("[upstream] proxy: %w", err)
	}
	resolve := make(map[string]string, len(o.Resolve))
	for k, v := range o.Resolve {
		resolve[strings.ToLower(k)] = v
	}
	target := func(addr string) string {
		if to, ok := resolve[strings.ToLower(addr)]; ok {
			return to
		}
		return addr
	}
	var plain net.Dialer
	plain.Timeout = o.timeout()
	plain.KeepAlive = 30 * time.Second
	if u.Scheme == "http" {
		return func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialConnect(ctx, &plain, u, target(addr))
		}, nil
	}
	var pa *xproxy.Auth
	if u.User != nil {
		pw, _ := u.User.Password()
		pa = &xproxy.Auth{User: u.User.Username(), Password: pw}
	}
	d, err := xproxy.SOCKS5("tcp", u.Host, pa, &plain)
	if err != nil {
		return nil, fmt.Errorf("[upstream] proxy: %w", err)
	}
	cd, ok := d.(xproxy.ContextDialer)
	if !ok {
		return nil, errors.New("[upstream] proxy: the SOCKS5 dialer cannot take a context")
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := cd.DialContext(ctx, network, target(addr))
		if err != nil {
			return nil, fmt.Errorf("egress proxy %s: %w", u.Host, err)
		}
		return c, nil
	}, nil
}

func (o UpstreamOptions) timeout() time.Duration {
	if o.Timeout <= 0 {
		return 30 * time.Second
	}
	return o.Timeout
}

// dialConnect opens a tunnel to addr through the HTTP proxy u with CONNECT.
func dialConnect(ctx context.Context, d *net.Dialer, u *url.URL, addr string) (net.Conn, error) {
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("egress proxy %s: %w", u.Host, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: addr}, Host: addr, Header: http.Header{}}
	if u.User != nil {
		pw, _ := u.User.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pw)))
	}
	if err := req.Write(c); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("egress proxy %s: CONNECT %s: %w", u.Host, addr, ctxErr(ctx, err))
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("egress proxy %s: CONNECT %s: %w", u.Host, addr, ctxErr(ctx, err))
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_ = c.Close()
		return nil, &EgressError{Proxy: u.Host, Target: addr, Status: resp.Status}
	}
	if !stop() {
		_ = c.Close()
		return nil, ctx.Err()
	}
	_ = c.SetDeadline(time.Time{})
	if br.Buffered() > 0 {
		return &bufferedConn{Conn: c, r: br}, nil
	}
	return c, nil
}

// EgressError is a CONNECT the egress proxy refused.
type EgressError struct {
	Proxy, Target, Status string
}

func (e *EgressError) Error() string {
	s := fmt.Sprintf("egress proxy %s refused CONNECT %s: %s", e.Proxy, e.Target, e.Status)
	if strings.HasPrefix(e.Status, "407") {
		s += " (check the user and password in [upstream] proxy)"
	}
	return s
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// bufferedConn hands out bytes the CONNECT response reader already read.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }
