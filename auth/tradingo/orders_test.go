package tradingo

import "testing"

func TestOrders(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"POST", "/kb/PlaceOrders/PlaceOrder", true},
		{"POST", "/kb/PlaceOrders/ModifyOrder", true},
		{"POST", "/kb/PlaceOrders/CancelOrder", true},
		{"POST", "/kb/PlaceOrders/GetSecurityInfo", false},
		{"POST", "/kb/OrderBook/GetOrderBookList", false},
		{"POST", "/auth/VerifyTotp", false},
	} {
		if got := (&Broker{}).Orders().Match(tc.method, tc.path); got != tc.want {
			t.Errorf("%s %s: order = %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
}
