package auth

import (
	"errors"
	"time"
)

// This file is the cache's schedule: when a token is renewed, whether a
// renewal refreshes or logs in again, the renewal rate caps, lockouts,
// held refusals and the rejection hold. It is plain values and functions of
// the time passed in: no locks, no goroutines, no clock of its own. The
// Cache keeps one schedule under its mutex.

// policy is an account's fixed renewal rules.
type policy struct {
	margin       time.Duration // renew this long before expiry
	failureHold  time.Duration // a refused login is held this long
	rejectHold   time.Duration // RejectedAgain's hold
	renewPerHour int           // renewals in any rolling hour; <= 0: no cap
	canRenew     bool          // the broker can get a token without a person
	renews       bool          // the broker is a Refresher: renewal keeps its session
}

// refreshPoint is when t should be renewed. A broker that renews within its
// session (a Refresher) renews at the earlier of Expiry-Margin and the
// lifetime's midpoint (a token shorter than the margin at its midpoint;
// with Obtained unknown, at Expiry-Margin). A broker without renewal logs in
// again only within the margin of expiry: see loginPoint.
func (p policy) refreshPoint(t *Token) time.Time {
	early := t.Expiry.Add(-p.margin)
	life := t.Lifetime()
	if life <= 0 {
		return early
	}
	if !p.renews {
		return loginPoint(t, early, life)
	}
	mid := t.Obtained.Add(life / 2)
	if !early.After(t.Obtained) || mid.Before(early) {
		return mid
	}
	return early
}

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

// attempt is how the next token is obtained: refreshed from base when
// refresh is set, else by a login.
type attempt struct {
	base    *Token // the token being replaced: the one served, else the newest known
	usable  bool   // base is still valid (an ahead-of-expiry renewal)
	refresh bool
}

// plan decides how to replace cur (the token served, nil after a
// rejection) given last, the newest token known: a Refresher refreshes
// while it has a valid token or a refresh secret; everything else logs in.
func (p policy) plan(cur, last *Token, now time.Time) attempt {
	base := cur
	if base == nil {
		base = last
	}
	a := attempt{base: base, usable: cur.Valid(now)}
	a.refresh = p.renews && base != nil && (a.usable || base.Refresh != "")
	return a
}

// lastResort reports whether t is so close to expiry that it must be
// renewed even without a shared store's lease: within a fifth of its
// lifetime.
func (p policy) lastResort(t *Token, now time.Time) bool {
	if t == nil || t.Expiry.IsZero() {
		return false
	}
	window := t.Lifetime() / 5
	if window <= 0 {
		window = p.margin / 2
	}
	window = max(window, 2*minRenewSpacing)
	return !now.Before(t.Expiry.Add(-window))
}

// adoptable returns st, a token another process obtained, if it can be
// served instead of obtaining a new one: valid, not the token being
// replaced, and, for an ahead-of-expiry renewal, not itself due for renewal.
func (p policy) adoptable(st, old *Token, proactive bool, now time.Time) *Token {
	if !st.Valid(now) || (old != nil && st.Access == old.Access) {
		return nil
	}
	if proactive && !st.Expiry.IsZero() && !now.Before(p.refreshPoint(st)) {
		return nil
	}
	return st
}

// schedule is policy plus what happened: renewal attempts, a renewal that
// gained nothing, a lockout, a held refusal and a rejection hold.
type schedule struct {
	policy

	noGain      *Token // renewed without a later expiry: renew it again only once it expires
	attempts    []time.Time
	lastAttempt time.Time
	lockedUntil time.Time
	lockErr     error
	failUntil   time.Time
	failErr     error
	heldUntil   time.Time // RejectedAgain's hold
	rejectMsg   string    // the broker's words for the last rejection of a fresh token
}

// next is when the next ahead-of-expiry renewal of cur may start, or false
// when none is planned (no token, no expiry, a login in progress, or a
// broker that needs a person).
func (s *schedule) next(now time.Time, cur *Token, busy bool) (time.Time, bool) {
	if !s.canRenew || busy || cur == nil || cur.Expiry.IsZero() {
		return time.Time{}, false
	}
	at := s.refreshPoint(cur)
	if s.noGain == cur {
		// Renewing again before it expires would bring the same expiry.
		at = cur.Expiry
	}
	return latest(at, s.allowed(now, cur), s.lockedUntil, s.failUntil), true
}

// allowed is the earliest time the renewal limits allow: at most
// renewPerHour attempts in any hour, and attempts at least a tenth of the
// token's lifetime apart.
func (s *schedule) allowed(now time.Time, t *Token) time.Time {
	var at time.Time
	if !s.lastAttempt.IsZero() {
		gap := t.Lifetime() / 10
		if gap <= 0 {
			gap = s.margin / 10
		}
		at = s.lastAttempt.Add(max(gap, minRenewSpacing))
	}
	if s.renewPerHour > 0 {
		s.prune(now)
		if len(s.attempts) >= s.renewPerHour {
			at = latest(at, s.attempts[len(s.attempts)-s.renewPerHour].Add(time.Hour))
		}
	}
	return at
}

// record counts a renewal attempt against the caps.
func (s *schedule) record(now time.Time) {
	s.lastAttempt = now
	if s.renewPerHour > 0 {
		s.prune(now)
		s.attempts = append(s.attempts, now)
	}
}

// prune forgets attempts older than an hour (and keeps the slice bounded
// should the clock jump back).
func (s *schedule) prune(now time.Time) {
	cut := now.Add(-time.Hour)
	i := 0
	for i < len(s.attempts) && !s.attempts[i].After(cut) {
		i++
	}
	s.attempts = s.attempts[i:]
	if n := len(s.attempts); n > 4*s.renewPerHour {
		s.attempts = s.attempts[n-4*s.renewPerHour:]
	}
}

// heldErr is the error to return without a broker call: a lockout or a
// recent refused login.
func (s *schedule) heldErr(now time.Time) error {
	if now.Before(s.lockedUntil) {
		return s.lockErr
	}
	if now.Before(s.failUntil) {
		return s.failErr
	}
	return nil
}

// locked is the end of a lockout in force at now, else zero.
func (s *schedule) locked(now time.Time) time.Time {
	if now.Before(s.lockedUntil) {
		return s.lockedUntil
	}
	return time.Time{}
}

// failed records a failed login or refresh and reports whether it was a
// lockout (a *RateLimitError: no attempt before its Until, and not within
// failureHold). A refusal (*LoginError below 500, not ErrBrokerFault) is
// held for failureHold; a broker's 5xx or an unreadable answer is a fault,
// not a verdict on the credentials: the next request after it recovers
// logs in.
func (s *schedule) failed(now time.Time, err error) (lockout bool) {
	var (
		rl *RateLimitError
		le *LoginError
	)
	switch {
	case errors.As(err, &rl):
		s.lockedUntil = latest(rl.Until, now.Add(s.failureHold))
		s.lockErr = err
		return true
	case errors.As(err, &le) && le.StatusCode < 500 && !errors.Is(err, ErrBrokerFault):
		s.failUntil = now.Add(s.failureHold)
		s.failErr = err
	}
	return false
}

// served records that t is served from now on: lockouts and held refusals
// end. noGain marks a renewal whose token expires no later than the one it
// replaced.
func (s *schedule) served(t *Token, noGain bool) {
	s.noGain = nil
	if noGain {
		s.noGain = t
	}
	s.lockErr, s.failErr = nil, nil
	s.lockedUntil, s.failUntil = time.Time{}, time.Time{}
}

// reject starts RejectedAgain's hold.
func (s *schedule) reject(now time.Time, message string) {
	s.heldUntil = now.Add(s.rejectHold)
	s.rejectMsg = message
}

// accept ends the rejection hold and reports whether one was set.
func (s *schedule) accept() bool {
	was := !s.heldUntil.IsZero()
	s.heldUntil, s.rejectMsg = time.Time{}, ""
	return was
}

// rejectHeld reports whether RejectedAgain's hold is in force at now.
func (s *schedule) rejectHeld(now time.Time) bool { return now.Before(s.heldUntil) }

// latest returns the latest of ts.
func latest(ts ...time.Time) time.Time {
	var m time.Time
	for _, t := range ts {
		if t.After(m) {
			m = t
		}
	}
	return m
}
