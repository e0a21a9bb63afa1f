// Package route describes a broker's HTTP routes by method and path
// pattern, so that a broker package can declare which of its requests are
// orders (place, modify, cancel) as a plain table, and the order guard can
// match requests against it without knowing the broker.
//
// A pattern is an absolute path whose segments are literals (compared
// case-insensitively, as the brokers' gateways do) or "{name}" wildcards
// matching exactly one non-empty segment. The request path is cleaned
// first ("//", "/./" and "/../" cannot dodge a match), and a trailing
// slash is ignored.
package route

import (
	"net/http"
	"path"
	"strings"
)

// Route is one method and path pattern.
type Route struct {
	Method  string // e.g. http.MethodPost; compared case-insensitively
	Pattern string // e.g. "/orders/{variety}/{order_id}"
}

// Matches reports whether method and urlPath fall under r.
func (r Route) Matches(method, urlPath string) bool {
	if !strings.EqualFold(r.Method, method) {
		return false
	}
	want := segments(r.Pattern)
	got := segments(path.Clean("/" + urlPath))
	if len(want) != len(got) {
		return false
	}
	for i, w := range want {
		if strings.HasPrefix(w, "{") && strings.HasSuffix(w, "}") {
			if got[i] == "" {
				return false
			}
			continue
		}
		if !strings.EqualFold(w, got[i]) {
			return false
		}
	}
	return true
}

// Match reports whether any of routes matches method and urlPath.
func Match(routes []Route, method, urlPath string) bool {
	for _, r := range routes {
		if r.Matches(method, urlPath) {
			return true
		}
	}
	return false
}

// MatchRequest is Match for an *http.Request (false when r has no URL).
func MatchRequest(routes []Route, r *http.Request) bool {
	if r == nil || r.URL == nil {
		return false
	}
	return Match(routes, r.Method, r.URL.Path)
}

func segments(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}
