package proxy

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHintHeader(t *testing.T) {
	rec := httptest.NewRecorder()
	(&ClientError{Status: 502, Code: CodeLoginFailed, Account: "tg", Message: "the broker refused the login:\r\nInvalid MPIN ü",
		Hint: "check the credentials"}).write(rec)
	got := rec.Header().Get("X-Authproxy-Hint")
	if got != "login_failed (account tg): the broker refused the login:  Invalid MPIN   ; check the credentials" {
		t.Errorf("X-Authproxy-Hint = %q", got)
	}
	long := hintHeader(&ClientError{Code: "timeout", Message: strings.Repeat("x", 2000)})
	if len(long) != maxHintHeader || !strings.HasSuffix(long, "...") {
		t.Errorf("long hint: %d bytes", len(long))
	}
}

func FuzzHintHeader(f *testing.F) {
	f.Add("login_failed", "tg", "refused\r\nX-Evil: 1", "hint")
	f.Fuzz(func(t *testing.T, code, account, msg, hint string) {
		h := hintHeader(&ClientError{Code: code, Account: account, Message: msg, Hint: hint})
		if len(h) > maxHintHeader {
			t.Fatalf("%d bytes", len(h))
		}
		for _, c := range []byte(h) {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("byte %#x in %q", c, h)
			}
		}
	})
}
