package auth

import (
	"errors"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth/authtest"
)

// TestUnreadableAnswerIsNotHeld: a refusal is held for FailureHold, an
// unreadable login answer (a broker fault) is not.
func TestUnreadableAnswerIsNotHeld(t *testing.T) {
	clk := authtest.Fixed(t0)
	b := &fakeBroker{now: clk.Now, life: time.Hour}
	c := NewCache("acct", b, nil, CacheOptions{Now: clk.Now})
	b.setErr(&LoginError{Account: "acct", StatusCode: 200, Message: "unreadable login response", Err: ErrBrokerFault})
	if _, err := c.Token(t.Context()); !errors.Is(err, ErrBrokerFault) {
		t.Fatalf("err = %v", err)
	}
	b.setErr(nil)
	if _, err := c.Token(t.Context()); err != nil {
		t.Fatalf("after a broker fault the next request got %v, want a new login", err)
	}
	if n := b.logins.Load(); n != 2 {
		t.Fatalf("logins = %d, want 2", n)
	}

	// A refusal, by contrast, is held.
	c2 := NewCache("acct", b, nil, CacheOptions{Now: clk.Now})
	b.setErr(&LoginError{Account: "acct", StatusCode: 200, Message: "wrong MPIN"})
	c2.Token(t.Context())
	b.setErr(nil)
	if _, err := c2.Token(t.Context()); err == nil {
		t.Fatal("a refused login was not held")
	}
}

func TestRejectedAgainHold(t *testing.T) {
	clk := authtest.Fixed(t0)
	b := &fakeBroker{now: clk.Now, life: time.Hour}
	c := NewCache("acct", b, nil, CacheOptions{Now: clk.Now, RejectHold: time.Hour}) // capped at 30s
	tok, err := c.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if c.RejectHeld() {
		t.Fatal("held before any rejection")
	}
	c.RejectedAgain(tok, "HTTP 200: Invalid Session")
	st := c.Status()
	if !c.RejectHeld() || st.State != StateRejected || st.LastError != "HTTP 200: Invalid Session" {
		t.Fatalf("held %v, status %q %q", c.RejectHeld(), st.State, st.LastError)
	}
	if got, _ := c.Token(t.Context()); got != tok {
		t.Fatal("the current token is no longer served during the hold")
	}
	clk.Advance(29 * time.Second)
	if !c.RejectHeld() {
		t.Fatal("hold ended before 30s")
	}
	clk.Advance(2 * time.Second)
	if c.RejectHeld() || c.Status().State != StateReady {
		t.Fatalf("hold lasts past 30s: state %q", c.Status().State)
	}
	c.RejectedAgain(tok, "blocked")
	c.Accepted()
	if c.RejectHeld() || c.Status().State != StateReady {
		t.Fatal("a successful request did not end the hold")
	}
}
