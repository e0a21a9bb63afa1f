package auth

import (
	"strings"
	"time"
)

// maxErrorText bounds Status.LastError.
const maxErrorText = 512

// Status states, in words a person reads at a glance.
const (
	StateReady      = "ready"
	StateRefreshing = "refreshing"
	StateNeedsLogin = "needs login"
	StateError      = "error"
	StateLockedOut  = "locked out"
	StateExpired    = "expired"
	StateEmpty      = "empty"
	// StateRejected: the broker refused a freshly obtained token too, so a
	// new login will not help for now (expired password, a broker-side
	// block); LastError holds the broker's message. See RejectedAgain.
	StateRejected = "rejected by broker"
)

// Status is a snapshot of one account's token state. It holds no secrets.
type Status struct {
	Account     string
	State       string // one of the State* constants
	Expiry      time.Time
	Obtained    time.Time
	LockedUntil time.Time
	LastError   string // redacted text, "" if none
	Logins      int64
	Refreshes   int64
	Failures    int64
	Rejections  int64
	HasToken    bool // a valid token is being served
	// StoreError is why the last call to a shared token store (Leaser)
	// failed, "" while it works. Valid tokens are served from memory
	// meanwhile.
	StoreError string
}

// Status returns a snapshot of the account's state.
func (c *Cache) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	cur := c.cur.Load()
	st := Status{
		Account:    c.name,
		Logins:     c.logins.Load(),
		Refreshes:  c.refreshes.Load(),
		Failures:   c.failures.Load(),
		Rejections: c.rejections.Load(),
		HasToken:   cur.Valid(now),
	}
	shown := cur
	if shown == nil {
		shown = c.last
	}
	if shown != nil {
		st.Expiry, st.Obtained = shown.Expiry, shown.Obtained
	}
	st.LockedUntil = c.sched.locked(now)
	storeErr := c.store.health()
	switch {
	case c.lastErr != nil:
		st.LastError = c.redactLocked(c.lastErr.Error())
	case c.saveErr != nil:
		st.LastError = c.redactLocked("save token: " + c.saveErr.Error())
	case storeErr != nil:
		st.LastError = c.redactLocked("token store: " + storeErr.Error())
	}
	if storeErr != nil {
		st.StoreError = c.redactLocked(storeErr.Error())
	}
	held := c.sched.rejectHeld(now)
	if held && c.sched.rejectMsg != "" {
		st.LastError = c.redactLocked(c.sched.rejectMsg)
	}
	switch {
	case !st.LockedUntil.IsZero():
		st.State = StateLockedOut
	case held:
		st.State = StateRejected
	case c.flight != nil:
		st.State = StateRefreshing
	case st.HasToken:
		st.State = StateReady
	case c.needsLogin || !c.sched.canRenew:
		st.State = StateNeedsLogin
	case c.lastErr != nil:
		st.State = StateError
	case shown != nil:
		st.State = StateExpired
	default:
		st.State = StateEmpty
	}
	return st
}

// redactLocked removes the account's token values from s, in case a broker
// echoed one into an error.
func (c *Cache) redactLocked(s string) string {
	for _, t := range []*Token{c.cur.Load(), c.last} {
		if t == nil {
			continue
		}
		vals := []Secret{t.Access, t.Refresh}
		for _, v := range t.Aux {
			vals = append(vals, v)
		}
		for _, v := range vals {
			if len(v) >= 4 {
				s = strings.ReplaceAll(s, v.Reveal(), Redacted)
			}
		}
	}
	return Clip(s, maxErrorText)
}
