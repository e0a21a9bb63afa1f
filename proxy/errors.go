package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/authproxy/authproxy/auth"
)

// Error codes the client sees (DESIGN.md "Errors the client sees").
const (
	CodeNotConfigured       = "not_configured"
	CodeLoginFailed         = "login_failed"
	CodeLoginRequired       = "login_required"
	CodeRateLimited         = "rate_limited"
	CodeUpstreamTLS         = "upstream_tls"
	CodeUpstreamUnreachable = "upstream_unreachable"
	CodeTimeout             = "timeout"
	CodeBadRequest          = "bad_request"
	CodeTooLarge            = "body_too_large"
	CodeForbidden           = "forbidden"
	CodeNoAccount           = "no_account"
	CodeInternal            = "internal"
)

// ClientError is an answer the proxy gives itself instead of forwarding.
type ClientError struct {
	Status     int
	Code       string
	Account    string
	Message    string
	Hint       string
	RetryAfter time.Duration
	Err        error // the cause, for logs; never shown
}

func (e *ClientError) Error() string {
	s := e.Code
	if e.Account != "" {
		s += " for account " + strconv.Quote(e.Account)
	}
	return s + ": " + e.Message
}

func (e *ClientError) Unwrap() error { return e.Err }

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Account string `json:"account"`
		Message string `json:"message"`
		Hint    string `json:"hint,omitempty"`
	} `json:"error"`
}

// write sends the DESIGN.md error shape.
func (e *ClientError) write(w http.ResponseWriter) {
	var b errorBody
	b.Error.Code, b.Error.Account, b.Error.Message, b.Error.Hint = e.Code, e.Account, e.Message, e.Hint
	data, _ := json.Marshal(b)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Authproxy-Error", e.Code)
	h.Set("X-Authproxy-Hint", hintHeader(e))
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(data)+1))
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(append(data, '\n'))
}

// classify turns any error on the request path into a ClientError.
// loginURL builds the /login/NAME URL for the hint.
func classify(err error, account string, now time.Time, loginURL func(string) string) *ClientError {
	var ce *ClientError
	if errors.As(err, &ce) {
		if ce.Account == "" {
			ce.Account = account
		}
		return ce
	}
	e := &ClientError{Account: account, Err: err}
	var (
		nc *auth.NotConfiguredError
		rl *auth.RateLimitError
		le *auth.LoginError
	)
	switch {
	case isTLSError(err):
		e.Status, e.Code = http.StatusBadGateway, CodeUpstreamTLS
		e.Message = "the broker's TLS certificate could not be verified: " + tlsReason(err)
		e.Hint = "if this is a staging or test host, add its CA to [upstream] ca_file in rules.toml"
	case errors.As(err, &nc):
		e.Status, e.Code = http.StatusBadGateway, CodeNotConfigured
		e.Message = fmt.Sprintf("account %q is not configured: unset environment variables %s", account, strings.Join(nc.Missing, ", "))
		e.Hint = "export " + strings.Join(nc.Missing, ", ") + " and restart authproxy"
	case errors.As(err, &rl):
		e.Status, e.Code = http.StatusTooManyRequests, CodeRateLimited
		e.RetryAfter = rl.Until.Sub(now)
		if e.RetryAfter < time.Second {
			e.RetryAfter = time.Second
		}
		e.Message = "the broker locked this account out until " + rl.Until.UTC().Format(time.RFC3339)
		if rl.Message != "" {
			e.Message += ": " + rl.Message
		}
		e.Hint = "authproxy makes no login attempt before then; wait, do not retry in a loop"
	case errors.Is(err, auth.ErrLoginRequired):
		e.Status, e.Code = http.StatusNetworkAuthenticationRequired, CodeLoginRequired
		e.Message = fmt.Sprintf("account %q needs an interactive login in a browser", account)
		if loginURL != nil {
			e.Hint = "open " + loginURL(account) + " (or run: authproxy login " + account + ")"
		}
	case errors.As(err, &le):
		e.Status, e.Code = http.StatusBadGateway, CodeLoginFailed
		e.Message = "the broker refused the login"
		if le.Message != "" {
			e.Message += ": " + le.Message
		} else if le.StatusCode != 0 {
			e.Message += fmt.Sprintf(" (HTTP %d)", le.StatusCode)
		}
		e.Hint = "check the credentials of account " + strconv.Quote(account) + " in rules.toml and its environment variables"
	case errors.Is(err, auth.ErrTooLarge):
		e.Status, e.Code = http.StatusRequestEntityTooLarge, CodeTooLarge
		e.Message = "the request body is larger than the proxy's limit"
		e.Hint = "raise [limits] max_body in rules.toml"
	case errors.Is(err, auth.ErrBadRequest):
		e.Status, e.Code = http.StatusBadRequest, CodeBadRequest
		e.Message = "the request could not be rewritten: " + rootMessage(err)
	case isTimeout(err):
		e.Status, e.Code = http.StatusGatewayTimeout, CodeTimeout
		e.Message = "the broker did not answer in time"
		e.Hint = "check your network, or raise [upstream] timeout"
	case errors.Is(err, context.Canceled):
		e.Status, e.Code = 499, CodeTimeout
		e.Message = "the request was cancelled"
	default:
		e.Status, e.Code = http.StatusBadGateway, CodeUpstreamUnreachable
		e.Message = "the broker could not be reached: " + rootMessage(err)
	}
	return e
}

func isTLSError(err error) bool {
	if auth.IsTLSError(err) {
		return true
	}
	var (
		cv  *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		hn  x509.HostnameError
		ci  x509.CertificateInvalidError
		rec tls.RecordHeaderError
	)
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || errors.As(err, &rec)
}

func tlsReason(err error) string {
	var (
		ua x509.UnknownAuthorityError
		hn x509.HostnameError
		ci x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &ua):
		return "signed by an unknown authority"
	case errors.As(err, &hn):
		return "certificate is not valid for this host name"
	case errors.As(err, &ci):
		return "certificate is invalid (" + ci.Error() + ")"
	}
	return "TLS handshake failed"
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// rootMessage is the innermost error's text: useful, and never a secret in
// this code base (secrets are auth.Secret and print as REDACTED).
func rootMessage(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}
