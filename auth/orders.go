package auth

import (
	"net/http"
	"path"
	"strings"
)

// Route is one kind of request a broker treats as an order (place, modify,
// cancel): an HTTP method and a path pattern. The pattern's segments match
// case-insensitively; a segment "*" matches any one segment. A request's
// path is cleaned first (duplicate slashes, "." and ".." removed, a trailing
// slash ignored), so spelling a path differently does not slip past.
type Route struct {
	Method string // "POST", "PUT", "DELETE", ...
	Path   string // "/v1/order/placeorder", "/api/v1/orders/*"
}

// Routes is a broker's order declaration.
type Routes []Route

// Match reports whether a request with method and URL path is one of rs.
func (rs Routes) Match(method, urlPath string) bool {
	if len(rs) == 0 {
		return false
	}
	p := path.Clean("/" + urlPath)
	got := strings.Split(strings.Trim(p, "/"), "/")
	for _, r := range rs {
		if !strings.EqualFold(r.Method, method) {
			continue
		}
		want := strings.Split(strings.Trim(r.Path, "/"), "/")
		if len(want) != len(got) {
			continue
		}
		ok := true
		for i := range want {
			if want[i] != "*" && !strings.EqualFold(want[i], got[i]) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// OrderDeclarer is implemented by a Broker that declares which of its
// requests are orders; the proxy's order guard (kill switch, rate guard,
// journal) applies to those requests only.
type OrderDeclarer interface {
	Orders() Routes
}

// IsOrder reports whether r is an order according to b's declaration
// (false for a broker that declares none).
func IsOrder(b any, r *http.Request) bool {
	d, ok := b.(OrderDeclarer)
	return ok && d.Orders().Match(r.Method, r.URL.Path)
}
