package main

import (
	"log/slog"

	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/guard"
)

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
