package totp

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// rfcSecret is RFC 6238's SHA-1 key "12345678901234567890" in base32.
const rfcSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

func TestCodeMatchesRFC6238(t *testing.T) {
	// RFC 6238 appendix B: T=59 -> 94287082, T=1111111109 -> 07081804 (8 digits).
	for at, want := range map[int64]string{59: "287082", 1111111109: "081804", 1234567890: "005924"} {
		g, err := New(rfcSecret, fixed(time.Unix(at, 0)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := g.Code(t.Context())
		if err != nil || got != want {
			t.Errorf("Code at %d = %q, %v; want %q", at, got, err, want)
		}
	}
}

func TestSecretForms(t *testing.T) {
	now := fixed(time.Unix(1111111109, 0))
	want, err := totp.GenerateCodeCustom(rfcSecret, now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		rfcSecret,
		strings.ToLower(rfcSecret),
		"gezd gnbv gy3t qojq gezd gnbv gy3t qojq",
		" GEZDGNBVGY3TQOJQ\tGEZDGNBVGY3TQOJQ\n",
		"JBSWY3DPEHPK3PXP", // a 16-character Google Authenticator style secret
		"MZXW6===",         // padded
		"MZXW6",            // same, unpadded
	} {
		g, err := New(auth.Secret(s), now)
		if err != nil {
			t.Errorf("New(%q): %v", s, err)
			continue
		}
		code, err := g.Code(t.Context())
		if err != nil || len(code) != 6 {
			t.Errorf("Code for %q = %q, %v", s, code, err)
		}
		if strings.EqualFold(strings.Join(strings.Fields(s), ""), rfcSecret) && code != want {
			t.Errorf("Code for %q = %q, want %q", s, code, want)
		}
	}
}

func TestInvalidSecretIsNotInError(t *testing.T) {
	for _, s := range []string{"MY-S3CRET-1!", "abc@defghijk", "GEZDGNBVGY3TQOJ1", "A", "", "   ", "========"} {
		_, err := New(auth.Secret(s), nil)
		if err == nil {
			t.Errorf("New(%q) accepted", s)
			continue
		}
		if !errors.Is(err, ErrInvalidSecret) {
			t.Errorf("New(%q) = %v, want ErrInvalidSecret", s, err)
		}
		if strings.TrimSpace(s) != "" && strings.Contains(err.Error(), strings.TrimSpace(s)) {
			t.Errorf("error %q contains the secret", err)
		}
	}
}

func TestCodeNeverReusesAStep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ns atomic.Int64
		ns.Store(time.Date(2026, 3, 2, 9, 0, 10, 0, time.UTC).UnixNano()) // 10s into a step
		now := func() time.Time { return time.Unix(0, ns.Load()) }
		g, err := New(rfcSecret, now)
		if err != nil {
			t.Fatal(err)
		}
		first, err := g.Code(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var second string
		done := make(chan error, 1)
		go func() {
			var err error
			second, err = g.Code(t.Context())
			done <- err
		}()
		// Real (bubble) time passes, the injected clock does not: keep waiting.
		time.Sleep(10 * time.Second)
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("second Code returned within the same step: %q, %v", second, err)
		default:
		}
		ns.Add(int64(21 * time.Second)) // into the next step
		time.Sleep(time.Second)
		synctest.Wait()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatal("second Code still waiting after the step changed")
		}
		want, _ := totp.GenerateCode(rfcSecret, now())
		if second == first || second != want {
			t.Errorf("second code = %q (first %q), want the next step's %q", second, first, want)
		}
	})
}

func TestCodeWaitIsBoundedByContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := New(rfcSecret, fixed(time.Unix(1700000000, 0)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.Code(t.Context()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		start := time.Now()
		_, err = g.Code(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d < 3*time.Second || d > 4*time.Second {
			t.Errorf("gave up after %s, want 3s", d)
		}
		// A frozen clock without a deadline still ends.
		_, err = g.Code(t.Context())
		if err == nil || !strings.Contains(err.Error(), "clock") {
			t.Errorf("frozen clock: err = %v", err)
		}
	})
}

func TestConcurrentCodesUseDistinctSteps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := New(rfcSecret, time.Now) // the bubble's clock
		if err != nil {
			t.Fatal(err)
		}
		const n = 3
		codes := make([]string, n)
		var wg sync.WaitGroup
		start := time.Now()
		for i := range n {
			wg.Go(func() {
				c, err := g.Code(t.Context())
				if err != nil {
					t.Error(err)
				}
				codes[i] = c
			})
		}
		wg.Wait()
		seen := map[string]bool{}
		for _, c := range codes {
			if seen[c] {
				t.Errorf("code %q handed out twice: %v", c, codes)
			}
			seen[c] = true
		}
		if d := time.Since(start); d < 60*time.Second || d > 61*time.Second {
			t.Errorf("3 codes took %s, want 60s (three steps)", d)
		}
	})
}

func TestMarkUsedSkipsThatStep(t *testing.T) {
	base := time.Unix(1_700_000_020, 0) // 10 s into a step (steps start at multiples of 30 s)
	var now atomic.Int64
	now.Store(base.UnixNano())
	g, err := New("JBSWY3DPEHPK3PXP", func() time.Time { return time.Unix(0, now.Load()) })
	if err != nil {
		t.Fatal(err)
	}
	g.MarkUsed(base.Add(-5 * time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := g.Code(ctx); err == nil {
		t.Fatal("Code handed out a step marked used")
	}
	now.Store(base.Add(Period).UnixNano())
	if _, err := g.Code(context.Background()); err != nil {
		t.Fatalf("next step: %v", err)
	}
}

func TestFreshNeverWaitsNorRepeats(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 1, 0, time.UTC)
	clock := func() time.Time { return now }
	g, err := New("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", clock)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := g.Code(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := g.Fresh(); ok {
		t.Fatal("Fresh handed out the used step's code again")
	}
	now = now.Add(30 * time.Second)
	c2, ok := g.Fresh()
	if !ok || c2 == c1 || len(c2) != 6 {
		t.Fatalf("Fresh in the next step = %q, %v", c2, ok)
	}
	if _, ok := g.Fresh(); ok {
		t.Fatal("Fresh handed out a step twice")
	}
}
