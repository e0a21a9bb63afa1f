package angelone

import "github.com/authproxy/authproxy/auth"

// Orders returns the requests SmartAPI treats as orders (sources in the
// package doc). A new slice on every call: callers may keep or change it.
func Orders() auth.Routes {
	var rs auth.Routes
	for _, p := range []string{"placeOrder", "modifyOrder", "cancelOrder"} {
		rs = append(rs, auth.Route{Method: "POST", Path: "/rest/secure/angelbroking/order/v1/" + p})
	}
	// GTT rules, under the gtt-service prefix the SDK uses and bare.
	for _, p := range []string{"createRule", "modifyRule", "cancelRule"} {
		rs = append(rs,
			auth.Route{Method: "POST", Path: "/gtt-service/rest/secure/angelbroking/gtt/v1/" + p},
			auth.Route{Method: "POST", Path: "/rest/secure/angelbroking/gtt/v1/" + p})
	}
	return rs
}

// Orders implements auth.OrderDeclarer.
func (b *Broker) Orders() auth.Routes { return Orders() }

var _ auth.OrderDeclarer = (*Broker)(nil)
