package fakehttp

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestBearer(t *testing.T) {
	cases := []struct {
		vals []string
		tok  string
		ok   bool
	}{
		{[]string{"Bearer abc.def"}, "abc.def", true},
		{[]string{"bearer abc"}, "abc", true},
		{[]string{"Basic abc"}, "", false},
		{[]string{"Bearer "}, "", false},
		{[]string{"Bearer a b"}, "", false},
		{[]string{"Bearer a\tb"}, "", false},
		{[]string{"Bearer a,b"}, "", false},
		{[]string{"Bearer a", "Bearer b"}, "", false},
		{nil, "", false},
	}
	for _, c := range cases {
		h := http.Header{}
		for _, v := range c.vals {
			h.Add("Authorization", v)
		}
		tok, ok := Bearer(h)
		if tok != c.tok || ok != c.ok {
			t.Errorf("%q: got %q %v, want %q %v", c.vals, tok, ok, c.tok, c.ok)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteJSON(rec, 401, map[string]int{"s": 1})
	if rec.Code != 401 || rec.Body.String() != `{"s":1}` || rec.Header().Get("Content-Length") != "7" ||
		rec.Header().Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("got %d %q %v", rec.Code, rec.Body.String(), rec.Header())
	}
}

func TestRandToken(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok := RandToken(24)
		if len(tok) != 32 || strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("RandToken(24) = %q", tok)
		}
		if seen[tok] {
			t.Fatalf("RandToken repeated %q", tok)
		}
		seen[tok] = true
	}
	if got := RandToken(6); len(got) != 8 {
		t.Errorf("RandToken(6) = %q", got)
	}
}
