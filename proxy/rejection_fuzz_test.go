package proxy

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzRejectionMessage: the broker's words shown on the status page come
// from an untrusted body: never a panic, always short valid UTF-8 on one line.
func FuzzRejectionMessage(f *testing.F) {
	for _, s := range []string{
		`{"head":{"status":"0"},"body":{"Status":9,"Message":"Invalid Session"}}`,
		`{"IsError":true,"Message":"Unauthorized","ResponseException":{"ExceptionMessage":"Session expired"}}`,
		`{"errorType":"TokenException","message":"token expired"}`,
		`Access is denied`, `<html>401</html>`, `{"a":{"b":{"c":{"message":"deep"}}}}`, "\xff\xfe", ``,
	} {
		f.Add(401, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			status = 401
		}
		m := rejectionMessage(&http.Response{StatusCode: status}, body)
		if m == "" || !utf8.ValidString(m) || strings.ContainsAny(m, "\r\n") || len(m) > 260 {
			t.Fatalf("message %q", m)
		}
	})
}

// A message cut at 200 bytes in the middle of a multi-byte rune stays valid
// UTF-8 (it once did not).
func TestRejectionMessageCutsOnARune(t *testing.T) {
	m := rejectionMessage(&http.Response{StatusCode: 401}, []byte(`{"message":"`+strings.Repeat("a", 189)+`ééé"}`))
	if !utf8.ValidString(m) || !strings.HasSuffix(m, "…") {
		t.Fatalf("message %q", m)
	}
}
