package kite

import (
	"errors"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
)

// With the real Cache: an exchanged token is served and survives a restart;
// once Kite refuses it (403 TokenException, seen by Rejected), a re-login
// asks for the browser instead of calling Kite.
func TestCacheInteractive(t *testing.T) {
	e := newEnv(t)
	b := e.broker(t)
	store := auth.NewFileStore(filepath.Join(t.TempDir(), "tokens.json"))
	opts := auth.CacheOptions{Now: e.Clock.Now, Logger: e.Logger, FailureHold: time.Millisecond}
	c := auth.NewCache("zk", b, store, opts)
	if _, err := c.Token(t.Context()); !errors.Is(err, auth.ErrLoginRequired) {
		t.Fatalf("before any login: %v", err)
	}
	tok, err := b.Exchange(t.Context(), testRedirect, e.login(t, b, "st4te-xyz"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	c2 := auth.NewCache("zk", e.broker(t), store, opts)
	if err := c2.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	served, err := c2.Token(t.Context())
	if err != nil || served.Access != tok.Access || !served.Expiry.Equal(tok.Expiry) {
		t.Fatalf("restarted cache: %v", err)
	}
	e.fake.RevokeAll()
	_, body, resp := e.call(t, b, served, http.MethodGet, "https://"+APIHost+"/user/profile", nil)
	if !b.Rejected(resp, func() []byte { return []byte(body) }) {
		t.Fatal("revoked token not rejected")
	}
	sessions := e.fake.Counts().Sessions
	if _, err := c2.Relogin(t.Context(), served); !errors.Is(err, auth.ErrLoginRequired) {
		t.Errorf("relogin: %v", err)
	}
	if got := e.fake.Counts().Sessions; got != sessions {
		t.Errorf("relogin called Kite")
	}
	// At 06:00 IST the token is gone.
	e.Clock.Set(tok.Expiry)
	if _, err := c2.Token(t.Context()); !errors.Is(err, auth.ErrLoginRequired) {
		t.Errorf("after 06:00 IST: %v", err)
	}
}
