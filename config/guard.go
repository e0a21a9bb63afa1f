package config

import (
	"fmt"
	"math"
)

// DefaultMaxOrdersPerSecond is [brokers.NAME] max_orders_per_second when
// left out: SEBI's threshold above which a retail algo must be registered.
const DefaultMaxOrdersPerSecond = 10

// maxOrders reads [brokers.NAME] max_orders_per_second: an integer, 0 (off)
// or more.
func (p *parser) maxOrders(c field, a *Account) {
	v := p.value(c)
	n, isInt := v.(int64)
	switch {
	case !isInt:
		p.add(c, fmt.Sprintf("must be an integer (orders per second; 0 turns the limit off), not %s", typeName(v)))
	case n < 0 || n > math.MaxInt32:
		p.add(c, fmt.Sprintf("%d must be from 0 (off) to %d", n, math.MaxInt32))
	default:
		a.MaxOrdersPerSecond = int(n)
	}
}
