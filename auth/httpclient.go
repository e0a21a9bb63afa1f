package auth

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// RetryOptions bound the retries of HTTPClient.Do. Zero fields take the
// defaults.
type RetryOptions struct {
	Max     int           // retries after the first attempt; default 3, negative: none
	WaitMin time.Duration // first backoff; default 250ms
	WaitMax time.Duration // longest single wait, Retry-After included; default 5s
	Budget  time.Duration // bound on the whole call, retries and body read included; default 20s
}

func (o RetryOptions) withDefaults() RetryOptions {
	if o.Max == 0 {
		o.Max = 3
	}
	if o.Max < 0 {
		o.Max = 0
	}
	if o.WaitMin <= 0 {
		o.WaitMin = 250 * time.Millisecond
	}
	if o.WaitMax <= 0 {
		o.WaitMax = 5 * time.Second
	}
	if o.WaitMax < o.WaitMin {
		o.WaitMax = o.WaitMin
	}
	if o.Budget <= 0 {
		o.Budget = 20 * time.Second
	}
	return o
}

// HTTPClient sends broker login and renewal requests. It retries only what
// is safe to send twice, never retries a certificate failure, and logs each
// attempt with method, host and path only (queries may hold secrets).
// It is safe for concurrent use.
type HTTPClient struct {
	hc     *http.Client
	logger *slog.Logger
	opts   RetryOptions
}

// NewHTTPClient returns a client sending through rt (the verifying upstream
// transport; nil means a fresh http.Transport with system roots).
func NewHTTPClient(rt http.RoundTripper, logger *slog.Logger, opts RetryOptions) *HTTPClient {
	if rt == nil {
		rt = &http.Transport{Proxy: nil, ForceAttemptHTTP2: true, TLSHandshakeTimeout: 10 * time.Second}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &HTTPClient{
		hc:     &http.Client{Transport: rt, CheckRedirect: noRedirects},
		logger: logger,
		opts:   opts.withDefaults(),
	}
}

// Do sends req. With retrySafe false it resends only after a 502, 503 or
// 504 (the endpoint did not process it): use that for anything that
// consumes a TOTP code or opens a Tradovate session. With
// retrySafe true it retries refused, reset and timed-out connections, 5xx
// (except 501) and 429 with exponential backoff, honouring Retry-After when
// it fits within WaitMax and the budget (otherwise the 429 is returned at
// once for the caller to report). Certificate failures are never retried and
// stay visible to errors.As (*tls.CertificateVerificationError, x509 errors).
// A final 5xx or 429 is returned as a response, not an error. The body of the
// response must be closed; it can be read until the budget runs out.
func (c *HTTPClient) Do(ctx context.Context, req *http.Request, retrySafe bool) (*http.Response, error) {
	return c.do(ctx, req, retrySafe, nil)
}

// DoLogin is Do with retrySafe false for a login whose body carries a TOTP
// code. Before it is resent (after a gateway's 502/503/504), rebody is
// asked for a new body: it returns one with a fresh code when the code's
// time step has passed (never waiting for one), or false to resend the
// same body, whose code the endpoint never saw.
func (c *HTTPClient) DoLogin(ctx context.Context, req *http.Request, rebody func() ([]byte, bool)) (*http.Response, error) {
	return c.do(ctx, req, false, rebody)
}

func (c *HTTPClient) do(ctx context.Context, req *http.Request, retrySafe bool, rebody func() ([]byte, bool)) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Budget)
	rreq, err := retryablehttp.FromRequest(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%s %s: %w", req.Method, safeURL(req.URL), err)
	}
	var prepare retryablehttp.PrepareRetry
	if rebody != nil && req.GetBody != nil {
		rc, gerr := req.GetBody()
		var cur []byte
		if gerr == nil {
			cur, gerr = io.ReadAll(rc)
			_ = rc.Close()
		}
		if gerr != nil {
			cancel()
			return nil, fmt.Errorf("%s %s: %w", req.Method, safeURL(req.URL), gerr)
		}
		if err := rreq.SetBody(retryablehttp.ReaderFunc(func() (io.Reader, error) { return bytes.NewReader(cur), nil })); err != nil {
			cancel()
			return nil, fmt.Errorf("%s %s: %w", req.Method, safeURL(req.URL), err)
		}
		prepare = func(r *http.Request) error {
			if b, ok := rebody(); ok {
				cur = b
				r.ContentLength = int64(len(b))
			}
			return nil
		}
	}
	start := time.Now()
	deadline, _ := ctx.Deadline()
	target := safeURL(req.URL)
	var nextWait time.Duration
	var attemptStart time.Time
	retries := 0

	rc := &retryablehttp.Client{
		HTTPClient:   c.hc,
		Logger:       nil,
		RetryWaitMin: c.opts.WaitMin,
		RetryWaitMax: c.opts.WaitMax,
		RetryMax:     c.opts.Max,
		RequestLogHook: func(_ retryablehttp.Logger, r *http.Request, attempt int) {
			attemptStart = time.Now()
			c.logger.Debug("broker auth request", "method", r.Method, "url", target, "attempt", attempt+1)
		},
		CheckRetry: func(ctx context.Context, resp *http.Response, err error) (bool, error) {
			if retries >= c.opts.Max || ctx.Err() != nil {
				return false, nil
			}
			// A request that may consume a TOTP code or open a session is
			// resent only when a gateway answered 502/503/504: the login
			// endpoint never processed it (DESIGN.md "Login answers"), so
			// its code is unspent. A timeout or reset after sending is
			// ambiguous and never resent.
			if !retrySafe && (err != nil || resp == nil || !gatewayStatus(resp.StatusCode)) {
				return false, nil
			}
			var wait time.Duration
			if err != nil {
				if !retryableError(err) {
					return false, nil
				}
				wait = backoff(c.opts, retries)
			} else {
				if !retryableStatus(resp.StatusCode) {
					return false, nil
				}
				wait = backoff(c.opts, retries)
				if ra, ok := RetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
					if ra > c.opts.WaitMax {
						return false, nil
					}
					wait = max(wait, ra)
				}
			}
			// Retry only if the wait plus a reserve for the attempt itself
			// fits in the budget; otherwise answer with what we have.
			reserve := max(2*time.Since(attemptStart), c.opts.WaitMin)
			if time.Now().Add(wait + reserve).After(deadline) {
				return false, nil
			}
			retries++
			nextWait = wait
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			c.logger.Info("retrying broker auth request", "method", req.Method, "url", target,
				"status", status, "err", redactErr(err), "wait", wait, "retry", retries)
			return true, nil
		},
		Backoff: func(_, _ time.Duration, _ int, _ *http.Response) time.Duration {
			return nextWait
		},
		PrepareRetry: prepare,
		ErrorHandler: func(resp *http.Response, err error, _ int) (*http.Response, error) {
			if resp != nil && err == nil {
				return resp, nil
			}
			if resp != nil {
				_ = resp.Body.Close()
			}
			return nil, err
		},
	}
	resp, err := rc.Do(rreq)
	if err != nil {
		cancel()
		err = redactErr(err)
		c.logger.Debug("broker auth request failed", "method", req.Method, "url", target,
			"err", err, "took", time.Since(start))
		return nil, fmt.Errorf("%s %s: %w", req.Method, target, err)
	}
	c.logger.Debug("broker auth response", "method", req.Method, "url", target,
		"status", resp.StatusCode, "took", time.Since(start))
	if err := redirectError(req, resp); err != nil {
		_ = resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("%s %s: %w", req.Method, target, err)
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelBody releases the budget context when the body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

func backoff(o RetryOptions, retry int) time.Duration {
	d := o.WaitMin
	for i := 0; i < retry && d < o.WaitMax; i++ {
		d *= 2
	}
	return min(d, o.WaitMax)
}

// gatewayStatus reports the answers of a gateway in front of a login
// endpoint that did not reach it.
func gatewayStatus(code int) bool {
	return code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || (code >= 500 && code <= 599 && code != http.StatusNotImplemented)
}

// retryableError reports whether a transport error is worth another
// attempt: refused, reset or timed-out connections and connections closed
// before an answer. Certificate problems and malformed requests are not.
func retryableError(err error) bool {
	if err == nil || IsTLSError(err) {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.IsTemporary || dnsErr.IsTimeout
	}
	return h2Reset(err)
}

// h2Reset reports an HTTP/2 stream or connection the server reset or lost:
// HTTP/2's form of a reset connection. net/http's HTTP/2 error types are
// unexported, so they are recognised by their text.
func h2Reset(err error) bool {
	s := err.Error()
	return (strings.Contains(s, "stream error: stream ID") && strings.Contains(s, "received from peer")) ||
		strings.Contains(s, "http2: client connection lost") ||
		strings.Contains(s, "http2: server sent GOAWAY")
}

// IsTLSError reports whether err is a failure to trust the server's
// certificate (unknown authority, host name mismatch, expired or invalid
// certificate) or the server refusing ours (a "bad certificate" alert).
func IsTLSError(err error) bool {
	if err == nil {
		return false
	}
	var (
		verr  *tls.CertificateVerificationError
		uaErr x509.UnknownAuthorityError
		hnErr x509.HostnameError
		ciErr x509.CertificateInvalidError
		srErr x509.SystemRootsError
		ucErr x509.UnhandledCriticalExtension
	)
	if errors.As(err, &verr) || errors.As(err, &uaErr) || errors.As(err, &hnErr) ||
		errors.As(err, &ciErr) || errors.As(err, &srErr) || errors.As(err, &ucErr) {
		return true
	}
	var alert tls.AlertError
	if errors.As(err, &alert) && isCertAlert(uint8(alert)) {
		return true
	}
	// A TLS alert from the peer arrives as a net.OpError "remote error"
	// around an unexported type; recognise it by its text.
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" && op.Err != nil {
		return strings.Contains(op.Err.Error(), "certificate")
	}
	s := err.Error()
	return strings.Contains(s, "x509: ") || strings.Contains(s, "tls: failed to verify certificate")
}

// isCertAlert reports TLS alerts about certificates (RFC 8446 6.2).
func isCertAlert(a uint8) bool {
	switch a {
	case 42, 43, 44, 45, 46, 48, 116: // bad, unsupported, revoked, expired, unknown, unknown CA, certificate required
		return true
	}
	return false
}

// safeURL renders u without its query, fragment or user info.
func safeURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// redactErr strips query strings from a *url.Error's URL so that error
// texts never carry a secret passed in a query; the chain is kept intact for
// errors.Is/As.
func redactErr(err error) error {
	var ue *url.Error
	if err == nil || !errors.As(err, &ue) {
		return err
	}
	if u, perr := url.Parse(ue.URL); perr == nil {
		ue.URL = safeURL(u)
	} else {
		ue.URL = ""
	}
	return err
}

// Once sends req exactly once (no retry), bounded by the budget: for cheap
// checks whose answer matters more than their success.
func (c *HTTPClient) Once(ctx context.Context, req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Budget)
	resp, err := c.hc.Do(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%s %s: %w", req.Method, safeURL(req.URL), redactErr(err))
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}
