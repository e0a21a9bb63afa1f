package main

import (
	"log/slog"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/fivepaisa"
	"github.com/authproxy/authproxy/auth/pocketful"
	"github.com/authproxy/authproxy/auth/tradingo"
	"github.com/authproxy/authproxy/auth/tradovate"
	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/guard"
)

// typeOrders is a broker type's order declaration, for accounts that have no
// Broker value (unconfigured ones).
func typeOrders(typ string) auth.Routes {
	switch typ {
	case "tradingo":
		return tradingo.Orders()
	case "tradovate":
		return tradovate.Orders()
	case "fivepaisa":
		return fivepaisa.Orders()
	case "pocketful":
		return pocketful.Orders()
	}
	return nil
}

// newGuard opens the order guard for cfg's accounts.
func newGuard(cfg *config.Config, logger *slog.Logger) (*guard.Guard, error) {
	return guard.New(guard.Options{StateDir: cfg.StateDir, Limits: orderLimits(cfg), Logger: logger})
}

// orderLimits maps each account to its max_orders_per_second.
func orderLimits(cfg *config.Config) map[string]int {
	limits := make(map[string]int, len(cfg.Accounts))
	for _, a := range cfg.Accounts {
		limits[a.Name] = a.MaxOrdersPerSecond
	}
	return limits
}
