package main

import (
	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/angelone"
	"github.com/authproxy/authproxy/auth/fivepaisa"
	"github.com/authproxy/authproxy/auth/kite"
	"github.com/authproxy/authproxy/auth/pocketful"
	"github.com/authproxy/authproxy/auth/tradingo"
	"github.com/authproxy/authproxy/auth/tradovate"
	"github.com/authproxy/authproxy/auth/upstox"
	"github.com/authproxy/authproxy/config"
)

// kinds are the brokers this build supports: adding a broker is one package
// and one line here. The order is the order config names them in messages.
func kinds() []auth.Kind {
	return []auth.Kind{
		tradingo.Kind,
		tradovate.Kind,
		fivepaisa.Kind,
		pocketful.Kind,
		kite.Kind,
		angelone.Kind,
		upstox.Kind,
	}
}

// schema is config's view of kinds.
func schema() config.Schema { return config.NewSchema(kinds()...) }

// kindOf returns the kind of broker type typ.
func kindOf(typ string) (auth.Kind, bool) {
	for _, k := range kinds() {
		if k.Type == typ {
			return k, true
		}
	}
	return auth.Kind{}, false
}
