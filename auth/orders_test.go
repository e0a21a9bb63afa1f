package auth

import (
	"strings"
	"testing"
)

func TestRoutesMatch(t *testing.T) {
	rs := Routes{{Method: "POST", Path: "/v1/order/placeorder"}, {Method: "DELETE", Path: "/api/v1/orders/*"}}
	tests := []struct {
		method, path string
		want         bool
	}{
		{"POST", "/v1/order/placeorder", true},
		{"post", "/V1/Order/placeOrder", true},
		{"POST", "/v1/order/placeorder/", true},
		{"POST", "//v1/order/./placeorder", true},
		{"POST", "/v1/x/../order/placeorder", true},
		{"GET", "/v1/order/placeorder", false},
		{"POST", "/v1/order/placeorders", false},
		{"POST", "/v1/order/list", false},
		{"DELETE", "/api/v1/orders/123", true},
		{"DELETE", "/api/v1/orders", false},
		{"DELETE", "/api/v1/orders/1/2", false},
		{"DELETE", "/api/v1/orders//", false},
	}
	for _, tc := range tests {
		if got := rs.Match(tc.method, tc.path); got != tc.want {
			t.Errorf("Match(%s %s) = %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
	if (Routes{}).Match("POST", "/") {
		t.Error("empty routes matched")
	}
}

func FuzzRoutesMatch(f *testing.F) {
	f.Add("POST", "/v1/order/placeorder")
	f.Add("DELETE", "/api/v1/orders/../orders/7")
	rs := Routes{{Method: "POST", Path: "/v1/order/placeorder"}, {Method: "DELETE", Path: "/api/v1/orders/*"}}
	f.Fuzz(func(t *testing.T, method, p string) {
		got := rs.Match(method, p)
		// Spelling variants of the same path must agree.
		if got != rs.Match(strings.ToUpper(method), "/"+p+"/") && !strings.Contains(p, "..") {
			t.Fatalf("Match(%q,%q) differs for a variant spelling", method, p)
		}
	})
}
