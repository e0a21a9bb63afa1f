package fakehttp

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestMaxInWindow(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms ...int) []Arrival {
		var out []Arrival
		for _, m := range ms {
			out = append(out, Arrival{At: base.Add(time.Duration(m) * time.Millisecond)})
		}
		return out
	}
	if got := MaxInWindow(at(0, 100, 999, 1000, 1500, 1999), time.Second); got != 3 {
		t.Errorf("got %d, want 3", got)
	}
	if got := MaxInWindow(nil, time.Second); got != 0 {
		t.Errorf("empty: got %d", got)
	}
}

func TestArrivalsRecords(t *testing.T) {
	a := &Arrivals{Next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	a.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/x", nil))
	a.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/y", nil))
	if got := a.List("/x"); len(got) != 1 || got[0].Method != "POST" {
		t.Fatalf("List(/x) = %+v", got)
	}
	if got := a.List(""); len(got) != 2 {
		t.Fatalf("List() = %+v", got)
	}
}
