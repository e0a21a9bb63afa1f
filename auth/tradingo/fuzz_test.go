package tradingo

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/authproxy/authproxy/auth"
)

// FuzzParseLoginResponse checks that any answer yields either a header-safe
// token from a 2xx or a *auth.LoginError with a printable, bounded message,
// never both and never a panic. Seeds live in testdata/fuzz.
func FuzzParseLoginResponse(f *testing.F) {
	f.Add(200, []byte(`{"StatusCode":200,"Message":"Request successful.","IsError":false,"ResponseException":null,"Result":{"ResponseId":43,"ResponseMessage":"Data Updated Successfully","Data":{"Isverified":true,"GenerationSourceTP":"FTLTP","AccessToken":"x.y.z"}}}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		tok, err := ParseLoginResponse(status, body)
		if err == nil {
			if status < 200 || status > 299 {
				t.Fatalf("token from HTTP %d", status)
			}
			if !auth.IsB64Token(tok) {
				t.Fatalf("token %q is not header-safe", tok)
			}
			return
		}
		if tok != "" {
			t.Fatal("token returned with an error")
		}
		var le *auth.LoginError
		if !errors.As(err, &le) {
			t.Fatalf("err %T, want *auth.LoginError", err)
		}
		if le.StatusCode != status || le.Message == "" {
			t.Fatalf("LoginError %+v for status %d", le, status)
		}
		if !utf8.ValidString(le.Message) || len(le.Message) > maxMessageLen+len("…") {
			t.Fatalf("message not clean: %q", le.Message)
		}
		for _, r := range le.Message {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("control character in message %q", le.Message)
			}
		}
	})
}

// FuzzRejectFilter: the cheap filter never hides a body the full decoder
// would read as an error envelope.
func FuzzRejectFilter(f *testing.F) {
	f.Add([]byte(`{"StatusCode":401,"Message":"Fail","IsError":true,"ResponseException":{"ExceptionMessage":"Request denied. Unauthorized access."},"Result":null}`))
	f.Add([]byte(`{"IsError" :  true}`))
	f.Add([]byte(`{"IsError":false,"Result":{"Data":{"IsError":true}}}`))
	f.Add([]byte(`{"isError":true}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var env rejectEnvelope
		if json.Unmarshal(body, &env) == nil && env.IsError && !mayBeError(body) {
			// Only an escaped or differently-cased key may slip past, which
			// Tradingo's .NET serializer never writes.
			if bytes.Contains(body, []byte(`"IsError"`)) {
				t.Fatalf("filter hid an error envelope: %q", body)
			}
		}
	})
}
