package tradovate

import "github.com/authproxy/authproxy/auth"

// Orders returns the requests Tradovate treats as orders (sources in the
// package doc). A new slice on every call: callers may keep or change it.
func Orders() auth.Routes {
	var rs auth.Routes
	for _, p := range []string{"placeorder", "modifyorder", "cancelorder", "placeoso", "placeoco", "liquidateposition"} {
		rs = append(rs, auth.Route{Method: "POST", Path: "/v1/order/" + p})
	}
	for _, p := range []string{"startorderstrategy", "modifyorderstrategy", "interruptorderstrategy"} {
		rs = append(rs, auth.Route{Method: "POST", Path: "/v1/orderstrategy/" + p})
	}
	return rs
}

// Orders implements auth.OrderDeclarer.
func (b *Broker) Orders() auth.Routes { return Orders() }

var _ auth.OrderDeclarer = (*Broker)(nil)
