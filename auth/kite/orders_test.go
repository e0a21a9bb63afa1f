package kite

import "testing"

func TestOrders(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"POST", "/orders/regular", true},
		{"post", "/orders/regular/", true},
		{"POST", "//orders/./regular", true},
		{"POST", "/x/../orders/amo", true},
		{"PUT", "/orders/regular/151220000000000", true},
		{"DELETE", "/orders/regular/151220000000000", true},
		{"POST", "/gtt/triggers", true},
		{"DELETE", "/gtt/triggers/123", true},
		{"DELETE", "/mf/orders/abc", true},
		{"PUT", "/mf/sips/42", true},
		{"GET", "/orders", false},
		{"GET", "/orders/regular", false},
		{"POST", "/orders", false},
		{"POST", "/orders/regular/123", false},
		{"PUT", "/orders//123", false},
		{"GET", "/gtt/triggers", false},
		{"POST", "/session/token", false},
		{"POST", "", false},
	} {
		if got := (&Broker{}).Orders().Match(tc.method, tc.path); got != tc.want {
			t.Errorf("%s %s: order = %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
}
