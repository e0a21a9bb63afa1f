package tradovate_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/tradovate"
	fake "github.com/authproxy/authproxy/internal/fakebroker/tradovate"
)

func TestLogin(t *testing.T) {
	clk := newClock()
	w := startWorld(t, fakeOptions(clk.Now))
	b := w.broker(t, credConfig(), clk.Now)

	tok, err := b.Login(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if kind, live := w.fake.TokenKind(tok.Access.Reveal()); kind != "access" || !live {
		t.Errorf("access token: fake says kind %q live %v", kind, live)
	}
	if kind, live := w.fake.TokenKind(tok.Aux[tradovate.AuxMD].Reveal()); kind != "md" || !live {
		t.Errorf("md token: fake says kind %q live %v", kind, live)
	}
	if got, want := tok.Meta[tradovate.MetaUserID], "424242"; got != want {
		t.Errorf("user id = %q, want %q", got, want)
	}
	if want := clk.Now().Add(90 * time.Minute); tok.Expiry.Sub(want).Abs() > time.Second {
		t.Errorf("expiry = %v, want about %v", tok.Expiry, want)
	}
	if !tok.Obtained.Equal(clk.Now()) {
		t.Errorf("obtained = %v, want %v", tok.Obtained, clk.Now())
	}
	if c := w.fake.Counters(); c.Sessions != 1 || c.LoginAttempts != 1 {
		t.Errorf("counters = %+v, want 1 session from 1 attempt", c)
	}

	bodies := w.fake.LoginBodies()
	if len(bodies) != 1 {
		t.Fatalf("login bodies = %d, want 1", len(bodies))
	}
	var sent map[string]any
	if err := json.Unmarshal(bodies[0], &sent); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"name": testUser, "password": testPassword, "appId": testAppID, "appVersion": testVersion,
		"cid": float64(8123), "sec": testSec, "deviceId": testDevice,
	}
	if len(sent) != len(want) {
		t.Errorf("login body has %d fields, want %d: %v", len(sent), len(want), keys(sent))
	}
	for k, v := range want {
		if sent[k] != v {
			t.Errorf("login body %s = %#v, want %#v", k, sent[k], v)
		}
	}

	// The token works where it belongs and only there.
	if resp := w.call(t, b, tok, fake.HostDemo, "/v1/account/list"); resp.StatusCode != http.StatusOK {
		t.Errorf("REST call: HTTP %d, want 200", resp.StatusCode)
	}
	if resp := w.call(t, b, tok, fake.HostMD, "/v1/md/getChart"); resp.StatusCode != http.StatusOK {
		t.Errorf("md call: HTTP %d, want 200", resp.StatusCode)
	}
	noMD := *tok
	noMD.Aux = nil
	if resp := w.call(t, b, &noMD, fake.HostMD, "/v1/md/getChart"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("md call with the access token: HTTP %d, want the fake's 401", resp.StatusCode)
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestLoginCIDEncoding(t *testing.T) {
	tests := []struct {
		cid  string
		want any
	}{
		{"8123", float64(8123)},
		{"0", float64(0)},
		{"app-8123", "app-8123"},
		{"12345678901234567890123", "12345678901234567890123"}, // too long for a safe number
	}
	for _, tc := range tests {
		t.Run(tc.cid, func(t *testing.T) {
			opts := fakeOptions(nil)
			opts.CID = tc.cid
			w := startWorld(t, opts)
			cfg := credConfig()
			cfg.CID = tc.cid
			if _, err := w.broker(t, cfg, nil).Login(t.Context()); err != nil {
				t.Fatal(err)
			}
			var sent map[string]any
			if err := json.Unmarshal(w.fake.LoginBodies()[0], &sent); err != nil {
				t.Fatal(err)
			}
			if sent["cid"] != tc.want {
				t.Errorf("cid sent as %#v, want %#v", sent["cid"], tc.want)
			}
		})
	}
}

func TestLoginRefused(t *testing.T) {
	tests := []struct {
		name       string
		as401      bool
		wantStatus int
	}{
		{"errorText in 200", false, http.StatusOK},
		{"401", true, http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := fakeOptions(nil)
			opts.BadCredentials401 = tc.as401
			w := startWorld(t, opts)
			cfg := credConfig()
			cfg.Password = "wrong-password"
			tok, err := w.broker(t, cfg, nil).Login(t.Context())
			var le *auth.LoginError
			if !errors.As(err, &le) {
				t.Fatalf("Login = %v, %v; want a *auth.LoginError", tok, err)
			}
			if le.Message != fake.MsgBadCredentials || le.StatusCode != tc.wantStatus || le.Account != "tv" {
				t.Errorf("LoginError = %+v, want Tradovate's text with HTTP %d", le, tc.wantStatus)
			}
			if strings.Contains(err.Error(), "wrong-password") || strings.Contains(err.Error(), testSec) {
				t.Errorf("error text carries a secret: %v", err)
			}
			if c := w.fake.Counters(); c.LoginAttempts != 1 || c.Sessions != 0 {
				t.Errorf("counters = %+v, want exactly one attempt and no session", c)
			}
		})
	}
}

func TestLoginPenaltyTicket(t *testing.T) {
	w := startWorld(t, fakeOptions(nil))
	b := w.broker(t, credConfig(), nil)
	w.fake.QueueLogins(fake.Answer{Kind: fake.AnswerPenalty, PTime: 1})

	start := time.Now()
	tok, err := b.Login(ctxTimeout(t, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("login took %v; the penalty asked for 1s", took)
	}
	if tok.Access == "" {
		t.Fatal("no token")
	}
	if c := w.fake.Counters(); c.LoginAttempts != 2 || c.Sessions != 1 || c.Penalties != 1 {
		t.Errorf("counters = %+v, want 2 attempts, 1 penalty, 1 session", c)
	}
	bodies := w.fake.LoginBodies()
	var first, second map[string]any
	if err := json.Unmarshal(bodies[0], &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(bodies[1], &second); err != nil {
		t.Fatal(err)
	}
	if _, ok := first["p-ticket"]; ok {
		t.Error("first login already carried a p-ticket")
	}
	if tk, _ := second["p-ticket"].(string); tk == "" {
		t.Error("second login carried no p-ticket")
	}
	delete(second, "p-ticket")
	a, _ := json.Marshal(first)
	bb, _ := json.Marshal(second)
	if string(a) != string(bb) {
		t.Errorf("resent body differs beyond the ticket:\n%s\n%s", a, bb)
	}
}

func TestLoginPenaltyLongerThanContext(t *testing.T) {
	clk := newClock()
	w := startWorld(t, fakeOptions(clk.Now))
	b := w.broker(t, credConfig(), clk.Now)
	w.fake.QueueLogins(fake.Answer{Kind: fake.AnswerPenalty, PTime: 40})

	_, err := b.Login(ctxTimeout(t, 5*time.Second))
	var rl *auth.RateLimitError
	if !errors.As(err, &rl) {
		t.Fatalf("Login = %v, want a *auth.RateLimitError", err)
	}
	if want := clk.Now().Add(40 * time.Second); !rl.Until.Equal(want) {
		t.Errorf("until = %v, want %v", rl.Until, want)
	}
	// Once the wait is over, the next login resends with the kept ticket.
	clk.Advance(41 * time.Second)
	if _, err := b.Login(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	bodies := w.fake.LoginBodies()
	var last map[string]any
	if err := json.Unmarshal(bodies[len(bodies)-1], &last); err != nil {
		t.Fatal(err)
	}
	if tk, _ := last["p-ticket"].(string); tk == "" {
		t.Error("the login after the wait did not send the kept ticket")
	}
	if c := w.fake.Counters(); c.LoginAttempts != 2 || c.Sessions != 1 {
		t.Errorf("counters = %+v, want 2 attempts and 1 session", c)
	}
}

func TestLoginLockouts(t *testing.T) {
	tests := []struct {
		name   string
		answer fake.Answer
		want   time.Duration
	}{
		{"captcha", fake.Answer{Kind: fake.AnswerCaptcha, PTime: 5}, time.Hour},
		{"423", fake.Answer{Kind: fake.AnswerLocked}, time.Hour},
		{"429", fake.Answer{Kind: fake.AnswerTooMany}, time.Hour},
		{"429 Retry-After", fake.Answer{Kind: fake.AnswerTooMany, RetryAfter: 120}, 2 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			w := startWorld(t, fakeOptions(clk.Now))
			b := w.broker(t, credConfig(), clk.Now)
			w.fake.QueueLogins(tc.answer)
			_, err := b.Login(ctxTimeout(t, 10*time.Second))
			var rl *auth.RateLimitError
			if !errors.As(err, &rl) {
				t.Fatalf("Login = %v, want a *auth.RateLimitError", err)
			}
			if got := rl.Until.Sub(clk.Now()); got != tc.want {
				t.Errorf("locked for %v, want %v", got, tc.want)
			}
			if rl.Account != "tv" || rl.Message == "" {
				t.Errorf("RateLimitError = %+v", rl)
			}
			if c := w.fake.Counters(); c.LoginAttempts != 1 {
				t.Errorf("login attempts = %d, want 1 (no retry)", c.LoginAttempts)
			}
		})
	}
}

func TestRefresh(t *testing.T) {
	for _, omitMD := range []bool{false, true} {
		name := "with md token"
		if omitMD {
			name = "without md token"
		}
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			opts := fakeOptions(clk.Now)
			opts.RenewOmitsMD = omitMD
			w := startWorld(t, opts)
			b := w.broker(t, credConfig(), clk.Now)
			old, err := b.Login(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			clk.Advance(75 * time.Minute)
			tok, err := b.Refresh(t.Context(), old)
			if err != nil {
				t.Fatal(err)
			}
			if tok.Access == old.Access {
				t.Error("renewal returned the old access token")
			}
			if want := clk.Now().Add(90 * time.Minute); tok.Expiry.Sub(want).Abs() > time.Second {
				t.Errorf("expiry = %v, want about %v", tok.Expiry, want)
			}
			if !tok.Obtained.Equal(clk.Now()) {
				t.Errorf("obtained = %v, want %v", tok.Obtained, clk.Now())
			}
			md := tok.Aux[tradovate.AuxMD]
			if md == "" || (omitMD && md != old.Aux[tradovate.AuxMD]) || (!omitMD && md == old.Aux[tradovate.AuxMD]) {
				t.Errorf("md token after renewal: kept=%v, want kept=%v", md == old.Aux[tradovate.AuxMD], omitMD)
			}
			if tok.Meta[tradovate.MetaUserID] != "424242" {
				t.Errorf("user id lost: %v", tok.Meta)
			}
			if c := w.fake.Counters(); c.Sessions != 1 || c.Renewals != 1 {
				t.Errorf("counters = %+v, want 1 session and 1 renewal", c)
			}
			clk.Advance(30 * time.Minute) // past the first token's expiry
			if resp := w.call(t, b, tok, fake.HostLive, "/v1/user/syncrequest"); resp.StatusCode != http.StatusOK {
				t.Errorf("REST call with the renewed token: HTTP %d", resp.StatusCode)
			}
			if resp := w.call(t, b, tok, fake.HostMDDemo, "/v1/md/subscribeQuote"); resp.StatusCode != http.StatusOK {
				t.Errorf("md call after renewal: HTTP %d", resp.StatusCode)
			}
			if resp := w.call(t, b, old, fake.HostDemo, "/v1/account/list"); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("REST call with the expired token: HTTP %d, want 401", resp.StatusCode)
			}
		})
	}
}

func TestRefreshImpossible(t *testing.T) {
	clk := newClock()
	w := startWorld(t, fakeOptions(clk.Now))
	b := w.broker(t, credConfig(), clk.Now)
	old, err := b.Login(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	for _, tok := range []*auth.Token{nil, {}} {
		if _, err := b.Refresh(t.Context(), tok); !errors.Is(err, auth.ErrRefreshImpossible) {
			t.Errorf("Refresh(%v) = %v, want ErrRefreshImpossible", tok, err)
		}
	}
	other := *old
	other.Meta = map[string]string{"environment": "live"}
	if _, err := b.Refresh(t.Context(), &other); !errors.Is(err, auth.ErrRefreshImpossible) {
		t.Errorf("Refresh of a live-environment token = %v, want ErrRefreshImpossible", err)
	}

	// Closed session: Tradovate answers 401.
	w.fake.CloseAllSessions()
	_, err = b.Refresh(t.Context(), old)
	if !errors.Is(err, auth.ErrRefreshImpossible) {
		t.Fatalf("Refresh after the session closed = %v, want ErrRefreshImpossible", err)
	}
	if c := w.fake.Counters(); c.RenewalsRefused != 1 {
		t.Errorf("renewals refused = %d, want 1", c.RenewalsRefused)
	}

	// Expired: no call at all.
	clk.Advance(91 * time.Minute)
	if _, err := b.Refresh(t.Context(), old); !errors.Is(err, auth.ErrRefreshImpossible) {
		t.Fatalf("Refresh of an expired token = %v, want ErrRefreshImpossible", err)
	}
	if c := w.fake.Counters(); c.RenewalsRefused != 1 || c.Renewals != 0 {
		t.Errorf("counters = %+v: an expired token was sent to renewal", c)
	}
}

func TestSessionLimitAndRejected(t *testing.T) {
	w := startWorld(t, fakeOptions(nil))
	b := w.broker(t, credConfig(), nil)
	var toks []*auth.Token
	for range 3 {
		tok, err := b.Login(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	resp := w.call(t, b, toks[0], fake.HostDemo, "/v1/account/list")
	if resp.StatusCode != http.StatusUnauthorized || !b.Rejected(resp, nil) {
		t.Errorf("oldest session: HTTP %d, Rejected=%v; want 401 and true", resp.StatusCode, b.Rejected(resp, nil))
	}
	for _, tok := range toks[1:] {
		resp := w.call(t, b, tok, fake.HostDemo, "/v1/account/list")
		if resp.StatusCode != http.StatusOK || b.Rejected(resp, nil) {
			t.Errorf("newer session: HTTP %d, Rejected=%v; want 200 and false", resp.StatusCode, b.Rejected(resp, nil))
		}
	}
	if c := w.fake.Counters(); c.Sessions != 3 || c.OpenSessions != 2 {
		t.Errorf("counters = %+v, want 3 sessions, 2 open", c)
	}
	for _, status := range []int{200, 400, 403, 404, 429, 500} {
		if b.Rejected(&http.Response{StatusCode: status}, func() []byte { return []byte(`{"errorText":"Access is denied"}`) }) {
			t.Errorf("Rejected(HTTP %d) = true, want false", status)
		}
	}
}

// TestCacheOneSession drives the broker through auth.Cache: concurrent cold
// requests share one login, and short tokens are renewed, never re-logged.
func TestCacheOneSession(t *testing.T) {
	w := startWorld(t, fakeOptions(nil))
	w.fake.SetTokenTTL(2 * time.Second)
	b := w.broker(t, credConfig(), nil)
	c := auth.NewCache("tv", b, nil, auth.CacheOptions{Margin: time.Second})

	var wg sync.WaitGroup
	toks := make([]*auth.Token, 50)
	errs := make([]error, 50)
	for i := range 50 {
		wg.Go(func() { toks[i], errs[i] = c.Token(ctxTimeout(t, 20*time.Second)) })
	}
	wg.Wait()
	for i := range 50 {
		if errs[i] != nil {
			t.Fatalf("Token #%d: %v", i, errs[i])
		}
		if toks[i] != toks[0] {
			t.Fatalf("Token #%d differs from #0", i)
		}
	}
	if n := w.fake.Counters().Sessions; n != 1 {
		t.Fatalf("sessions after 50 cold Token calls = %d, want 1", n)
	}

	ctx, cancel := ctxTimeoutCancel(t, 20*time.Second)
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for w.fake.Counters().Renewals < 3 && time.Now().Before(deadline) {
		tok, err := c.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if resp := w.call(t, b, tok, fake.HostDemo, "/v1/account/list"); resp.StatusCode != http.StatusOK {
			t.Fatalf("API call with the cached token: HTTP %d", resp.StatusCode)
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	<-done
	cnt := w.fake.Counters()
	if cnt.Renewals < 3 || cnt.Sessions != 1 {
		t.Errorf("after several 2s lifetimes: %+v; want >= 3 renewals and still 1 session", cnt)
	}
}
