// Package totp generates the time-based one-time codes (RFC 6238: SHA-1,
// 6 digits, 30-second steps) that Tradingo and 5paisa logins need, from the
// user's base32 secret.
//
// A Generator never hands out a code for a time step it has already used:
// brokers refuse a code that was spent, so a second login within the same
// 30 seconds waits for the next step instead of failing. The secret never
// appears in an error or a log.
package totp

import (
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/authproxy/authproxy/auth"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

const (
	// Period is the length of one time step.
	Period = 30 * time.Second
	// pollEvery is the longest single sleep while waiting for the next step,
	// so an injected clock that jumps ahead is noticed promptly.
	pollEvery = 250 * time.Millisecond
	// maxWait bounds one Code call's wait in real time.
	maxWait = 2*Period + 5*time.Second
)

// ErrInvalidSecret is wrapped by New's error for a secret that is not base32.
var ErrInvalidSecret = errors.New("totp secret is not valid base32")

// Generator produces codes for one secret. It is safe for concurrent use;
// concurrent Code calls get codes of distinct time steps.
type Generator struct {
	secret auth.Secret // normalised: upper case, no spaces or padding
	now    func() time.Time
	sem    chan struct{} // one-slot lock that a waiting caller can abandon

	// guarded by sem
	used bool
	last int64 // the last step handed out
}

// New checks secret (base32; spaces ignored, any case, padding optional) and
// returns a Generator reading the time from now (time.Now when nil).
func New(secret auth.Secret, now func() time.Time) (*Generator, error) {
	norm := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return unicode.ToUpper(r)
	}, secret.Reveal())
	norm = strings.TrimRight(norm, "=")
	if norm == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidSecret)
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(norm)
	if err != nil {
		var ce base32.CorruptInputError
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("%w: bad character or length at offset %d", ErrInvalidSecret, int64(ce))
		}
		return nil, ErrInvalidSecret
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrInvalidSecret)
	}
	if now == nil {
		now = time.Now
	}
	return &Generator{secret: auth.Secret(norm), now: now, sem: make(chan struct{}, 1)}, nil
}

// Code returns the 6-digit code for the current step. If this Generator has
// already handed out that step's code, Code waits (bounded by ctx and about
// a minute) for the next step.
func (g *Generator) Code(ctx context.Context) (string, error) {
	select {
	case g.sem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("totp: %w", ctx.Err())
	}
	defer func() { <-g.sem }()

	began := time.Now()
	for {
		now := g.now()
		step := stepOf(now)
		if !g.used || step > g.last {
			code, err := totp.GenerateCodeCustom(g.secret.Reveal(), now, totp.ValidateOpts{
				Period:    uint(Period / time.Second),
				Digits:    otp.DigitsSix,
				Algorithm: otp.AlgorithmSHA1,
			})
			if err != nil {
				// pquerna's errors carry no secret; keep ours generic anyway.
				return "", errors.New("totp: cannot generate code")
			}
			g.used, g.last = true, step
			return code, nil
		}
		if time.Since(began) > maxWait {
			return "", fmt.Errorf("totp: clock has not reached a fresh step after %s", maxWait)
		}
		wait := time.Unix((g.last+1)*int64(Period/time.Second), 0).Sub(now)
		wait = min(max(wait, time.Millisecond), pollEvery)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("totp: waiting for the next code: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// Fresh returns the code of the current step if this Generator has not
// handed it out yet, without waiting: false when the current step's code is
// already used (or another caller holds the Generator). A login resent
// after a gateway error asks for it so that a code whose step has passed is
// replaced.
func (g *Generator) Fresh() (string, bool) {
	select {
	case g.sem <- struct{}{}:
	default:
		return "", false
	}
	defer func() { <-g.sem }()
	now := g.now()
	step := stepOf(now)
	if g.used && step <= g.last {
		return "", false
	}
	code, err := totp.GenerateCodeCustom(g.secret.Reveal(), now, totp.ValidateOpts{
		Period:    uint(Period / time.Second),
		Digits:    otp.DigitsSix,
		Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return "", false
	}
	g.used, g.last = true, step
	return code, true
}

// MarkUsed records that the code of t's time step was already spent (by an
// earlier run of the program), so Code never hands it out again.
func (g *Generator) MarkUsed(t time.Time) {
	g.sem <- struct{}{}
	defer func() { <-g.sem }()
	if step := stepOf(t); !g.used || step > g.last {
		g.used, g.last = true, step
	}
}

// stepOf is the RFC 6238 counter for t (floor division, so times before
// 1970 stay ordered).
func stepOf(t time.Time) int64 {
	s := t.Unix()
	p := int64(Period / time.Second)
	if s < 0 && s%p != 0 {
		return s/p - 1
	}
	return s / p
}
