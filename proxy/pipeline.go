package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"

	"github.com/authproxy/authproxy/auth"
)

// peekLimit bounds how much of a response body a broker may inspect to
// recognise a rejected token (5paisa Status 9, Tradingo IsError).
const peekLimit = 64 << 10

// exchange is one proxied broker request. It owns every step: account
// selection and the checks before anything goes upstream (prepare), the
// rewrite of the outgoing request, the transport (token, inject, forward,
// one replay on rejection), the response check and the error answer: the
// hooks of its own ReverseProxy.
type exchange struct {
	p        *Proxy
	acct     *Account // nil until selected
	host     string
	port     string
	body     []byte // buffered request body, for injection and replay
	hasBody  bool
	bypass   bool
	start    time.Time
	status   int
	outcome  string
	injected bool
	replayed bool
	ord      *orderState // non-nil for an order request (guard.go)
	bodyErr  error       // reading the broker's answer failed after the client got its start
}

// serveBroker runs the request pipeline for a request to a broker host,
// claimed by accts.
func (p *Proxy) serveBroker(w http.ResponseWriter, r *http.Request, host, port, user string, accts []*Account) {
	x := &exchange{p: p, host: host, port: port, start: p.opts.Now()}
	defer x.finish(r)
	if err := x.prepare(w, r, user, accts); err != nil {
		x.fail(w, err)
		return
	}
	rp := &httputil.ReverseProxy{
		Rewrite:        x.rewrite,
		Transport:      x,
		ModifyResponse: x.modifyResponse,
		ErrorHandler:   x.errorHandler,
		ErrorLog:       p.rpLog,
		BufferPool:     p.buffers,
	}
	rp.ServeHTTP(w, r)
}

// prepare selects the account and applies every check that needs no
// broker: request refusals, an unconfigured account, the body (read whole,
// within BodyTimeout) and the kill switch.
func (x *exchange) prepare(w http.ResponseWriter, r *http.Request, user string, accts []*Account) error {
	acct, err := x.p.selectAccount(accts, user)
	if err != nil {
		return err
	}
	x.acct = acct
	x.markOrder(r)
	x.bypass = acct.bypasses(r)
	if ce := refuseRequest(r, x.host, x.port, x.bypass); ce != nil {
		ce.Account = acct.Name
		return ce
	}
	if !x.bypass && (len(acct.Missing) > 0 || acct.Source == nil) {
		return &auth.NotConfiguredError{Account: acct.Name, Missing: acct.Missing}
	}
	// Bodies are read whole, within BodyTimeout (set when the request
	// arrived), before anything goes upstream (login endpoints' too: they
	// are small).
	err = x.bufferBody(r)
	clearBodyDeadline(w)
	if err != nil {
		return err
	}
	return x.guardOrder(r)
}

// bypasses reports whether r goes to the broker's own login endpoints.
func (a *Account) bypasses(r *http.Request) bool {
	if b, ok := a.Broker.(auth.Bypasser); ok {
		return b.Bypass(r)
	}
	return a.Bypass != nil && a.Bypass(r)
}

// bufferBody reads the request body (bounded by MaxBody) so that it can be
// rewritten and replayed.
func (x *exchange) bufferBody(r *http.Request) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	if r.ContentLength > x.p.opts.MaxBody {
		return auth.ErrTooLarge
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, x.p.opts.MaxBody+1))
	_ = r.Body.Close()
	if err != nil {
		return &ClientError{Status: http.StatusBadRequest, Code: CodeBadRequest,
			Message: "could not read the request body: " + err.Error(), Err: err}
	}
	if int64(len(data)) > x.p.opts.MaxBody {
		return auth.ErrTooLarge
	}
	x.body, x.hasBody = data, true
	r.Body = http.NoBody
	r.ContentLength = int64(len(data))
	return nil
}

// rewrite prepares the outgoing request (ReverseProxy.Rewrite); hop-by-hop
// and X-Forwarded headers are already removed.
func (x *exchange) rewrite(pr *httputil.ProxyRequest) {
	u := *pr.In.URL
	u.Scheme = "https"
	u.Host = x.host
	if x.port != "" && x.port != "443" {
		u.Host = x.host + ":" + x.port
	}
	u.User = nil
	pr.Out.URL = &u
	pr.Out.Host = u.Host
	pr.Out.Close = false // keep the upstream connection pooled
	pr.Out.Header.Del("Proxy-Authorization")
}

// RoundTrip is the ReverseProxy transport: token, inject, forward, and one
// replay with a fresh token when the broker rejects the first.
func (x *exchange) RoundTrip(out *http.Request) (*http.Response, error) {
	p := x.p
	if x.bypass {
		// The broker's own login endpoints: forwarded untouched.
		x.setBody(out)
		return p.upstream.RoundTrip(out)
	}
	ctx := out.Context()
	acct := x.acct
	tok, err := p.token(ctx, acct, nil)
	if err != nil {
		return nil, err
	}
	if !tok.Valid(p.opts.Now()) {
		return nil, &ClientError{Status: http.StatusBadGateway, Code: CodeLoginFailed, Account: acct.Name,
			Message: "no valid token could be obtained"}
	}
	pristine := out.Header.Clone()
	resp, err := x.attempt(out, tok)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return wrapStream(resp, acct.Broker, x.host, tok), nil
	}
	holder, _ := acct.Source.(rejectionHolder)
	if !acct.Broker.Rejected(resp, peeker(resp)) && !p.sessionDead(ctx, acct, resp, tok) {
		if holder != nil {
			holder.Accepted()
		}
		if resp, err = x.follow(out, pristine, tok, resp); err != nil {
			return nil, err
		}
		return x.checkBody(resp)
	}
	if holder != nil && !holder.RejectHeld() && holder.FreshAfterRejection(tok) {
		// The token of the re-login after a rejection is refused too (its
		// own request stopped waiting for it): the same verdict.
		peek := peeker(resp)
		holder.RejectedAgain(tok, rejectionMessage(resp, peek()))
	}
	if holder != nil && holder.RejectHeld() {
		// A fresh token was refused too: a login would not help. Pass
		// the broker's own answer on.
		x.outcome = outcomeRejected
		p.log.Info("token rejected by broker; re-logins held, passing the answer on", "account", acct.Name, "status", resp.StatusCode)
		return x.checkBody(resp)
	}
	// The broker refused the token: drop it, log in once more, replay.
	drain(resp)
	p.log.Info("token rejected by broker; logging in again", "account", acct.Name, "status", resp.StatusCode)
	fresh, err := p.token(ctx, acct, tok)
	if err != nil {
		return nil, err
	}
	x.replayed = true
	again := out.Clone(ctx)
	again.Header = pristine
	resp, err = x.attempt(again, fresh)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return wrapStream(resp, acct.Broker, x.host, fresh), nil
	}
	if holder != nil {
		peek := peeker(resp)
		if acct.Broker.Rejected(resp, peek) {
			x.outcome = outcomeRejected
			holder.RejectedAgain(fresh, rejectionMessage(resp, peek()))
		} else {
			holder.Accepted()
		}
	}
	return x.checkBody(resp)
}

// wrapStream routes the client-to-broker bytes of an upgraded connection
// through the broker's StreamRewriter, when it has one. ReverseProxy copies
// client bytes into resp.Body's Write and broker bytes out of its Read.
func wrapStream(resp *http.Response, b Injector, host string, tok *auth.Token) *http.Response {
	sr, ok := b.(auth.StreamRewriter)
	if !ok {
		return resp
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		return resp
	}
	resp.Body = &rewrittenStream{ReadWriteCloser: rwc, w: sr.RewriteStream(host, tok, rwc)}
	return resp
}

type rewrittenStream struct {
	io.ReadWriteCloser
	w io.Writer
}

func (s *rewrittenStream) Write(p []byte) (int, error) { return s.w.Write(p) }

// setBody gives req a fresh reader over the buffered request body.
func (x *exchange) setBody(req *http.Request) {
	if !x.hasBody {
		return
	}
	body := x.body
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
}

// attempt sends one try upstream: the buffered body, the route the token
// names, the client's own credentials stripped and the account's injected,
// and an order's slot in the rate guard.
func (x *exchange) attempt(req *http.Request, tok *auth.Token) (*http.Response, error) {
	x.setBody(req)
	x.route(req, tok)
	stripClientCredentials(req.Header, x.acct.Broker)
	if err := x.acct.Broker.Inject(req, tok); err != nil {
		return nil, err
	}
	x.injected = true
	release, err := x.orderSlot(req.Context())
	if err != nil {
		return nil, err
	}
	defer release()
	return x.p.upstream.RoundTrip(req)
}

// peeker returns a function that reads up to peekLimit bytes of resp's body
// once, leaving the body whole for the client.
func peeker(resp *http.Response) func() []byte {
	var (
		done bool
		buf  []byte
	)
	return func() []byte {
		if done || resp.Body == nil {
			return buf
		}
		done = true
		data, err := readSized(resp.Body, resp.ContentLength, peekLimit)
		buf = data
		rest := resp.Body
		if err != nil {
			// Hand the client what was read; the read error surfaces on the next read.
			resp.Body = &multiReadCloser{Reader: io.MultiReader(bytes.NewReader(data), errReader{err}), c: rest}
			return buf
		}
		resp.Body = &multiReadCloser{Reader: io.MultiReader(bytes.NewReader(data), rest), c: rest}
		return buf
	}
}

// readSized reads r to its end or to limit bytes, like io.ReadAll over an
// io.LimitReader, in one allocation when size (the declared length; < 0:
// unknown) is right.
func readSized(r io.Reader, size, limit int64) ([]byte, error) {
	if size < 0 || size > limit {
		size = min(512, limit)
	}
	buf := make([]byte, 0, size+1) // +1: room to see the end without growing
	lr := io.LimitedReader{R: r, N: limit}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

type multiReadCloser struct {
	io.Reader
	c io.Closer
}

func (m *multiReadCloser) Close() error { return m.c.Close() }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// copyBuffers recycles the ReverseProxy's response-copy buffers; without a
// pool it allocates 32 KiB for every request (see BENCHMARKS.md). 4 KiB is
// what net/http's server buffers per client connection anyway (its writes
// to the client go out in 4 KiB pieces whatever the copy buffer), and every
// request in flight holds one: 16 KiB buffers cost 4 MiB at 256 concurrent
// clients for no fewer syscalls.
type copyBuffers struct{ pool sync.Pool }

func newCopyBuffers() *copyBuffers {
	return &copyBuffers{pool: sync.Pool{New: func() any {
		b := make([]byte, 4<<10)
		return &b
	}}}
}

func (c *copyBuffers) Get() []byte  { return *c.pool.Get().(*[]byte) }
func (c *copyBuffers) Put(b []byte) { c.pool.Put(&b) }

// drain discards a small remainder so the connection can be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 256<<10))
	_ = resp.Body.Close()
}

// modifyResponse notes the broker's status and journals an order.
func (x *exchange) modifyResponse(resp *http.Response) error {
	x.status = resp.StatusCode
	x.recordOrder(resp)
	return nil
}

// errorHandler answers the client with the DESIGN.md error shape.
func (x *exchange) errorHandler(w http.ResponseWriter, _ *http.Request, err error) { x.fail(w, err) }

// name is the selected account's name, "" before one is selected.
func (x *exchange) name() string {
	if x.acct == nil {
		return ""
	}
	return x.acct.Name
}

// fail answers the client with the proxy's own error instead of the broker.
func (x *exchange) fail(w http.ResponseWriter, err error) {
	p, name := x.p, x.name()
	ce := classify(err, name, p.opts.Now(), p.loginURL)
	x.status, x.outcome = ce.Status, ce.Code
	x.recordOrder(nil)
	if ce.Status == 499 {
		return // the client went away
	}
	p.log.Warn("request not forwarded", "account", name, "code", ce.Code, "err", ce.Message)
	ce.write(w)
}

// finish logs one line per broker request and counts it.
func (x *exchange) finish(r *http.Request) {
	p := x.p
	outcome := x.outcome
	switch {
	case outcome != "":
	case x.bypass:
		outcome = "bypass"
	case x.status >= 400:
		outcome = "upstream_error"
	default:
		outcome = "ok"
	}
	name := x.name()
	x.recordOrder(nil)
	rec := RequestRecord{Account: name, Method: r.Method, Path: r.URL.Path, Status: x.status,
		Outcome: outcome, Duration: p.opts.Now().Sub(x.start), Injected: x.injected, Replayed: x.replayed}
	if x.bodyErr != nil && (outcome == "ok" || outcome == "upstream_error" || outcome == outcomeRejected) {
		// The broker's answer broke off after its first bytes reached the
		// client: a failure, not a success.
		outcome = CodeUpstreamUnreachable
		rec.Outcome = outcome
		p.log.Warn("broker answer broke off", "account", name, "err", x.bodyErr)
	}
	if x.acct != nil {
		x.acct.requests.add(outcome)
	}
	p.log.Info("request", "account", rec.Account, "method", rec.Method, "path", safePath(rec.Path),
		"status", rec.Status, "outcome", rec.Outcome, "dur", rec.Duration.Round(time.Microsecond),
		"injected", rec.Injected, "replayed", rec.Replayed)
	if p.opts.Observe != nil {
		p.opts.Observe(rec)
	}
}

// safePath trims absurdly long paths in logs.
func safePath(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

func (p *Proxy) loginURL(account string) string { return loginURL(p.opts.Listen, account) }

// credentialHeaders is implemented by a broker whose credentials travel in
// headers besides Authorization (auth/angelone's X-PrivateKey).
type credentialHeaders interface{ CredentialHeaders() []string }

// stripClientCredentials removes every Authorization header the client
// sent, and the broker's other credential headers, in any spelling (a
// client or HTTP/2 may deliver a non-canonical key), so that only the
// account's injected credentials reach the broker. It runs once here,
// before every broker's Inject.
func stripClientCredentials(h http.Header, b Injector) {
	names := []string{"Authorization"}
	if ch, ok := b.(credentialHeaders); ok {
		names = append(names, ch.CredentialHeaders()...)
	}
	for k := range h {
		for _, n := range names {
			if strings.EqualFold(k, n) {
				delete(h, k)
			}
		}
	}
}
