package angelone

import "testing"

func TestOrders(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"POST", "/rest/secure/angelbroking/order/v1/placeOrder", true},
		{"POST", "/rest/secure/angelbroking/order/v1/modifyOrder", true},
		{"POST", "/rest/secure/angelbroking/order/v1/cancelOrder", true},
		{"POST", "/REST/secure/angelbroking/order/v1/PLACEORDER", true},
		{"POST", "/gtt-service/rest/secure/angelbroking/gtt/v1/createRule", true},
		{"POST", "/rest/secure/angelbroking/gtt/v1/cancelRule", true},
		{"GET", "/rest/secure/angelbroking/order/v1/placeOrder", false},
		{"GET", "/rest/secure/angelbroking/order/v1/getOrderBook", false},
		{"POST", "/rest/secure/angelbroking/order/v1/getLtpData", false},
		{"POST", "/rest/secure/angelbroking/order/v1/placeOrder/x", false},
		{"POST", LoginPath, false},
		{"POST", "", false},
	} {
		if got := (&Broker{}).Orders().Match(tc.method, tc.path); got != tc.want {
			t.Errorf("%s %s: order = %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
}
