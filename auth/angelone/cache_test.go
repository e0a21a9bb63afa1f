package angelone

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
)

// With the real Cache: a rejected token is renewed with generateTokens, not
// a new TOTP login; when the refresh token is refused too, the Cache falls
// back to a TOTP login with a fresh code; a restarted Cache serves the saved
// token without logging in and never reuses its TOTP step.
func TestCacheRenewsThenFallsBack(t *testing.T) {
	e := newEnv(t)
	store := auth.NewFileStore(filepath.Join(t.TempDir(), "tokens.json"))
	opts := auth.CacheOptions{Now: e.Clock.Now, Logger: e.Logger, FailureHold: time.Millisecond}
	c := auth.NewCache("ao", e.broker(t, nil), store, opts)
	first, err := c.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Relogin(t.Context(), first)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.fake.Counts(); got.Logins != 1 || got.Renewals != 1 || second.Access == first.Access {
		t.Fatalf("after a rejection: counts %+v", got)
	}

	e.fake.ExpireRefresh()
	e.Clock.Advance(30 * time.Second) // the fallback login needs the next TOTP step
	third, err := c.Relogin(t.Context(), second)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.fake.Counts(); got.Logins != 2 || got.RenewFailures != 1 || third.Access == second.Access {
		t.Fatalf("after a refused refresh: counts %+v", got)
	}

	// A new process on the same store: no login, and its next login does
	// not reuse the step of the saved token's login.
	c2 := auth.NewCache("ao", e.broker(t, nil), store, opts)
	if err := c2.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	tok, err := c2.Token(t.Context())
	if err != nil || tok.Access != third.Access {
		t.Fatalf("restarted cache: %v", err)
	}
	if got := e.fake.Counts(); got.Logins != 2 || got.LoginFailures != 0 {
		t.Errorf("restart logged in: %+v", got)
	}
}
