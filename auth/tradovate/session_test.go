package tradovate_test

import (
	"net/http"
	"testing"

	fake "github.com/authproxy/authproxy/internal/fakebroker/tradovate"
)

// TestClosedSessionIsToldFromAnOutage: a closed session answers 408 (as the
// API docs say); one /auth/me call tells it from a broker outage.
func TestClosedSessionIsToldFromAnOutage(t *testing.T) {
	clk := newClock()
	opts := fakeOptions(clk.Now)
	opts.ClosedSessionStatus = http.StatusRequestTimeout
	w := startWorld(t, opts)
	b := w.broker(t, credConfig(), clk.Now)
	tok, err := b.Login(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if alive, err := b.SessionAlive(t.Context(), tok); !alive || err != nil {
		t.Fatalf("live session: alive %v, %v", alive, err)
	}
	// An outage: 503 for everything. Suspect, but not dead.
	w.fake.Outage(http.StatusServiceUnavailable)
	resp := w.call(t, b, tok, fake.HostDemo, "/v1/account/list")
	if !b.SuspectDead(resp) || b.Rejected(resp, nil) {
		t.Fatalf("503: suspect %v rejected %v", b.SuspectDead(resp), b.Rejected(resp, nil))
	}
	if alive, err := b.SessionAlive(t.Context(), tok); alive || err == nil {
		t.Fatalf("outage: alive %v, err %v; want an error (no login)", alive, err)
	}
	w.fake.Outage(0)
	// Logged in elsewhere: 408, confirmed dead.
	w.fake.CloseAllSessions()
	resp = w.call(t, b, tok, fake.HostDemo, "/v1/account/list")
	if resp.StatusCode != http.StatusRequestTimeout || !b.SuspectDead(resp) {
		t.Fatalf("closed session answered %d", resp.StatusCode)
	}
	if alive, err := b.SessionAlive(t.Context(), tok); alive || err != nil {
		t.Fatalf("closed session: alive %v, err %v; want dead", alive, err)
	}
	for _, ok := range []int{200, 400, 404} {
		if b.SuspectDead(&http.Response{StatusCode: ok}) {
			t.Errorf("%d is suspected as a closed session", ok)
		}
	}
}
