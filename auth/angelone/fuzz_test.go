package angelone

import (
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/authproxy/authproxy/auth"
)

// FuzzParseSession: any answer yields either header-safe tokens from a 2xx
// success envelope or a *auth.LoginError with a clean, bounded message.
func FuzzParseSession(f *testing.F) {
	f.Add(200, []byte(`{"status":true,"message":"SUCCESS","errorcode":"","data":{"jwtToken":"a.b.c","refreshToken":"r.s.t","feedToken":"f"}}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		s, err := ParseSession(status, body)
		if err == nil {
			if status < 200 || status > 299 || !auth.IsB64Token(s.JWT) {
				t.Fatalf("jwt %q from HTTP %d", s.JWT, status)
			}
			for _, v := range []string{s.Refresh, s.Feed} {
				if v != "" && !auth.IsB64Token(v) {
					t.Fatalf("unsafe token %q", v)
				}
			}
			return
		}
		var le *auth.LoginError
		if !errors.As(err, &le) || s != (Session{}) {
			t.Fatalf("err %T with %+v", err, s)
		}
		if le.StatusCode != status || le.Message == "" || !utf8.ValidString(le.Message) || len(le.Message) > 2*auth.MaxMessageLen+16 {
			t.Fatalf("LoginError %+v", le)
		}
		for _, r := range le.Message {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("control character in %q", le.Message)
			}
		}
	})
}

// FuzzIsTokenRefusal never panics and says yes only to a JSON object.
func FuzzIsTokenRefusal(f *testing.F) {
	f.Add(200, []byte(`{"success":false,"message":"Invalid Token","errorCode":"AG8001","data":""}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if IsTokenRefusal(status, body) {
			b := bytes.TrimSpace(body)
			if len(b) == 0 || b[0] != '{' {
				t.Fatalf("%q accepted", body)
			}
		}
	})
}
