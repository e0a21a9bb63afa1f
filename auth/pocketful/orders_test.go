package pocketful

import "testing"

func TestOrders(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"POST", "/api/v1/orders", true},
		{"PUT", "/api/v1/orders", true},
		{"DELETE", "/api/v1/orders/OMS123", true},
		{"POST", "/api/v1/orders/kart", true},
		{"GET", "/api/v1/orders", false},
		{"GET", "/api/v1/order/OMS123/history", false},
		{"GET", "/api/v1/positions", false},
		{"POST", "/oauth2/token", false},
	} {
		if got := (&Broker{}).Orders().Match(tc.method, tc.path); got != tc.want {
			t.Errorf("%s %s: order = %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
}
