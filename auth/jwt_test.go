package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tradingoSample is the AccessToken from Tradingo's "Steps to generate
// access token" page (shared/seeds/000).
const tradingoSample = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJodHRwOi8vc2NoZW1hcy54bWxzb2FwLm9yZy93cy8yMDA1LzA1L2lkZW50aXR5L2NsYWltcy9uYW1lIjoiODczNjUzMzktNkEwNS00MzQzLUE3NkYtRkRGNjg5MzQ0QTIwIiwiaHR0cDovL3NjaGVtYXMubWljcm9zb2Z0LmNvbS93cy8yMDA4LzA2L2lkZW50aXR5L2NsYWltcy91c2VyZGF0YSI6Ijg3MzY1MzM5LTZBMDUtNDM0My1BNzZGLUZERjY4OTM0NEEyMCIsImh0dHA6Ly9zY2hlbWFzLm1pY3Jvc29mdC5jb20vd3MvMjAwOC8wNi9pZGVudGl0eS9jbGFpbXMvcm9sZSI6IkNsaWVudCIsImV4cCI6MTcwNjY2OTk5OSwiaXNzIjoiaHR0cHM6Ly9zdGFnaW5ndHJhZGluZ29yZXN0YXBpLnN3YXN0aWthLmNvLmluIiwiYXVkIjoiaHR0cHM6Ly9zdGFnaW5ndHJhZGluZ29yZXN0YXBpLnN3YXN0aWthLmNvLmluIn0.N8WK_8Vfpgs3aK2El06Z94qvxMOVVvoq-7WMBReEVlU"

func makeJWT(payload string, pad bool) string {
	enc := base64.RawURLEncoding
	if pad {
		enc = base64.URLEncoding
	}
	return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256"}`)) + "." +
		enc.EncodeToString([]byte(payload)) + ".c2ln"
}

func TestJWTExpiry(t *testing.T) {
	tests := []struct {
		name  string
		token string
		want  time.Time
		err   string
	}{
		{"tradingo sample", tradingoSample, time.Unix(1706669999, 0), ""},
		{"numeric string", makeJWT(`{"exp":"1706669999"}`, false), time.Unix(1706669999, 0), ""},
		{"padded payload", makeJWT(`{"exp": 1706669999}`, true), time.Unix(1706669999, 0), ""},
		{"fraction", makeJWT(`{"exp":1706669999.25}`, false), time.Unix(1706669999, 250_000_000), ""},
		{"no exp", makeJWT(`{"sub":"x"}`, false), time.Time{}, "no exp"},
		{"exp is bool", makeJWT(`{"exp":true}`, false), time.Time{}, "want a number"},
		{"exp not numeric", makeJWT(`{"exp":"soon"}`, false), time.Time{}, "not a number"},
		{"exp negative", makeJWT(`{"exp":-1}`, false), time.Time{}, "out of range"},
		{"exp huge", makeJWT(`{"exp":1e300}`, false), time.Time{}, "out of range"},
		{"two segments", "eyJhIjoxfQ.eyJleHAiOjF9", time.Time{}, "segments"},
		{"payload not base64", "a.!!!.c", time.Time{}, "base64"},
		{"payload array", makeJWT(`[1]`, false), time.Time{}, "JSON object"},
		{"payload null", makeJWT(`null`, false), time.Time{}, "JSON object"},
		{"trailing data", makeJWT(`{"exp":1}{}`, false), time.Time{}, "trailing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := JWTExpiry(tt.token)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("JWTExpiry = %s, want %s", got, tt.want)
			}
		})
	}
	if _, err := JWTExpiry(makeJWT(`{}`, false)); !errors.Is(err, ErrNoExpiry) {
		t.Errorf("missing exp: err = %v, want ErrNoExpiry", err)
	}
}

func TestJWTClaims(t *testing.T) {
	c, err := JWTClaims(tradingoSample)
	if err != nil {
		t.Fatal(err)
	}
	if c["http://schemas.microsoft.com/ws/2008/06/identity/claims/role"] != "Client" {
		t.Errorf("claims = %v", c)
	}
	if _, ok := c["exp"].(json.Number); !ok {
		t.Errorf("exp is %T, want json.Number (no float rounding)", c["exp"])
	}
	// Errors never quote the token.
	secret := "eyJzZWNyZXQiOiJ4In0"
	_, err = JWTClaims("x." + secret + "!.y")
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("err = %v", err)
	}
}

func TestFuzzSeedsIncludeTradingo(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzJWTExpiry", "tradingo_sample"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), tradingoSample) {
		t.Error("fuzz corpus seed differs from the Tradingo sample token")
	}
}

func FuzzJWTExpiry(f *testing.F) {
	f.Add(tradingoSample)
	f.Add(makeJWT(`{"exp":"1706669999"}`, true))
	f.Fuzz(func(t *testing.T, token string) {
		exp, err := JWTExpiry(token)
		claims, cerr := JWTClaims(token)
		if err != nil {
			if cerr == nil {
				if _, ok := claims["exp"]; !ok && !errors.Is(err, ErrNoExpiry) {
					t.Fatalf("missing exp gave %v, want ErrNoExpiry", err)
				}
			}
			return
		}
		if cerr != nil {
			t.Fatalf("JWTExpiry succeeded but JWTClaims failed: %v", cerr)
		}
		if exp.IsZero() || exp.Before(time.Unix(0, 0)) || exp.Year() > 9999 {
			t.Fatalf("expiry %s out of range", exp)
		}
		// Re-encoding the claims must give the same expiry.
		payload, err := json.Marshal(claims)
		if err != nil {
			t.Fatalf("claims do not re-encode: %v", err)
		}
		again, err := JWTExpiry(makeJWT(string(payload), false))
		if err != nil || !again.Equal(exp) {
			t.Fatalf("re-encoded expiry = %s, %v; want %s", again, err, exp)
		}
	})
}
