package record

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestLog(t *testing.T) {
	var l Log
	r := httptest.NewRequest("POST", "https://api.example/orders/regular?x=1", strings.NewReader("a=1"))
	r.Header.Add("Authorization", "token k:a")
	r.Header.Add("Authorization", "Bearer b")
	body := []byte("a=1")
	at := time.Unix(100, 0)
	l.Add(at, r, body)
	body[0] = 'X' // the log keeps its own copy
	l.AddOrder(Order{Time: at, Method: "POST", Path: "/orders/regular", ID: "1", Body: []byte("a=1")})
	reqs := l.Requests()
	if len(reqs) != 1 || reqs[0].Path != "/orders/regular" || reqs[0].RawQuery != "x=1" ||
		reqs[0].Authorization != "token k:a, Bearer b" || string(reqs[0].Body) != "a=1" || !reqs[0].Time.Equal(at) {
		t.Fatalf("requests = %+v", reqs)
	}
	reqs[0].Header.Set("Authorization", "changed")
	if l.Requests()[0].Header.Get("Authorization") != "token k:a" {
		t.Error("Requests hands out the log's own header map")
	}
	if o := l.Orders(); len(o) != 1 || o[0].ID != "1" {
		t.Fatalf("orders = %+v", o)
	}
	for range MaxRequests {
		l.Add(at, r, nil)
	}
	if len(l.Requests()) != MaxRequests || l.Dropped() != 1 {
		t.Errorf("kept %d, dropped %d", len(l.Requests()), l.Dropped())
	}
}

func TestOrdersSince(t *testing.T) {
	var l Log
	base := time.Unix(1000, 0)
	for i := range 5 {
		l.AddOrder(Order{Time: base.Add(time.Duration(i) * 300 * time.Millisecond)})
	}
	// Orders at 0, .3, .6, .9, 1.2 s: after 0.2 s there are four.
	if n := l.OrdersSince(base.Add(200 * time.Millisecond)); n != 4 {
		t.Errorf("OrdersSince = %d, want 4", n)
	}
	if n := l.OrdersSince(base.Add(2 * time.Second)); n != 0 {
		t.Errorf("OrdersSince(later) = %d", n)
	}
	// At 1.25 s the second before it holds .3, .6, .9 and 1.2 s: four.
	at := base.Add(1250 * time.Millisecond)
	for _, tc := range []struct {
		perSecond int
		want      bool
	}{{0, false}, {-1, false}, {3, true}, {4, true}, {5, false}} {
		if got := l.OverRate(at, tc.perSecond); got != tc.want {
			t.Errorf("OverRate(%d) = %v, want %v", tc.perSecond, got, tc.want)
		}
	}
	if l.OverRate(base.Add(3*time.Second), 1) {
		t.Error("OverRate long after the last order")
	}
}
