package upstox

import "github.com/authproxy/authproxy/auth"

// Orders returns the requests Upstox treats as orders, on either host
// (sources in the package doc). A new slice on every call: callers may keep
// or change it.
func Orders() auth.Routes {
	return auth.Routes{
		{Method: "POST", Path: "/v2/order/place"},
		{Method: "POST", Path: "/v3/order/place"},
		{Method: "POST", Path: "/v2/order/multi/place"},
		{Method: "PUT", Path: "/v2/order/modify"},
		{Method: "PUT", Path: "/v3/order/modify"},
		{Method: "DELETE", Path: "/v2/order/cancel"},
		{Method: "DELETE", Path: "/v3/order/cancel"},
		{Method: "DELETE", Path: "/v2/order/multi/cancel"},
		{Method: "POST", Path: "/v2/order/positions/exit"},
		{Method: "POST", Path: "/v3/order/gtt/place"},
		{Method: "PUT", Path: "/v3/order/gtt/modify"},
		{Method: "DELETE", Path: "/v3/order/gtt/cancel"},
	}
}

// Orders implements auth.OrderDeclarer.
func (b *Broker) Orders() auth.Routes { return Orders() }

var _ auth.OrderDeclarer = (*Broker)(nil)
