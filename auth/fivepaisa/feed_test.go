package fivepaisa

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/authproxy/authproxy/auth"
)

func TestInjectFeedQuery(t *testing.T) {
	b := testBroker(t)
	tok := &auth.Token{Access: "eyJh.eyJi.sig-_", Meta: map[string]string{"client_code": "50012322"}}
	const want = "Value1=eyJh.eyJi.sig-_|50012322"
	for _, tc := range []struct {
		name, url, wantQuery string
	}{
		{"no query", "wss://openfeed.5paisa.com/feeds/api/chat", want},
		{"placeholder replaced", "wss://openfeed.5paisa.com/feeds/api/chat?Value1=x|y", want},
		{"other params kept", "wss://aopenfeed.5paisa.com/feeds/api/chat?a=1&value1=old&b=%7C&VALUE1", "a=1&b=%7C&" + want},
		{"escaped name replaced", "wss://bopenfeed.5paisa.com/feeds/api/chat?Val%75e1=old", want},
		{"path in any case", "wss://openfeed.5paisa.com/Feeds/API/Chat/?x=1", "x=1&" + want},
		{"host in any case", "wss://OpenFeed.5paisa.com:443/feeds/api/chat", want},
		{"empty query", "wss://openfeed.5paisa.com/feeds/api/chat?", want},
		{"other feed path untouched", "wss://openfeed.5paisa.com/feeds/api/other?Value1=x", "Value1=x"},
		{"api host untouched", "https://openapi.5paisa.com/feeds/api/chat?Value1=x", "Value1=x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := http.NewRequest(http.MethodGet, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("Upgrade", "websocket")
			r.Header.Set("Connection", "Upgrade")
			if err := b.Inject(r, tok); err != nil {
				t.Fatal(err)
			}
			if r.URL.RawQuery != tc.wantQuery {
				t.Errorf("query = %q, want %q", r.URL.RawQuery, tc.wantQuery)
			}
			if got := r.Header.Get("Authorization"); got != "bearer "+tok.Access.Reveal() {
				t.Errorf("Authorization = %q", got)
			}
			// What a server reads back.
			if tc.wantQuery == want || len(tc.wantQuery) > len(want) {
				q, err := url.ParseQuery(r.URL.RawQuery)
				if err != nil || len(q["Value1"]) != 1 || q.Get("Value1") != "eyJh.eyJi.sig-_|50012322" {
					t.Errorf("server would read Value1 %q (%v)", q["Value1"], err)
				}
			}
		})
	}
}

func TestInjectFeedClientCode(t *testing.T) {
	b := testBroker(t) // configured client code CFG1
	r, _ := http.NewRequest(http.MethodGet, "wss://openfeed.5paisa.com/feeds/api/chat", nil)
	if err := b.Inject(r, &auth.Token{Access: "tok"}); err != nil {
		t.Fatal(err)
	}
	if r.URL.RawQuery != "Value1=tok|CFG1" {
		t.Errorf("query = %q: the configured client code was not used", r.URL.RawQuery)
	}

	bb, err := NewBrowser(Config{Account: "fpweb", AppKey: "APPKEY123", UserID: "u", EncryptionKey: "e"},
		auth.NewHTTPClient(nil, nil, auth.RetryOptions{}), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, _ = http.NewRequest(http.MethodGet, "wss://openfeed.5paisa.com/feeds/api/chat?Value1=x", nil)
	err = bb.Inject(r, &auth.Token{Access: "secret-token"})
	var le *auth.LoginError
	if !errors.As(err, &le) || le.Account != "fpweb" {
		t.Fatalf("Inject without a client code = %v, want a LoginError", err)
	}
	if r.URL.RawQuery != "Value1=x" {
		t.Errorf("query changed on failure: %q", r.URL.RawQuery)
	}
}
