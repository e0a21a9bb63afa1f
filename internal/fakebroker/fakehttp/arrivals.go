package fakehttp

import (
	"net/http"
	"sync"
	"time"
)

// Arrival is one request as a fake broker received it.
type Arrival struct {
	Method, Path string
	At           time.Time
}

// Arrivals wraps a fake broker's handler and records when each request
// arrived (before the fake's own handling), so tests can check the rate a
// broker saw. Safe for concurrent use.
type Arrivals struct {
	Next http.Handler

	mu   sync.Mutex
	list []Arrival
}

// ServeHTTP records r and passes it on.
func (a *Arrivals) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.list = append(a.list, Arrival{Method: r.Method, Path: r.URL.Path, At: time.Now()})
	a.mu.Unlock()
	a.Next.ServeHTTP(w, r)
}

// List returns the arrivals so far whose path is path ("" for all), in
// order.
func (a *Arrivals) List(path string) []Arrival {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Arrival
	for _, x := range a.list {
		if path == "" || x.Path == path {
			out = append(out, x)
		}
	}
	return out
}

// MaxInWindow is the largest number of arrivals in any window of length d
// (a window [t, t+d) starting at each arrival).
func MaxInWindow(list []Arrival, d time.Duration) int {
	best := 0
	for i := range list {
		n := 0
		for j := range list {
			if !list[j].At.Before(list[i].At) && list[j].At.Sub(list[i].At) < d {
				n++
			}
		}
		best = max(best, n)
	}
	return best
}
