package kite

import "github.com/authproxy/authproxy/auth"

// Orders returns the requests Kite treats as orders (sources in the
// package doc). A new slice on every call: callers may keep or change it.
func Orders() auth.Routes {
	return auth.Routes{
		{Method: "POST", Path: "/orders/*"},     // place, by variety
		{Method: "PUT", Path: "/orders/*/*"},    // modify variety/order_id
		{Method: "DELETE", Path: "/orders/*/*"}, // cancel variety/order_id
		{Method: "POST", Path: "/gtt/triggers"},
		{Method: "PUT", Path: "/gtt/triggers/*"},
		{Method: "DELETE", Path: "/gtt/triggers/*"},
		{Method: "POST", Path: "/mf/orders"},
		{Method: "DELETE", Path: "/mf/orders/*"},
		{Method: "POST", Path: "/mf/sips"},
		{Method: "PUT", Path: "/mf/sips/*"},
		{Method: "DELETE", Path: "/mf/sips/*"},
	}
}

// Orders implements auth.OrderDeclarer.
func (b *Broker) Orders() auth.Routes { return Orders() }

var _ auth.OrderDeclarer = (*Broker)(nil)
