package pocketful

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/authproxy/authproxy/auth"
)

// fuzzCode is the authorization code the fuzzed callbacks carry.
const fuzzCode = "fuzz-authorization-code-7f3a"

// fuzzTransport answers the token endpoint and trading_info with canned
// answers.
type fuzzTransport struct {
	tokenStatus, infoStatus int
	tokenType               string
	tokenBody, infoBody     []byte
}

func (f fuzzTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	status, ctype, body := f.infoStatus, "application/json", f.infoBody
	if r.URL.Path == TokenPath {
		status, ctype, body = f.tokenStatus, f.tokenType, f.tokenBody
	}
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {ctype}},
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
}

// FuzzExchangeResponse feeds any token-endpoint answer (JSON or form) and
// any trading_info answer to Exchange: the result is a token that fits an
// Authorization header and has not expired, with a client id safe for a
// query string, or an error that names neither the app secret nor the
// authorization code. Seeds live in testdata/fuzz/FuzzExchangeResponse.
func FuzzExchangeResponse(f *testing.F) {
	f.Add(200, "application/json", []byte(`{"access_token":"eyJhbGciOi.x.y","expires_in":86399,"scope":"orders holdings","token_type":"bearer"}`),
		200, []byte(`{"data":{"client_id":"YA0002"},"message":"","status":"success"}`))
	f.Fuzz(func(t *testing.T, tokenStatus int, tokenType string, tokenBody []byte, infoStatus int, infoBody []byte) {
		if tokenStatus < 100 || tokenStatus > 999 || infoStatus < 100 || infoStatus > 999 {
			t.Skip("not an HTTP status")
		}
		now := time.Date(2026, 3, 2, 4, 0, 0, 0, time.UTC) // 09:30 IST
		client := auth.NewHTTPClient(fuzzTransport{tokenStatus: tokenStatus, infoStatus: infoStatus, tokenType: tokenType,
			tokenBody: tokenBody, infoBody: infoBody}, nil, auth.RetryOptions{Max: -1, Budget: time.Second})
		b, err := New(Config{Account: "pf", ClientID: testAppID, ClientSecret: testSecret, FillClientID: true},
			client, func() time.Time { return now }, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		tok, err := b.Exchange(ctx, testRedirect, url.Values{"code": {fuzzCode}, "state": {"s"}})
		if err == nil {
			if tok == nil || !tok.Valid(now) || !headerSafe(tok.Access.Reveal()) {
				t.Fatalf("token %+v is not usable", tok)
			}
			if cid, ok := tok.Meta[MetaClientID]; ok && !validClientID(cid) {
				t.Fatalf("client id %q is not safe for a query", cid)
			}
			for k, v := range tok.Meta {
				if !utf8.ValidString(v) || strings.ContainsAny(v, "\r\n") {
					t.Fatalf("Meta[%q] = %q is not clean", k, v)
				}
			}
			return
		}
		if tok != nil {
			t.Fatal("token returned with an error")
		}
		for _, s := range []string{testSecret, fuzzCode} {
			if strings.Contains(err.Error(), s) {
				t.Fatalf("error reveals a secret: %q", err.Error())
			}
		}
		var le *auth.LoginError
		if errors.As(err, &le) {
			if !utf8.ValidString(le.Message) || len(le.Message) > maxMessageLen+len("…") {
				t.Fatalf("message not clean: %q", le.Message)
			}
			for _, r := range le.Message {
				if r < 0x20 || r == 0x7f {
					t.Fatalf("control character in %q", le.Message)
				}
			}
		}
	})
}

// headerSafe reports whether s is an RFC 6750 b64token.
func headerSafe(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for _, c := range []byte(body) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~+/", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// FuzzRejected checks the token-rejection rule on any answer: every 401,
// a 403 only with a JSON TokenException body, nothing else; never a panic.
func FuzzRejected(f *testing.F) {
	f.Add(403, []byte(`{"status":"error","error_type":"TokenException","message":"Invalid token"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		b := &Broker{}
		resp := &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body))}
		got := b.Rejected(resp, func() []byte { return body })
		switch {
		case status == http.StatusUnauthorized && !got:
			t.Fatal("a 401 was not taken as a rejected token")
		case status != http.StatusUnauthorized && status != http.StatusForbidden && got:
			t.Fatalf("HTTP %d taken as a rejected token", status)
		case status == http.StatusForbidden && got && !bytes.Contains(bytes.ToLower(body), []byte("tokenexception")):
			t.Fatalf("a 403 without TokenException taken as a rejected token: %q", body)
		}
	})
}
