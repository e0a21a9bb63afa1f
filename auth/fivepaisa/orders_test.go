package fivepaisa

import "testing"

func TestOrders(t *testing.T) {
	const base = "/VendorsAPI/Service1.svc/"
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"POST", base + "V1/PlaceOrderRequest", true},
		{"POST", base + "V1/ModifyOrderRequest", true},
		{"POST", base + "V1/CancelOrderRequest", true},
		{"POST", base + "v1/placeorderrequest", true},
		{"POST", base + "BracketOrderRequest", true},
		{"POST", base + "CancelOrderBulk", true},
		{"POST", base + "SquareOffAll", true},
		{"POST", base + "V3/OrderBook", false},
		{"POST", base + "V2/OrderStatus", false},
		{"POST", base + "TOTPLogin", false},
		{"POST", base + "V1/MarketFeed", false},
	} {
		if got := (&Broker{}).Orders().Match(tc.method, tc.path); got != tc.want {
			t.Errorf("%s %s: order = %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
}
