package tradovate

import "testing"

func TestOrders(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"POST", "/v1/order/placeorder", true},
		{"POST", "/v1/order/placeOSO", true},
		{"POST", "/v1/order/placeoco", true},
		{"POST", "/v1/order/modifyorder", true},
		{"POST", "/v1/order/cancelorder", true},
		{"POST", "/v1/order/liquidateposition", true},
		{"POST", "/v1/orderStrategy/startOrderStrategy", true},
		{"GET", "/v1/order/list", false},
		{"GET", "/v1/account/list", false},
		{"POST", "/v1/auth/accesstokenrequest", false},
	} {
		if got := (&Broker{}).Orders().Match(tc.method, tc.path); got != tc.want {
			t.Errorf("%s %s: order = %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
}
