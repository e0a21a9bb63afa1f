package upstox

import "testing"

func TestOrders(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"POST", "/v2/order/place", true},
		{"POST", "/v3/order/place", true},
		{"POST", "/v2/order/multi/place", true},
		{"PUT", "/v3/order/modify", true},
		{"DELETE", "/v2/order/cancel", true},
		{"DELETE", "/v2/order/multi/cancel", true},
		{"POST", "/v2/order/positions/exit", true},
		{"POST", "/v3/order/gtt/place", true},
		{"DELETE", "/v3/order/gtt/cancel", true},
		{"GET", "/v2/order/retrieve-all", false},
		{"GET", "/v2/order/details", false},
		{"POST", "/v2/order/modify", false},
		{"POST", TokenPath, false},
	} {
		if got := (&Broker{}).Orders().Match(tc.method, tc.path); got != tc.want {
			t.Errorf("%s %s: order = %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
}
