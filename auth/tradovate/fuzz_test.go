package tradovate_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/tradovate"
)

// cannedTransport answers every request with one status, header and body.
type cannedTransport struct {
	status     int
	retryAfter string
	body       []byte
}

func (c cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	h := http.Header{"Content-Type": {"application/json"}}
	if c.retryAfter != "" {
		h.Set("Retry-After", c.retryAfter)
	}
	return &http.Response{StatusCode: c.status, Header: h, Body: io.NopCloser(bytes.NewReader(c.body)),
		ContentLength: int64(len(c.body)), Request: r}, nil
}

// fuzzBroker is a credential broker whose every call gets the canned answer.
func fuzzBroker(t *testing.T, status int, retryAfter string, body []byte, now func() time.Time) *tradovate.Broker {
	t.Helper()
	client := auth.NewHTTPClient(cannedTransport{status: status, retryAfter: retryAfter, body: body}, nil,
		auth.RetryOptions{Max: -1, Budget: time.Second})
	b, err := tradovate.New(credConfig(), client, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkAnswer holds what Login and Refresh promise for any broker answer:
// a usable token or an error, never both; errors without the password or
// sec; broker text that is printable and bounded; lockouts that do not end in the past.
func checkAnswer(t *testing.T, now time.Time, tok *auth.Token, err error) {
	t.Helper()
	if err == nil {
		if tok == nil || !tok.Valid(now) {
			t.Fatalf("no error but token %v is not valid at %v", tok != nil, now)
		}
		for _, v := range append([]auth.Secret{tok.Access}, tok.Aux[tradovate.AuxMD]) {
			if s := v.Reveal(); strings.ContainsAny(s, " \t\r\n,\"\\") || !utf8.ValidString(s) {
				t.Fatalf("token %q cannot go into an Authorization header", s)
			}
		}
		return
	}
	if tok != nil {
		t.Fatal("token returned with an error")
	}
	text := err.Error()
	for _, s := range []string{testPassword, testSec} {
		if strings.Contains(text, s) {
			t.Fatalf("error reveals a secret: %q", text)
		}
	}
	var le *auth.LoginError
	if errors.As(err, &le) {
		if !utf8.ValidString(le.Message) || len(le.Message) > 300+len("…") {
			t.Fatalf("login error message not clean: %q", le.Message)
		}
		for _, r := range le.Message {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("control character in %q", le.Message)
			}
		}
	}
	var rl *auth.RateLimitError
	if errors.As(err, &rl) && rl.Until.Before(now) {
		t.Fatalf("lockout until %v is before now %v", rl.Until, now)
	}
}

// FuzzLoginResponse feeds any accesstokenrequest answer to Login. Seeds
// live in testdata/fuzz/FuzzLoginResponse.
func FuzzLoginResponse(f *testing.F) {
	f.Add(200, "", []byte(`{"accessToken":"eyA.b.c","mdAccessToken":"eyM.d.e","expirationTime":"2030-01-01T00:00:00.000Z","userStatus":"Active","userId":7}`))
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		if status < 100 || status > 999 {
			t.Skip("not an HTTP status")
		}
		now := time.Date(2026, 3, 2, 15, 4, 5, 0, time.UTC)
		b := fuzzBroker(t, status, retryAfter, body, func() time.Time { return now })
		// A short deadline: a penalty ticket is never waited out here.
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		tok, err := b.Login(ctx)
		checkAnswer(t, now, tok, err)
	})
}

// FuzzRenewResponse feeds any renewaccesstoken answer to Refresh. Seeds
// live in testdata/fuzz/FuzzRenewResponse.
func FuzzRenewResponse(f *testing.F) {
	f.Add(200, "", []byte(`{"accessToken":"eyR.b.c","expirationTime":"2030-01-01T00:00:00Z","userStatus":"Active"}`))
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		if status < 100 || status > 999 {
			t.Skip("not an HTTP status")
		}
		now := time.Date(2026, 3, 2, 15, 4, 5, 0, time.UTC)
		b := fuzzBroker(t, status, retryAfter, body, func() time.Time { return now })
		old := &auth.Token{Access: "old-access", Expiry: now.Add(time.Hour), Obtained: now.Add(-time.Hour),
			Aux: map[string]auth.Secret{tradovate.AuxMD: "old-md"}, Meta: map[string]string{"environment": "demo"}}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		tok, err := b.Refresh(ctx, old)
		checkAnswer(t, now, tok, err)
		if err == nil && tok.Aux[tradovate.AuxMD] == "" {
			t.Fatal("a renewal lost the market-data token")
		}
	})
}
