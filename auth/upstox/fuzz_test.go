package upstox

import (
	"testing"
	"unicode/utf8"

	"github.com/authproxy/authproxy/auth"
)

// FuzzParseError: whatever the body, the message is empty or clean,
// printable and bounded.
func FuzzParseError(f *testing.F) {
	f.Add([]byte(`{"status":"error","errors":[{"errorCode":"UDAPI100050","message":"Invalid token used to access API","propertyPath":null,"invalidValue":null,"error_code":"UDAPI100050","property_path":null,"invalid_value":null}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		msg := ParseError(body)
		if msg == "" {
			return
		}
		if !utf8.ValidString(msg) || len(msg) > 2*auth.MaxMessageLen+16 {
			t.Fatalf("message %q", msg)
		}
		for _, r := range msg {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("control character in %q", msg)
			}
		}
	})
}
