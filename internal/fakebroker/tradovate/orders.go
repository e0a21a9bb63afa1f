package tradovate

import (
	"net/http"
	"strings"

	"github.com/authproxy/authproxy/internal/fakebroker/fakehttp"
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
// existing ones {"commandId": N}, as Tradovate answers. Like every other
// API answer of the fake it also echoes host, path and method, for tests.
func (f *Fake) serveOrder(w http.ResponseWriter, r *http.Request, host string) {
	n := f.orderSeq.Add(1)
	ans := map[string]any{"host": host, "path": r.URL.Path, "method": r.Method}
	p := strings.ToLower(r.URL.Path)
	switch {
	case strings.HasSuffix(p, "/modifyorder"), strings.HasSuffix(p, "/cancelorder"):
		ans["commandId"] = 5000 + n
	case strings.Contains(p, "/orderstrategy/"):
		ans["orderStrategy"] = map[string]any{"id": 7000 + n, "status": "ActiveStrategy"}
	default:
		ans["orderId"] = 9000 + n
	}
	fakehttp.WriteJSON(w, http.StatusOK, ans)
}

// Orders is how many orders the fake accepted.
func (f *Fake) Orders() int { return int(f.orderSeq.Load()) }
