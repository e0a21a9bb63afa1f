package route

import (
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	routes := []Route{
		{http.MethodPost, "/orders/{variety}"},
		{http.MethodPut, "/orders/{variety}/{order_id}"},
		{http.MethodPost, "/rest/secure/angelbroking/order/v1/placeOrder"},
	}
	tests := []struct {
		method, path string
		want         bool
	}{
		{"POST", "/orders/regular", true},
		{"post", "/orders/regular/", true},
		{"POST", "//orders/./regular", true},
		{"POST", "/x/../orders/amo", true},
		{"GET", "/orders/regular", false},
		{"POST", "/orders", false},
		{"POST", "/orders/regular/123", false},
		{"PUT", "/orders/regular/123", true},
		{"PUT", "/orders//123", false},
		{"POST", "/REST/secure/angelbroking/order/v1/PLACEORDER", true},
		{"POST", "/rest/secure/angelbroking/order/v1/placeOrder/x", false},
		{"POST", "", false},
	}
	for _, tc := range tests {
		if got := Match(routes, tc.method, tc.path); got != tc.want {
			t.Errorf("Match(%s %q) = %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
	if MatchRequest(routes, &http.Request{Method: "POST"}) {
		t.Error("a request without URL matched")
	}
	if !MatchRequest(routes, &http.Request{Method: "POST", URL: &url.URL{Path: "/orders/co"}}) {
		t.Error("POST /orders/co did not match")
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("POST", "/orders/regular")
	f.Add("PUT", "/orders/a/b/../c")
	f.Fuzz(func(t *testing.T, method, p string) {
		r := Route{http.MethodPost, "/orders/{variety}"}
		if r.Matches(method, p) {
			got := segments(path.Clean("/" + p))
			if len(got) != 2 || !strings.EqualFold(got[0], "orders") || got[1] == "" || !strings.EqualFold(method, "POST") {
				t.Fatalf("%s %q matched %v", method, p, got)
			}
		}
	})
}
