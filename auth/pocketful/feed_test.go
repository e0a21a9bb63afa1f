package pocketful

import (
	"testing"

	"github.com/authproxy/authproxy/auth"
)

// TestInjectFeed: the market-data socket's upgrade request leaves with the
// account's login_id and access_token in its query, whatever the client
// put there, and keeps the client's other parameters.
func TestInjectFeed(t *testing.T) {
	e := newEnv(t, nil)
	b := e.broker(t, nil)
	tok := &auth.Token{Access: "tok.en", Meta: map[string]string{MetaClientID: testClientID}}
	for _, tc := range []struct {
		target, want string
	}{
		{"/ws/v1/feeds", "access_token=tok.en&login_id=YA0002"},
		{"/ws/v1/feeds?login_id=PLACEHOLDER&access_token=dummy", "access_token=tok.en&login_id=YA0002"},
		{"/ws/v1/feeds?mode=full&access_token=&x=1", "mode=full&x=1&access_token=tok.en&login_id=YA0002"},
		{"/WS/v1/Feeds/", "access_token=tok.en&login_id=YA0002"},
		{"/ws/v1/other?access_token=dummy", "access_token=dummy"},
	} {
		r := httptestRequest(t, "GET", "https://"+Host+tc.target, nil)
		r.Header.Set("Upgrade", "websocket")
		r.Header.Set("Connection", "Upgrade")
		if err := b.Inject(r, tok); err != nil {
			t.Fatal(err)
		}
		if r.URL.RawQuery != tc.want {
			t.Errorf("%s: query %q, want %q", tc.target, r.URL.RawQuery, tc.want)
		}
		if r.Header.Get("Authorization") != "Bearer tok.en" {
			t.Errorf("%s: Authorization %q", tc.target, r.Header.Get("Authorization"))
		}
	}
	// Without a known client id the client's login_id stays (nothing
	// better is known) and the token is still set.
	r := httptestRequest(t, "GET", "https://"+Host+"/ws/v1/feeds?login_id=MINE", nil)
	if err := b.Inject(r, &auth.Token{Access: "tok.en"}); err != nil || r.URL.RawQuery != "login_id=MINE&access_token=tok.en" {
		t.Errorf("no client id: err %v, query %q", err, r.URL.RawQuery)
	}
}
