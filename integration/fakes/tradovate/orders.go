package tradovate

import (
	"net/http"
	"strings"

	"github.com/authproxy/authproxy/integration/fakes/fakehttp"
)

// isOrderPath reports whether p (lower case) is one of Tradovate's order
// endpoints: place, modify, cancel, OSO, OCO, liquidate and the order
// strategies.
func isOrderPath(p string) bool {
	switch strings.TrimPrefix(p, "/v1") {
	case "/order/placeorder", "/order/placeoso", "/order/placeoco", "/order/liquidateposition",
		"/order/modifyorder", "/order/cancelorder",
		"/orderstrategy/startorderstrategy", "/orderstrategy/modifyorderstrategy", "/orderstrategy/interruptorderstrategy":
		return true
	}
	return false
}

// serveOrder accepts an order: new orders get {"orderId": N}, changes to
// existing ones {"commandId": N}, as Tradovate answers.
func (f *Fake) serveOrder(w http.ResponseWriter, p string) {
	n := f.orderSeq.Add(1)
	switch {
	case strings.HasSuffix(p, "/modifyorder"), strings.HasSuffix(p, "/cancelorder"):
		fakehttp.WriteJSON(w, http.StatusOK, map[string]any{"commandId": 5000 + n})
	case strings.Contains(p, "/orderstrategy/"):
		fakehttp.WriteJSON(w, http.StatusOK, map[string]any{"orderStrategy": map[string]any{"id": 7000 + n, "status": "ActiveStrategy"}})
	default:
		fakehttp.WriteJSON(w, http.StatusOK, map[string]any{"orderId": 9000 + n})
	}
}

// Orders is how many orders the fake accepted.
func (f *Fake) Orders() int { return int(f.orderSeq.Load()) }
