package auth

import (
	"time"
)

// A broker with no renewal call (Tradingo, 5paisa, Pocketful) gets a new
// token only by a new login, which opens a new session and may end the old
// one with its open feed sockets. Such a token is replaced only within the
// refresh margin of its expiry, never at half-life (DESIGN.md "Refresh
// timing"). loginPoint is that moment for t: Expiry-Margin, but for a token
// whose whole life is shorter than the margin (test tokens, short sessions)
// no earlier than three quarters into its life, so that one login is not
// followed at once by the next.
func loginPoint(t *Token, early time.Time, life time.Duration) time.Time {
	floor := t.Obtained.Add(life * 3 / 4)
	if early.Before(floor) {
		return floor
	}
	return early
}

// RejectedAgain records that the broker refused t, a token obtained by the
// re-login that followed a rejection: the refusal is not the token's fault
// (an expired password, a broker-side block). For the hold (at most 30s) or
// until Accepted, RejectHeld reports true, and the pipeline passes the
// broker's answers on instead of logging in again on every rejection; the
// status shows StateRejected with message, the broker's own words.
func (c *Cache) RejectedAgain(t *Token, message string) {
	now := c.now()
	c.mu.Lock()
	c.heldUntil = now.Add(c.rejectHold)
	c.rejectMsg = message
	c.holdUntil.Store(c.heldUntil.UnixNano())
	c.suspect.Store(nil) // the verdict is in; after the hold one re-login may try again
	c.notifyLocked()
	c.mu.Unlock()
	c.rejections.Add(1)
	c.log.Warn("broker rejected a fresh token too; no re-login on rejections until a request succeeds or the hold ends",
		"hold", c.rejectHold, "broker_message", message)
	c.emit(EventRejectedAgain, nil)
}

// RejectHeld reports whether rejections must not cause a login now (see
// RejectedAgain). It is cheap enough to call on every rejected request.
func (c *Cache) RejectHeld() bool {
	until := c.holdUntil.Load()
	return until != 0 && c.now().UnixNano() < until
}

// FreshAfterRejection reports whether t was obtained by a login made
// because the broker rejected the token before it, and no request has been
// accepted with it yet: a rejection of t is then a rejection of a fresh
// token (RejectedAgain), even when the request that caused the login gave
// up waiting for it.
func (c *Cache) FreshAfterRejection(t *Token) bool {
	return t != nil && c.suspect.Load() == t
}

// Accepted tells the cache that the broker answered a request without
// rejecting its token: a hold set by RejectedAgain ends.
func (c *Cache) Accepted() {
	if c.suspect.Load() != nil {
		c.suspect.Store(nil)
	}
	if c.holdUntil.Load() == 0 {
		return
	}
	c.mu.Lock()
	was := !c.heldUntil.IsZero()
	c.heldUntil, c.rejectMsg = time.Time{}, ""
	c.holdUntil.Store(0)
	c.notifyLocked()
	c.mu.Unlock()
	if was {
		c.log.Info("broker accepts the token again")
	}
}
