package auth

import (
	"errors"
	"testing"
	"time"
)

// The schedule is plain values: these tests call it directly, with no
// Cache, no goroutines and no clock.

func TestRefreshPoint(t *testing.T) {
	// A broker that renews within its session (Tradovate) keeps the rule.
	p := policy{margin: DefaultMargin, renews: true}
	day := time.Date(2026, 3, 2, 18, 29, 59, 0, time.UTC) // 23:59:59 IST
	tests := []struct {
		name string
		tok  Token
		want time.Time
	}{
		{"tradovate 90m: midpoint is earlier", Token{Obtained: t0, Expiry: t0.Add(90 * time.Minute)}, t0.Add(45 * time.Minute)},
		{"20s token: midpoint", Token{Obtained: t0, Expiry: t0.Add(20 * time.Second)}, t0.Add(10 * time.Second)},
		{"20m token: expiry-margin is earlier", Token{Obtained: t0, Expiry: t0.Add(20 * time.Minute)}, t0.Add(5 * time.Minute)},
		{"15m token equals margin: midpoint", Token{Obtained: t0, Expiry: t0.Add(15 * time.Minute)}, t0.Add(450 * time.Second)},
		{"unknown obtained: expiry-margin", Token{Expiry: t0.Add(time.Hour)}, t0.Add(45 * time.Minute)},
		{"day token", Token{Obtained: t0, Expiry: day}, t0.Add(day.Sub(t0) / 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.refreshPoint(&tt.tok); !got.Equal(tt.want) {
				t.Errorf("refreshPoint = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestLoginPointWithoutRenewal: a broker with no renewal call (Tradingo,
// 5paisa, Pocketful) logs in again only within the margin of expiry, never
// at half-life, and never in the first three quarters of a short token.
func TestLoginPointWithoutRenewal(t *testing.T) {
	p := policy{margin: DefaultMargin}
	day := time.Date(2026, 3, 2, 18, 29, 59, 0, time.UTC)
	tests := []struct {
		name string
		tok  Token
		want time.Time
	}{
		{"90m token: expiry-margin", Token{Obtained: t0, Expiry: t0.Add(90 * time.Minute)}, t0.Add(75 * time.Minute)},
		{"day token: expiry-margin", Token{Obtained: t0, Expiry: day}, day.Add(-15 * time.Minute)},
		{"20m token: three quarters", Token{Obtained: t0, Expiry: t0.Add(20 * time.Minute)}, t0.Add(15 * time.Minute)},
		{"20s token: three quarters", Token{Obtained: t0, Expiry: t0.Add(20 * time.Second)}, t0.Add(15 * time.Second)},
		{"unknown obtained: expiry-margin", Token{Expiry: t0.Add(time.Hour)}, t0.Add(45 * time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.refreshPoint(&tt.tok)
			if !got.Equal(tt.want) {
				t.Errorf("refreshPoint = %s, want %s", got, tt.want)
			}
			if life := tt.tok.Lifetime(); life > 0 && !got.After(tt.tok.Obtained.Add(life/2)) {
				t.Errorf("refreshPoint %s is not after half-life", got)
			}
		})
	}
}

func TestPlan(t *testing.T) {
	valid := &Token{Access: "a", Expiry: t0.Add(time.Hour)}
	expiredWithRefresh := &Token{Access: "b", Refresh: "r", Expiry: t0.Add(-time.Minute)}
	expired := &Token{Access: "c", Expiry: t0.Add(-time.Minute)}
	tests := []struct {
		name      string
		renews    bool
		cur, last *Token
		want      attempt
	}{
		{"nothing known: login", true, nil, nil, attempt{}},
		{"renewer, valid token: refresh", true, valid, valid, attempt{base: valid, usable: true, refresh: true}},
		{"renewer, rejected token with refresh secret: refresh", true, nil, expiredWithRefresh, attempt{base: expiredWithRefresh, refresh: true}},
		{"renewer, expired token without refresh secret: login", true, nil, expired, attempt{base: expired}},
		{"no renewal call, valid token: login", false, valid, valid, attempt{base: valid, usable: true}},
		{"no renewal call, refresh secret: login", false, nil, expiredWithRefresh, attempt{base: expiredWithRefresh}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (policy{renews: tt.renews}).plan(tt.cur, tt.last, t0); got != tt.want {
				t.Errorf("plan = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestScheduleNext(t *testing.T) {
	tok := &Token{Access: "a", Obtained: t0, Expiry: t0.Add(90 * time.Minute)} // renews at 45m
	renewer := policy{margin: DefaultMargin, renewPerHour: 15, canRenew: true, renews: true}
	tests := []struct {
		name   string
		s      schedule
		cur    *Token
		busy   bool
		want   time.Time
		wantOK bool
	}{
		{"refresh point", schedule{policy: renewer}, tok, false, t0.Add(45 * time.Minute), true},
		{"no token", schedule{policy: renewer}, nil, false, time.Time{}, false},
		{"login in progress", schedule{policy: renewer}, tok, true, time.Time{}, false},
		{"never expires", schedule{policy: renewer}, &Token{Access: "a"}, false, time.Time{}, false},
		{"browser only", schedule{policy: policy{margin: DefaultMargin}}, tok, false, time.Time{}, false},
		{"no gain: at expiry", schedule{policy: renewer, noGain: tok}, tok, false, tok.Expiry, true},
		{"locked out past the point", schedule{policy: renewer, lockedUntil: t0.Add(50 * time.Minute)}, tok, false, t0.Add(50 * time.Minute), true},
		{"refusal held past the point", schedule{policy: renewer, failUntil: t0.Add(46 * time.Minute)}, tok, false, t0.Add(46 * time.Minute), true},
		{"a tenth of the lifetime after the last attempt", schedule{policy: renewer, lastAttempt: t0.Add(44 * time.Minute)}, tok, false, t0.Add(53 * time.Minute), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.s.next(t0, tt.cur, tt.busy)
			if ok != tt.wantOK || !got.Equal(tt.want) {
				t.Errorf("next = %s, %v; want %s, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestScheduleRenewPerHour(t *testing.T) {
	s := schedule{policy: policy{margin: DefaultMargin, renewPerHour: 3, canRenew: true, renews: true}}
	tok := &Token{Access: "a", Obtained: t0, Expiry: t0.Add(20 * time.Second)} // spacing: 2s
	at := t0
	for range 3 {
		s.record(at)
		at = at.Add(2 * time.Second)
	}
	if got := s.allowed(at, tok); !got.Equal(t0.Add(time.Hour)) {
		t.Fatalf("after 3 attempts: allowed at %s, want an hour after the first", got)
	}
	if got := s.allowed(t0.Add(time.Hour+time.Second), tok); !got.Equal(t0.Add(6 * time.Second)) {
		t.Fatalf("once the first left the hour: allowed at %s, want the spacing after the last attempt", got)
	}
	unlimited := schedule{policy: policy{margin: DefaultMargin, renewPerHour: -1}}
	for i := range 100 {
		unlimited.record(t0.Add(time.Duration(i) * time.Second))
	}
	if len(unlimited.attempts) != 0 {
		t.Fatalf("no cap keeps %d attempts", len(unlimited.attempts))
	}
	if got := unlimited.allowed(t0.Add(100*time.Second), tok); !got.Equal(t0.Add(101 * time.Second)) {
		t.Fatalf("no cap: allowed at %s, want the minimum spacing after the last attempt", got)
	}
}

func TestScheduleFailed(t *testing.T) {
	hold := 10 * time.Second
	refusal := &LoginError{Account: "a", StatusCode: 401, Message: "wrong password"}
	tests := []struct {
		name        string
		err         error
		wantLockout bool
		wantHeldTil time.Time // zero: the next call may try at once
	}{
		{"lockout", &RateLimitError{Account: "a", Until: t0.Add(time.Hour)}, true, t0.Add(time.Hour)},
		{"lockout shorter than the failure hold", &RateLimitError{Account: "a", Until: t0.Add(time.Second)}, true, t0.Add(hold)},
		{"refusal", refusal, false, t0.Add(hold)},
		{"broker 5xx", &LoginError{Account: "a", StatusCode: 502}, false, time.Time{}},
		{"unreadable answer", &LoginError{Account: "a", StatusCode: 200, Err: ErrBrokerFault}, false, time.Time{}},
		{"network error", errors.New("connection refused"), false, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := schedule{policy: policy{failureHold: hold}}
			if got := s.failed(t0, tt.err); got != tt.wantLockout {
				t.Errorf("lockout = %v, want %v", got, tt.wantLockout)
			}
			held := s.heldErr(t0)
			if tt.wantHeldTil.IsZero() {
				if held != nil {
					t.Errorf("held %v, want nothing held", held)
				}
				return
			}
			if held != tt.err {
				t.Errorf("held %v, want %v", held, tt.err)
			}
			if s.heldErr(tt.wantHeldTil.Add(-time.Nanosecond)) == nil || s.heldErr(tt.wantHeldTil) != nil {
				t.Errorf("hold does not end at %s", tt.wantHeldTil)
			}
			if got := s.locked(t0); tt.wantLockout != !got.IsZero() {
				t.Errorf("locked until %s", got)
			}
			s.served(&Token{Access: "x"}, false)
			if s.heldErr(t0) != nil {
				t.Error("a served token does not end the hold")
			}
		})
	}
}

func TestScheduleRejectHold(t *testing.T) {
	s := schedule{policy: policy{rejectHold: 30 * time.Second}}
	if s.rejectHeld(t0) || s.accept() {
		t.Fatal("held before any rejection")
	}
	s.reject(t0, "password expired")
	if !s.rejectHeld(t0.Add(29*time.Second)) || s.rejectHeld(t0.Add(30*time.Second)) || s.rejectMsg != "password expired" {
		t.Fatalf("hold: %+v", s)
	}
	if !s.accept() || s.rejectHeld(t0) || s.rejectMsg != "" {
		t.Fatalf("after accept: %+v", s)
	}
}

func TestLastResort(t *testing.T) {
	p := policy{margin: DefaultMargin}
	tok := &Token{Access: "a", Obtained: t0, Expiry: t0.Add(50 * time.Minute)} // window: 10m
	unknown := &Token{Access: "a", Expiry: t0.Add(time.Hour)}                  // window: margin/2
	tests := []struct {
		name string
		t    *Token
		now  time.Time
		want bool
	}{
		{"no token", nil, t0, false},
		{"never expires", &Token{Access: "a"}, t0, false},
		{"early in life", tok, t0.Add(39 * time.Minute), false},
		{"last fifth", tok, t0.Add(40 * time.Minute), true},
		{"unknown lifetime, before margin/2", unknown, t0.Add(52 * time.Minute), false},
		{"unknown lifetime, within margin/2", unknown, t0.Add(53 * time.Minute), true},
		{"tiny token: at least 2s", &Token{Access: "a", Obtained: t0, Expiry: t0.Add(5 * time.Second)}, t0.Add(3 * time.Second), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.lastResort(tt.t, tt.now); got != tt.want {
				t.Errorf("lastResort = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAdoptable(t *testing.T) {
	p := policy{margin: DefaultMargin, renews: true}
	old := &Token{Access: "old", Obtained: t0, Expiry: t0.Add(90 * time.Minute)}
	fresh := &Token{Access: "new", Obtained: t0.Add(44 * time.Minute), Expiry: t0.Add(134 * time.Minute)}
	due := &Token{Access: "due", Obtained: t0, Expiry: t0.Add(90 * time.Minute)} // renews at 45m
	tests := []struct {
		name      string
		st        *Token
		proactive bool
		want      *Token
	}{
		{"nothing stored", nil, false, nil},
		{"the token being replaced", &Token{Access: "old", Expiry: t0.Add(time.Hour)}, false, nil},
		{"expired", &Token{Access: "x", Expiry: t0.Add(time.Minute)}, false, nil},
		{"newer and valid", fresh, true, fresh},
		{"due itself, no valid token here: take it", due, false, due},
		{"due itself, renewing ahead: no", due, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.adoptable(tt.st, old, tt.proactive, t0.Add(46*time.Minute)); got != tt.want {
				t.Errorf("adoptable = %v, want %v", got, tt.want)
			}
		})
	}
}
