package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// This file holds the checks of DESIGN.md "Who may get credentials":
// credentials go only into requests the account owner's own programs send.

func forbidden(account, msg, hint string) *ClientError {
	return &ClientError{Status: http.StatusForbidden, Code: CodeForbidden, Account: account, Message: msg, Hint: hint}
}

// allowedAccount applies the [proxy_auth] accounts allow-list: user may use
// only the accounts listed for them, the first listed winning when several
// claim the host; an unlisted user may use none.
func (p *Proxy) allowedAccount(accts []*Account, user string) (*Account, error) {
	for _, name := range p.opts.UserAccounts[user] {
		for _, a := range accts {
			if a.Name == name {
				return a, nil
			}
		}
	}
	names := make([]string, len(accts))
	for i, a := range accts {
		names[i] = a.Name
	}
	acct := ""
	if len(accts) == 1 {
		acct = accts[0].Name
	}
	return nil, forbidden(acct,
		fmt.Sprintf("proxy user %q may not use the account(s) serving this host (%s)", user, strings.Join(names, ", ")),
		"list the account for this user in [proxy_auth] accounts")
}

// peerGate tells which Unix user runs a loopback client and refuses other
// users' programs: allowed are root, the proxy's own user and allow
// (Options.AllowUIDs).
type peerGate struct {
	uid   PeerUIDFunc // nil: the platform cannot tell a client's user
	allow []int
	log   *slog.Logger
	close func() // releases the platform lookup's resources
}

func newPeerGate(uid PeerUIDFunc, allow []int, log *slog.Logger) peerGate {
	closer := func() {}
	if uid == nil && peerUIDSupported {
		uid, closer = newPlatformPeerUID()
	}
	return peerGate{uid: uid, allow: allow, log: log, close: closer}
}

func (g peerGate) uidAllowed(uid int) bool {
	return uid == 0 || uid == os.Getuid() || slices.Contains(g.allow, uid)
}

// LocalOnly serves h as the proxy serves its own endpoints without
// [proxy_auth]: only to the programs of the user running authproxy (where
// the platform can tell) and only for requests addressed to listen,
// localhost, 127.0.0.1 or [::1]. `authproxy login` serves its temporary
// login page with it.
func LocalOnly(listen string, logger *slog.Logger, h http.Handler) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	gate := newPeerGate(nil, nil, logger)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gate.uid != nil {
			if deny := gate.check(r); deny != nil {
				deny.write(w)
				return
			}
		}
		if !ownHostAllowed(listen, r) {
			ownHostRefusal(listen).write(w)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// checkPeer refuses a loopback client owned by another Unix user. With
// [proxy_auth] the password decides instead (a local user who knows one is
// treated like a remote user). A loopback client whose socket cannot be
// found is refused (fail closed); a remote one is left to [proxy_auth],
// which a non-loopback listen address requires.
func (p *Proxy) checkPeer(r *http.Request) *ClientError {
	if len(p.opts.Users) > 0 || p.peer.uid == nil {
		return nil
	}
	return p.peer.check(r)
}

func (g peerGate) check(r *http.Request) *ClientError {
	remote, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return forbidden("", "the client's address could not be read, so its user cannot be told", "")
	}
	la, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	tcp, _ := la.(*net.TCPAddr)
	loopback := remote.Addr().Unmap().IsLoopback()
	if tcp == nil {
		if loopback {
			return forbidden("", "the client's user cannot be told", "")
		}
		return nil
	}
	uid, err := g.uid(remote, tcp.AddrPort())
	if err != nil {
		if !loopback && errors.Is(err, ErrPeerUnknown) {
			return nil
		}
		g.log.Warn("refused a client whose Unix user cannot be told", "client", r.RemoteAddr, "err", err)
		return forbidden("", "the Unix user running this client cannot be told", "run your scripts as the user that runs authproxy")
	}
	if g.uidAllowed(uid) {
		return nil
	}
	g.log.Warn("refused a client of another Unix user", "client", r.RemoteAddr, "uid", uid)
	return forbidden("", "this proxy serves only the programs of the user who runs it (uid "+strconv.Itoa(os.Getuid())+
		"); this client runs as uid "+strconv.Itoa(uid),
		"run your scripts as the user that runs authproxy, or give each user a password in [proxy_auth]")
}

// refuseRequest applies the per-request checks for a broker host that do
// not depend on the account: methods, port, and browser pages of other
// sites. bypass is true for the broker's own login endpoints, which get no
// credentials and are reached by the user's browser during a login.
func refuseRequest(r *http.Request, host, port string, bypass bool) *ClientError {
	switch strings.ToUpper(r.Method) {
	case "TRACE", "TRACK":
		return forbidden("", r.Method+" is not forwarded to broker hosts (it would echo the credentials back)", "")
	}
	if port != "443" {
		return forbidden("", "only port 443 of a broker host gets credentials; this request is for port "+port,
			"use https://"+host+"/ (port 443)")
	}
	if bypass {
		return nil
	}
	if ce := browserRefusal(r.Header, host); ce != nil {
		return ce
	}
	return nil
}

// browserRefusal refuses requests sent by a web page of another site: an
// Origin other than the broker host's own https origin, or Sec-Fetch-Site
// cross-site / same-site. Scripts' WebSocket clients (Python
// websocket-client) send the broker's own origin and pass.
func browserRefusal(h http.Header, host string) *ClientError {
	for _, s := range h.Values("Sec-Fetch-Site") {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "cross-site", "same-site":
			return forbidden("", "requests from a web page of another site never get credentials (Sec-Fetch-Site: "+strings.TrimSpace(s)+")", "")
		}
	}
	origins := h.Values("Origin")
	if len(origins) > 1 {
		return forbidden("", "a request with several Origin headers never gets credentials", "")
	}
	if len(origins) == 1 && !sameOrigin(origins[0], host) {
		return forbidden("", "requests from a web page of another origin never get credentials (Origin is not the broker's own, https://"+host+")", "")
	}
	return nil
}

// sameOrigin reports whether origin is the broker host's own origin,
// ignoring case: https://host (port 443 implied or explicit), or
// http://host, which Python websocket-client (before 1.0) sends for a wss://
// URL. A page served from the broker host itself is the broker's own page.
func sameOrigin(origin, host string) bool {
	o := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(origin)), "/")
	h := strings.ToLower(host)
	switch o {
	case "https://" + h, "https://" + h + ":443", "http://" + h, "http://" + h + ":80", "http://" + h + ":443":
		return true
	}
	return false
}

// ownHostAllowed reports whether a request to the proxy's own endpoints
// names the proxy in its Host: the listen host, localhost, 127.0.0.1 or
// [::1]. Anything else may be a DNS-rebinding page.
func ownHostAllowed(listen string, r *http.Request) bool {
	h := r.Host
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	h = normalizeHost(h)
	switch h {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	if lh, _, err := net.SplitHostPort(listen); err == nil && h != "" && normalizeHost(lh) == h {
		return true
	}
	return false
}

// crossSiteRequest reports whether a browser says the request comes from a
// page of another site.
func crossSiteRequest(r *http.Request) bool {
	for _, s := range r.Header.Values("Sec-Fetch-Site") {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "cross-site", "same-site":
			return true
		}
	}
	return false
}

// privateIP reports addresses a remote [proxy_auth] user must not reach
// through the proxy's machine: loopback, private, link-local, unspecified,
// CGNAT and unique-local ranges.
func privateIP(a netip.Addr) bool {
	a = a.Unmap()
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsUnspecified() || a.IsInterfaceLocalMulticast() || a.IsMulticast() {
		return true
	}
	return netip.MustParsePrefix("100.64.0.0/10").Contains(a) || netip.MustParsePrefix("0.0.0.0/8").Contains(a)
}

// refusePrivate is true when tunnels must not reach private addresses.
func (p *Proxy) refusePrivate() bool { return len(p.opts.Users) > 0 && !p.opts.AllowPrivate }

// checkTarget refuses a CONNECT/passthrough target that names or resolves
// to a private address when [proxy_auth] users may not reach those.
func (p *Proxy) checkTarget(ctx context.Context, host string) *ClientError {
	if !p.refusePrivate() {
		return nil
	}
	deny := forbidden("", "tunnels to loopback or private addresses ("+host+") are refused for [proxy_auth] users",
		"set [proxy_auth] allow_private_networks = true to allow them")
	if a, err := netip.ParseAddr(host); err == nil {
		if privateIP(a) {
			return deny
		}
		return nil
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return deny
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil // the dial fails the same way; its error is reported then
	}
	for _, a := range addrs {
		if privateIP(a) {
			return deny
		}
	}
	return nil
}

// privateDialControl refuses, at connect time, a resolved private address
// (a name that changed its answer since checkTarget looked).
func privateDialControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return err
	}
	if privateIP(ap.Addr()) {
		return fmt.Errorf("authproxy: %s is a loopback or private address ([proxy_auth] allow_private_networks is off)", ap.Addr())
	}
	return nil
}

// bodyDeadline bounds reading r's body: a client trickling its body (one
// byte every few seconds) cannot hold the connection open for ever.
func (p *Proxy) bodyDeadline(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 && len(r.TransferEncoding) == 0 {
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(p.opts.BodyTimeout))
}

// clearBodyDeadline lifts the body deadline once the body is read, so a
// long answer (or an upgraded stream) is not cut.
func clearBodyDeadline(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
}
