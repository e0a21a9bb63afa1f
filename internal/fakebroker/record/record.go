// Package record keeps what a fake broker saw: every request (headers and
// body, bounded in number) and every order it accepted with its arrival
// time, so tests can check what reached the broker and how orders were
// spaced. A Log is safe for concurrent use; the zero Log is ready.
package record

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"time"
)

// MaxRequests bounds how many requests a Log keeps; later ones are counted
// but dropped.
const MaxRequests = 10000

// Request is one request a fake saw.
type Request struct {
	Time          time.Time
	Method        string
	Host          string
	Path          string
	RawQuery      string
	Authorization string // every Authorization value, joined with ", "
	Header        http.Header
	Body          []byte
}

// Order is one order request a fake accepted.
type Order struct {
	Time   time.Time // arrival, by the fake's clock
	Method string
	Path   string
	ID     string // the order id the fake answered with
	Body   []byte
}

// Log records requests and orders.
type Log struct {
	mu       sync.Mutex
	requests []Request
	dropped  int
	orders   []Order
}

// Add records r (with its already-read body) at time now.
func (l *Log) Add(now time.Time, r *http.Request, body []byte) {
	rec := Request{
		Time:          now,
		Method:        r.Method,
		Host:          r.Host,
		Path:          r.URL.Path,
		RawQuery:      r.URL.RawQuery,
		Authorization: strings.Join(r.Header.Values("Authorization"), ", "),
		Header:        r.Header.Clone(),
		Body:          bytes.Clone(body),
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.requests) >= MaxRequests {
		l.dropped++
		return
	}
	l.requests = append(l.requests, rec)
}

// AddOrder records an accepted order.
func (l *Log) AddOrder(o Order) {
	o.Body = bytes.Clone(o.Body)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.orders) < MaxRequests {
		l.orders = append(l.orders, o)
	}
}

// Requests returns a copy of every request kept, in arrival order.
func (l *Log) Requests() []Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Request, len(l.requests))
	for i, r := range l.requests {
		r.Header = r.Header.Clone()
		r.Body = bytes.Clone(r.Body)
		out[i] = r
	}
	return out
}

// Orders returns a copy of every accepted order, in arrival order.
func (l *Log) Orders() []Order {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Order, len(l.orders))
	for i, o := range l.orders {
		o.Body = bytes.Clone(o.Body)
		out[i] = o
	}
	return out
}

// Dropped is how many requests arrived after MaxRequests were kept.
func (l *Log) Dropped() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}

// OverRate reports whether one more order at now would make more than
// perSecond accepted orders within a second (never when perSecond <= 0).
// Checking and recording are not atomic: tests that race orders against
// the limit should not rely on the exact count.
func (l *Log) OverRate(now time.Time, perSecond int) bool {
	return perSecond > 0 && l.OrdersSince(now.Add(-time.Second)) >= perSecond
}

// OrdersSince counts the accepted orders that arrived after t.
func (l *Log) OrdersSince(t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for i := len(l.orders) - 1; i >= 0 && l.orders[i].Time.After(t); i-- {
		n++
	}
	return n
}
