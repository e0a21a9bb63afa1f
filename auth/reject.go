package auth

// RejectedAgain records that the broker refused t, a token obtained by the
// re-login that followed a rejection: the refusal is not the token's fault
// (an expired password, a broker-side block). For the hold (at most 30s) or
// until Accepted, RejectHeld reports true, and the pipeline passes the
// broker's answers on instead of logging in again on every rejection; the
// status shows StateRejected with message, the broker's own words.
func (c *Cache) RejectedAgain(t *Token, message string) {
	now := c.now()
	c.mu.Lock()
	c.sched.reject(now, message)
	c.holdUntil.Store(c.sched.heldUntil.UnixNano())
	c.suspect.Store(nil) // the verdict is in; after the hold one re-login may try again
	c.notifyLocked()
	c.mu.Unlock()
	c.rejections.Add(1)
	c.log.Warn("broker rejected a fresh token too; no re-login on rejections until a request succeeds or the hold ends",
		"hold", c.sched.rejectHold, "broker_message", message)
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
	was := c.sched.accept()
	c.holdUntil.Store(0)
	c.notifyLocked()
	c.mu.Unlock()
	if was {
		c.log.Info("broker accepts the token again")
	}
}
