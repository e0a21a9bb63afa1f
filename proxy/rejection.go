package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/authproxy/authproxy/auth"
)

// outcomeRejected counts a broker answer that refused the account's token
// and was passed on to the client (DESIGN.md "Request pipeline" step 5).
const outcomeRejected = "rejected_by_broker"

// loginRetryAfter is what a client that waited [upstream] timeout for a
// login is told to wait before retrying; the login goes on meanwhile.
const loginRetryAfter = 5 * time.Second

// rejectionHolder is implemented by a TokenSource (*auth.Cache) that
// remembers a broker refusing even a fresh token, so that rejections stop
// costing logins for a while.
type rejectionHolder interface {
	RejectHeld() bool
	FreshAfterRejection(t *auth.Token) bool
	RejectedAgain(t *auth.Token, message string)
	Accepted()
}

// currentToken is a TokenSource that can tell its valid token without
// waiting (*auth.Cache): the common case then needs no timeout context.
type currentToken interface {
	Current(ctx context.Context) *auth.Token
}

// token gets acct's token, or a fresh one after rejected was refused,
// waiting for a login at most [upstream] timeout: past it the client gets
// `timeout` (504) with Retry-After, and the login goes on in the background.
func (p *Proxy) token(ctx context.Context, acct *Account, rejected *auth.Token) (*auth.Token, error) {
	if cur, ok := acct.Source.(currentToken); ok && rejected == nil {
		if t := cur.Current(ctx); t != nil {
			return t, nil // nothing to wait for
		}
	}
	wait := p.opts.Upstream.Timeout
	if wait <= 0 {
		wait = 30 * time.Second
	}
	lctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var (
		tok *auth.Token
		err error
	)
	if rejected == nil {
		tok, err = acct.Source.Token(lctx)
	} else {
		tok, err = acct.Source.Relogin(lctx, rejected)
	}
	if err != nil && ctx.Err() == nil && errors.Is(lctx.Err(), context.DeadlineExceeded) {
		return nil, &ClientError{Status: http.StatusGatewayTimeout, Code: CodeTimeout, Account: acct.Name,
			Message:    fmt.Sprintf("the login for account %q did not finish within [upstream] timeout (%s); it goes on in the background", acct.Name, wait),
			Hint:       "retry after the Retry-After delay",
			RetryAfter: loginRetryAfter, Err: err}
	}
	return tok, err
}

// checkBody makes sure a broker answer that breaks off before any of its
// bytes reached the client becomes `upstream_unreachable` (502) instead of
// a closed connection: a small answer (known length up to peekLimit) is read
// whole before the client sees anything, a larger or unsized one up to its
// first byte. A break later on is recorded in x for the log and metrics.
func (x *exchange) checkBody(resp *http.Response) (*http.Response, error) {
	if resp.Body == nil || resp.Body == http.NoBody || resp.Request == nil || resp.Request.Method == http.MethodHead ||
		resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified {
		return resp, nil
	}
	body := resp.Body
	var (
		head []byte
		err  error
	)
	if resp.ContentLength >= 0 && resp.ContentLength <= peekLimit {
		head, err = readSized(body, resp.ContentLength, resp.ContentLength+1)
		if err == nil && int64(len(head)) < resp.ContentLength {
			err = io.ErrUnexpectedEOF
		}
	} else {
		buf := make([]byte, 4<<10)
		var n int
		n, err = io.ReadAtLeast(body, buf, 1)
		head = buf[:n]
		if errors.Is(err, io.EOF) && resp.ContentLength <= 0 {
			err = nil
		}
	}
	if err != nil {
		_ = body.Close()
		name := x.acct.Name
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, &ClientError{Status: http.StatusBadGateway, Code: CodeUpstreamUnreachable, Account: name,
			Message: "the broker's answer broke off before it was complete: " + rootMessage(err),
			Hint:    "the request may or may not have been processed by the broker; check before repeating an order",
			Err:     err}
	}
	resp.Body = &multiReadCloser{Reader: io.MultiReader(bytes.NewReader(head), &watchedBody{r: body, x: x}), c: body}
	return resp, nil
}

// watchedBody records a read error other than the end of the body.
type watchedBody struct {
	r io.Reader
	x *exchange
}

func (w *watchedBody) Read(b []byte) (int, error) {
	n, err := w.r.Read(b)
	if err != nil && !errors.Is(err, io.EOF) && w.x.bodyErr == nil {
		w.x.bodyErr = err
	}
	return n, err
}

// messageKeys are where brokers put their words in an error answer.
var messageKeys = []string{"message", "Message", "msg", "Msg", "errorMessage", "ErrorMessage", "error_description",
	"errorText", "emsg", "error", "Error"}

// rejectionMessage extracts the broker's own words from a rejecting answer
// (a JSON message field, else a short text body, else the HTTP status).
func rejectionMessage(resp *http.Response, body []byte) string {
	var v any
	if json.Unmarshal(body, &v) == nil {
		if m := findMessage(v, 0); m != "" {
			return clipMessage(fmt.Sprintf("HTTP %d: %s", resp.StatusCode, m))
		}
	}
	text := strings.TrimSpace(string(body))
	if text != "" && utf8.ValidString(text) && !strings.ContainsAny(text, "<{") {
		return clipMessage(fmt.Sprintf("HTTP %d: %s", resp.StatusCode, text))
	}
	return fmt.Sprintf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
}

func findMessage(v any, depth int) string {
	obj, ok := v.(map[string]any)
	if !ok || depth > 2 {
		return ""
	}
	for _, k := range messageKeys {
		switch m := obj[k].(type) {
		case string:
			if strings.TrimSpace(m) != "" {
				return strings.TrimSpace(m)
			}
		case map[string]any:
			if s := findMessage(m, depth+1); s != "" {
				return s
			}
		}
	}
	for _, k := range []string{"head", "body", "data", "Data", "Body", "Head"} {
		if s := findMessage(obj[k], depth+1); s != "" {
			return s
		}
	}
	return ""
}

// clipMessage cleans a broker's text like every other broker message
// (auth.BrokerMessage) and keeps the status line short: 200 bytes.
func clipMessage(s string) string { return auth.Clip(auth.BrokerMessage(s), 200) }

// route sends req to the host the broker names for tok (auth.HostRouter:
// 5paisa's feed host from the RedirectServer claim), and says so in the log.
func (x *exchange) route(req *http.Request, tok *auth.Token) {
	hr, ok := x.acct.Broker.(auth.HostRouter)
	if !ok {
		return
	}
	to := hr.UpstreamHost(x.host, tok)
	if to == x.host || to == "" {
		return
	}
	host := to
	if x.port != "" && x.port != "443" {
		host = to + ":" + x.port
	}
	req.URL.Host, req.Host = host, host
	// A client's Origin naming the host it asked for (WebSocket clients
	// send their target's origin) names the host it now goes to.
	if o, err := url.Parse(req.Header.Get("Origin")); err == nil && o.Host != "" && strings.EqualFold(o.Hostname(), x.host) {
		port := o.Port()
		o.Host = to
		if port != "" {
			o.Host = to + ":" + port
		}
		req.Header.Set("Origin", o.String())
	}
	x.p.log.Info("sending the request to the host the token names", "account", x.acct.Name,
		"asked", x.host, "host", to, "path", safePath(req.URL.Path))
}

// sessionDead reports whether resp, not a plain rejection, comes from a
// closed broker session (auth.SessionChecker: Tradovate's 408/429/5xx),
// confirmed with one cheap authenticated call so that an outage is passed
// on as is and costs no login.
func (p *Proxy) sessionDead(ctx context.Context, acct *Account, resp *http.Response, tok *auth.Token) bool {
	sc, ok := acct.Broker.(auth.SessionChecker)
	if !ok || !sc.SuspectDead(resp) {
		return false
	}
	alive, err := sc.SessionAlive(ctx, tok)
	switch {
	case err != nil:
		p.log.Info("broker fault, not a closed session: passing the answer on", "account", acct.Name,
			"status", resp.StatusCode, "err", err)
		return false
	case alive:
		return false
	}
	p.log.Info("the broker closed the session behind the token", "account", acct.Name, "status", resp.StatusCode)
	return true
}

// maxRedirects bounds the redirects the proxy follows for one request.
const maxRedirects = 3

// follow follows 307/308 redirects to hosts the broker accepts
// (auth.RedirectFollower), with the same token: no second session.
func (x *exchange) follow(orig *http.Request, pristine http.Header, tok *auth.Token, resp *http.Response) (*http.Response, error) {
	rf, ok := x.acct.Broker.(auth.RedirectFollower)
	if !ok {
		return resp, nil
	}
	for range maxRedirects {
		if resp.StatusCode != http.StatusTemporaryRedirect && resp.StatusCode != http.StatusPermanentRedirect {
			return resp, nil
		}
		loc, err := resp.Location()
		if err != nil || !rf.FollowRedirect(loc) {
			return resp, nil
		}
		drain(resp)
		next := orig.Clone(orig.Context())
		next.Header = pristine.Clone()
		next.URL = loc
		next.Host = loc.Host
		x.p.log.Info("following the broker's redirect with the same token", "account", x.acct.Name,
			"host", loc.Hostname(), "path", safePath(loc.Path))
		if resp, err = x.attempt(next, tok); err != nil {
			return nil, err
		}
	}
	return resp, nil
}
