package tradovate

import (
	"net/http"
	"testing"
)

func TestOrdersAccepted(t *testing.T) {
	f, _ := newTestFake()
	m := decode(t, do(f, http.MethodPost, "https://demo.tradovateapi.com/v1/auth/accesstokenrequest", goodLogin, nil))
	bearer := map[string]string{"Authorization": "Bearer " + m["accessToken"].(string), "Content-Type": "application/json"}
	w := do(f, http.MethodPost, "https://demo.tradovateapi.com/v1/order/placeOrder", `{"action":"Buy","symbol":"MESM1","orderQty":1}`, bearer)
	if got := decode(t, w); w.Code != 200 || got["orderId"] == nil {
		t.Fatalf("placeorder: %d %v", w.Code, got)
	}
	w = do(f, http.MethodPost, "https://demo.tradovateapi.com/v1/order/cancelorder", `{"orderId":9001}`, bearer)
	if got := decode(t, w); w.Code != 200 || got["commandId"] == nil {
		t.Fatalf("cancelorder: %d %v", w.Code, got)
	}
	if w := do(f, http.MethodPost, "https://demo.tradovateapi.com/v1/order/placeorder", `{}`, nil); w.Code != 401 {
		t.Fatalf("order without a token: %d", w.Code)
	}
	if f.Orders() != 2 {
		t.Fatalf("Orders() = %d, want 2", f.Orders())
	}
}
