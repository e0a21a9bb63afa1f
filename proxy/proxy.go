// Package proxy is authproxy's request path: CONNECT policy (MITM for broker
// hosts, blind tunnels for the rest), the decrypted-request pipeline (match an
// account, get a token, inject, forward over a verifying transport, replay
// once on rejection), and the proxy's own endpoints (dashboard, health,
// status, metrics, OAuth login and callback).
//
// proxy consumes auth's types; auth never imports proxy. goproxy handles the
// CONNECT handshake, tunnels and leaf certificates; decrypted connections are
// served by net/http's own server (timeouts, 400s, HTTP/2 via ALPN).
package proxy

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/guard"
)

// Injector is what the pipeline uses from a broker: put the account's
// credentials into an outgoing request (the client's own Authorization is
// already gone), and recognise an answer that refuses the token. The
// pipeline also uses, when the broker has them, auth.Bypasser,
// auth.OrderDeclarer, auth.HostRouter, auth.SessionChecker,
// auth.RedirectFollower and auth.StreamRewriter; the login pages and
// /status use auth.Interactive. Every auth.Broker is an Injector.
type Injector interface {
	Inject(r *http.Request, t *auth.Token) error
	Rejected(resp *http.Response, peek func() []byte) bool
}

// TokenSource is what the pipeline needs from a token cache: the current
// token, and a fresh one after the broker refused one. A source that holds
// re-logins after repeated rejections also implements rejectionHolder
// (rejection.go).
type TokenSource interface {
	Token(ctx context.Context) (*auth.Token, error)
	Relogin(ctx context.Context, rejected *auth.Token) (*auth.Token, error)
}

// Cache is an account's token cache as the proxy holds it (*auth.Cache):
// the pipeline's TokenSource, Set for the token of a browser login (the
// callback) and Status for /status.
type Cache interface {
	TokenSource
	Set(ctx context.Context, t *auth.Token) error
	Status() auth.Status
}

// Account is one configured broker account as the proxy sees it.
type Account struct {
	Name    string
	Type    string
	Display string   // the broker's name for people ("5paisa")
	Hosts   []string // lower-case names or "*.domain" patterns
	Broker  Injector
	Source  Cache    // nil when Missing is non-empty
	Missing []string // unset environment variables: the account is unconfigured
	// RedirectURI is where an interactive login's callback lands.
	RedirectURI string
	// Bypass, for an account without a Broker (unconfigured), still
	// recognises the broker's own login endpoints, which are forwarded
	// untouched and need no token.
	Bypass func(*http.Request) bool
	// Orders is the type's order declaration, used when Broker is nil
	// (an unconfigured account); a Broker's own declaration wins.
	Orders auth.Routes

	requests counters
}

// CertSource mints leaf certificates for MITM'd hosts (certs.CA).
type CertSource interface {
	TLSConfig(defaultHost string) *tls.Config
	Fetch(hostname string, gen func() (*tls.Certificate, error)) (*tls.Certificate, error)
}

// Options configures a Proxy.
type Options struct {
	Logger      *slog.Logger
	Listen      string // the address clients use, for login URLs
	CA          CertSource
	Accounts    []*Account
	Passthrough bool
	Upstream    UpstreamOptions
	// Transport overrides the upstream transport built from Upstream.
	Transport http.RoundTripper
	// Users enables [proxy_auth]: user -> password.
	Users map[string]auth.Secret
	// UserAccounts is the [proxy_auth] accounts allow-list: a proxy user
	// may use only the accounts listed (the first listed is selected when
	// several share a host). Nil: no allow-list; non-nil: an unlisted user
	// may use none.
	UserAccounts map[string][]string
	// AllowPrivate lets [proxy_auth] users CONNECT to loopback and private
	// addresses ([proxy_auth] allow_private_networks).
	AllowPrivate bool
	// PeerUID finds the Unix user owning a loopback client's socket; nil
	// means the platform's own lookup (Linux: /proc/net/tcp{,6}).
	PeerUID PeerUIDFunc
	// AllowUIDs are Unix users, besides root and the proxy's own, whose
	// programs may use the proxy without [proxy_auth].
	AllowUIDs []int
	// BodyTimeout bounds how long reading one request body may take
	// (default 60s).
	BodyTimeout time.Duration
	MaxBody     int64
	MaxTunnels  int
	IdleTimeout time.Duration
	Now         func() time.Time
	// Extra is mounted on the proxy's own endpoints (dashboard, metrics)
	// for paths the proxy does not serve itself; may be nil.
	Extra http.Handler
	// Observe, when set, is called once per proxied broker request.
	Observe func(RequestRecord)
	// Guard, when set, is the order guard: kill switch, rate guard and
	// journal for the requests brokers declare as orders.
	Guard *guard.Guard
}

// RequestRecord describes one proxied broker request, for logs and metrics.
type RequestRecord struct {
	Account  string
	Method   string
	Path     string
	Status   int
	Outcome  string // "ok", "upstream_error", an error code, "bypass"
	Duration time.Duration
	Injected bool
	Replayed bool
}

// Proxy is an http.Handler: point clients' HTTPS_PROXY at it.
type Proxy struct {
	opts     Options
	log      *slog.Logger
	gp       *goproxy.ProxyHttpServer
	upstream http.RoundTripper
	rpLog    *log.Logger  // the ReverseProxies' internal log, to slog
	buffers  *copyBuffers // the ReverseProxies' response-copy buffers
	mitm     *mitmServer
	h1       *h1Server
	own      http.Handler
	logins   *Logins
	tunnels  atomic.Int64
	byHost   map[string][]*Account
	wildcard []*Account
	peer     peerGate
	closed   chan struct{}
	once     sync.Once
	tlsFails clientTLSFailures
}

// New builds a Proxy. It starts no goroutine except the MITM server loop.
func New(opts Options) (*Proxy, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 1 << 20
	}
	if opts.MaxTunnels <= 0 {
		opts.MaxTunnels = 1024
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 5 * time.Minute
	}
	if opts.BodyTimeout <= 0 {
		opts.BodyTimeout = 60 * time.Second
	}
	if opts.CA == nil {
		return nil, errors.New("proxy: no CA")
	}
	p := &Proxy{
		opts:   opts,
		log:    opts.Logger,
		byHost: make(map[string][]*Account),
		closed: make(chan struct{}),
		logins: NewLogins(LoginsOptions{Logger: opts.Logger, Listen: opts.Listen, Accounts: opts.Accounts, Now: opts.Now}),
	}
	p.peer = newPeerGate(opts.PeerUID, opts.AllowUIDs, p.log)
	if p.peer.uid == nil && len(opts.Users) == 0 {
		p.log.Warn("this platform cannot tell which user runs a loopback client: every local user's programs can use this proxy; set [proxy_auth] users to require a password")
	}
	for _, a := range opts.Accounts {
		for _, h := range a.Hosts {
			h = strings.ToLower(h)
			if strings.HasPrefix(h, "*.") {
				p.wildcard = append(p.wildcard, a)
				continue
			}
			p.byHost[h] = append(p.byHost[h], a)
		}
	}
	if opts.Transport != nil {
		p.upstream = opts.Transport
	} else {
		tr, err := NewTransport(opts.Upstream)
		if err != nil {
			return nil, err
		}
		p.upstream = tr
	}
	if tr, ok := p.upstream.(*http.Transport); ok {
		if lt := newLeanTransport(tr); lt != nil {
			p.upstream = lt
		}
	}
	p.rpLog = stdLogger(p.log)
	p.buffers = newCopyBuffers()
	p.own = p.ownEndpoints()
	p.mitm = newMITMServer(p.log, opts.IdleTimeout)
	p.h1 = newH1Server(p.log, p.mitm.srv, opts.IdleTimeout)
	p.gp = p.newGoproxy()
	return p, nil
}

// Close stops the MITM server and closes idle upstream connections.
func (p *Proxy) Close() error {
	p.once.Do(func() {
		close(p.closed)
		p.mitm.close()
		p.h1.close()
		p.peer.close()
		if lt, ok := p.upstream.(*leanTransport); ok {
			lt.close()
		} else if t, ok := p.upstream.(interface{ CloseIdleConnections() }); ok {
			t.CloseIdleConnections()
		}
	})
	return nil
}

// Shutdown gracefully stops serving MITM'd connections.
func (p *Proxy) Shutdown(ctx context.Context) error {
	err := p.mitm.srv.Shutdown(ctx)
	if err1 := p.h1.shutdown(ctx); err == nil {
		err = err1
	}
	_ = p.Close()
	return err
}

// OpenTunnels reports the number of open CONNECT tunnels.
func (p *Proxy) OpenTunnels() int64 { return p.tunnels.Load() }

// Accounts returns the configured accounts.
func (p *Proxy) Accounts() []*Account { return p.opts.Accounts }

// ServeHTTP dispatches CONNECTs, absolute-form proxy requests and requests
// addressed to the proxy itself.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Another Unix user's programs get nothing (DESIGN.md "Who may get
	// credentials"); a CONNECT to a broker host hears it inside the tunnel.
	deny := p.checkPeer(r)
	// Every body is read (or discarded after a refusal) within BodyTimeout.
	p.bodyDeadline(w, r)
	switch {
	case r.Method == http.MethodConnect:
		user, ok := p.checkProxyAuth(w, r)
		if !ok {
			return
		}
		p.handleConnect(w, r, user, deny)
	case r.URL.IsAbs() && r.URL.Host != "":
		if deny != nil {
			deny.write(w)
			return
		}
		user, ok := p.checkProxyAuth(w, r)
		if !ok {
			return
		}
		host := normalizeHost(r.URL.Hostname())
		if accts := p.match(host); len(accts) > 0 {
			// Plain http:// needs no trust in the local CA, so any web page
			// or mistyped URL could use it: refused. Absolute-form
			// https:// sent in plaintext goes upstream over TLS.
			if !strings.EqualFold(r.URL.Scheme, "https") {
				(&ClientError{Status: http.StatusForbidden, Code: CodeForbidden,
					Message: "plain http:// requests to a broker host never get credentials",
					Hint:    "use https://" + host + r.URL.Path + " (with HTTPS_PROXY set and the authproxy CA trusted; see `authproxy env`)"}).write(w)
				return
			}
			port := r.URL.Port()
			if port == "" {
				port = "443"
			}
			p.serveBroker(w, r, host, port, user, accts)
			return
		}
		if !p.opts.Passthrough {
			(&ClientError{Status: http.StatusForbidden, Code: CodeForbidden,
				Message: "passthrough is off: only broker hosts may be reached through this proxy"}).write(w)
			return
		}
		if ce := p.checkTarget(r.Context(), host); ce != nil {
			ce.write(w)
			return
		}
		p.gp.ServeHTTP(w, r)
	default:
		if deny != nil {
			deny.write(w)
			return
		}
		if !ownHostAllowed(p.opts.Listen, r) {
			ownHostRefusal(p.opts.Listen).write(w)
			return
		}
		p.own.ServeHTTP(w, r)
	}
}

// match returns the accounts claiming host (already normalised).
func (p *Proxy) match(host string) []*Account {
	if a := p.byHost[host]; len(a) > 0 {
		return a
	}
	var out []*Account
	for _, a := range p.wildcard {
		for _, h := range a.Hosts {
			if strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:]) && len(host) > len(h)-1 {
				out = append(out, a)
				break
			}
		}
	}
	return out
}

// Intercepts reports whether CONNECTs to host are decrypted.
func (p *Proxy) Intercepts(host string) bool { return len(p.match(normalizeHost(host))) > 0 }

func normalizeHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}

// checkProxyAuth enforces [proxy_auth] and returns the proxy user.
func (p *Proxy) checkProxyAuth(w http.ResponseWriter, r *http.Request) (string, bool) {
	if len(p.opts.Users) == 0 {
		return "", true
	}
	user, pass, ok := parseBasic(r.Header.Get("Proxy-Authorization"))
	if ok {
		if want, found := p.opts.Users[user]; found &&
			subtle.ConstantTimeCompare([]byte(pass), []byte(want.Reveal())) == 1 {
			return user, true
		}
	}
	w.Header().Set("Proxy-Authenticate", `Basic realm="authproxy"`)
	// Do not wait for (or drain) an unauthenticated client's body: net/http
	// would read up to 256 KiB of it before answering.
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	(&ClientError{Status: http.StatusProxyAuthRequired, Code: "proxy_auth_required",
		Message: "this proxy requires a user name and password",
		Hint:    "use HTTPS_PROXY=http://USER:PASSWORD@" + p.opts.Listen}).write(w)
	return "", false
}

func parseBasic(h string) (user, pass string, ok bool) {
	const prefix = "basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[len(prefix):]))
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(raw), ":")
	return user, pass, ok
}

// selectAccount picks the account for a request among those claiming host.
func (p *Proxy) selectAccount(accts []*Account, user string) (*Account, error) {
	if p.opts.UserAccounts != nil && len(p.opts.Users) > 0 {
		return p.allowedAccount(accts, user)
	}
	if len(accts) == 1 {
		return accts[0], nil
	}
	want := user
	for _, a := range accts {
		if a.Name == want {
			return a, nil
		}
	}
	names := make([]string, len(accts))
	for i, a := range accts {
		names[i] = a.Name
	}
	return nil, &ClientError{Status: http.StatusBadGateway, Code: CodeNoAccount,
		Message: fmt.Sprintf("several accounts serve this host (%s) and the proxy user does not select one", strings.Join(names, ", ")),
		Hint:    "connect as http://ACCOUNT:PASSWORD@" + p.opts.Listen + " or map users to accounts in [proxy_auth]"}
}

// stdLogger sends net/http's (and goproxy's) internal log lines to slog at
// debug level.
func stdLogger(l *slog.Logger) *log.Logger { return log.New(logWriter{l}, "", 0) }

// logWriter sends net/http's internal log lines to slog at debug level.
type logWriter struct{ l *slog.Logger }

func (w logWriter) Write(b []byte) (int, error) {
	w.l.Debug(strings.TrimSpace(string(b)))
	return len(b), nil
}

// counters are per-account request counts by outcome.
type counters struct {
	mu sync.Mutex
	m  map[string]int64
}

func (c *counters) add(outcome string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[string]int64)
	}
	c.m[outcome]++
	c.mu.Unlock()
}

func (c *counters) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

var _ net.Conn = (*idleConn)(nil)

func ownHostRefusal(listen string) *ClientError {
	return &ClientError{Status: http.StatusForbidden, Code: CodeForbidden,
		Message: "authproxy answers only requests addressed to " + listen + ", localhost, 127.0.0.1 or [::1]",
		Hint:    "open http://" + listen + "/"}
}
