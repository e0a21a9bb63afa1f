package pocketful

import "github.com/authproxy/authproxy/auth"

// Orders returns the requests Pocketful treats as orders (sources in the
// package doc). A new slice on every call: callers may keep or change it.
func Orders() auth.Routes {
	return auth.Routes{
		{Method: "POST", Path: "/api/v1/orders"},
		{Method: "PUT", Path: "/api/v1/orders"},
		{Method: "DELETE", Path: "/api/v1/orders/*"},
		{Method: "POST", Path: "/api/v1/orders/kart"},
		{Method: "PUT", Path: "/api/v1/orders/kart"},
		{Method: "DELETE", Path: "/api/v1/orders/kart"},
	}
}

// Orders implements auth.OrderDeclarer.
func (b *Broker) Orders() auth.Routes { return Orders() }

var _ auth.OrderDeclarer = (*Broker)(nil)
