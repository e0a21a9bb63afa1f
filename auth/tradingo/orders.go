package tradingo

import "github.com/authproxy/authproxy/auth"

// Orders returns the requests Tradingo treats as orders (sources in the
// package doc). A new slice on every call: callers may keep or change it.
func Orders() auth.Routes {
	return auth.Routes{
		{Method: "POST", Path: "/kb/PlaceOrders/PlaceOrder"},
		{Method: "POST", Path: "/kb/PlaceOrders/ModifyOrder"},
		{Method: "POST", Path: "/kb/PlaceOrders/CancelOrder"},
	}
}

// Orders implements auth.OrderDeclarer.
func (b *Broker) Orders() auth.Routes { return Orders() }

var _ auth.OrderDeclarer = (*Broker)(nil)
