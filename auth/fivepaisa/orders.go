package fivepaisa

import "github.com/authproxy/authproxy/auth"

// Orders returns the requests 5paisa treats as orders (sources in the
// package doc). A new slice on every call: callers may keep or change it.
func Orders() auth.Routes {
	const base = "/VendorsAPI/Service1.svc/"
	var rs auth.Routes
	// The V1 order requests, under any version segment and bare.
	for _, p := range []string{"PlaceOrderRequest", "ModifyOrderRequest", "CancelOrderRequest"} {
		rs = append(rs, auth.Route{Method: "POST", Path: base + "*/" + p}, auth.Route{Method: "POST", Path: base + p})
	}
	for _, p := range []string{
		"BracketOrderRequest", "ModifyBracketOrderRequest", "CancelBracketOrderRequest",
		"CoverOrderRequest", "ModifyCoverOrderequest", "ModifyCoverOrderRequest", "CancelCoverOrderRequest",
		"CancelOrderBulk", "SquareOffAll", "ExecuteBasket",
		"AddVTTOrder", "ModifyVTTOrder", "CancelVTTOrder",
	} {
		rs = append(rs, auth.Route{Method: "POST", Path: base + p}, auth.Route{Method: "POST", Path: base + "*/" + p})
	}
	return rs
}

// Orders implements auth.OrderDeclarer.
func (b *Broker) Orders() auth.Routes { return Orders() }

var _ auth.OrderDeclarer = (*Broker)(nil)
