package kite

import (
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/authproxy/authproxy/auth"
)

// FuzzParseSession: any answer yields either a header-safe token from a
// 2xx success envelope or a *auth.LoginError with a clean, bounded message.
// Seeds live in testdata/fuzz.
func FuzzParseSession(f *testing.F) {
	f.Add(200, []byte(`{"status":"success","data":{"user_id":"AB1234","access_token":"abc","public_token":"p"}}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		s, err := ParseSession(status, body)
		if err == nil {
			if status < 200 || status > 299 || !auth.IsB64Token(s.AccessToken) {
				t.Fatalf("token %q from HTTP %d", s.AccessToken, status)
			}
			if s.UserID != "" && !validUserID(s.UserID) {
				t.Fatalf("user id %q", s.UserID)
			}
			return
		}
		var le *auth.LoginError
		if !errors.As(err, &le) || s != (Session{}) {
			t.Fatalf("err %T with session %+v", err, s)
		}
		if le.StatusCode != status || le.Message == "" || !utf8.ValidString(le.Message) || len(le.Message) > auth.MaxMessageLen+len("…") {
			t.Fatalf("LoginError %+v", le)
		}
		for _, r := range le.Message {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("control character in %q", le.Message)
			}
		}
	})
}

// FuzzIsTokenException never panics and only says yes to a JSON object.
func FuzzIsTokenException(f *testing.F) {
	f.Add([]byte(`{"status":"error","message":"x","error_type":"TokenException"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if IsTokenException(body) {
			trimmed := bytes.TrimSpace(body)
			if len(trimmed) == 0 || trimmed[0] != '{' {
				t.Fatalf("%q accepted", body)
			}
		}
	})
}
