package guard

import "testing"

func TestSetLimitsKeepsUnchangedLimiters(t *testing.T) {
	g, err := New(Options{StateDir: t.TempDir(), Limits: map[string]int{"a": 5, "b": 3}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	la, lb := g.Limiter("a"), g.Limiter("b")
	g.SetLimits(map[string]int{"a": 5, "b": 4, "c": 2, "d": 0})
	if g.Limiter("a") != la {
		t.Error("an unchanged limit got a new limiter")
	}
	if g.Limiter("b") == lb || g.Limit("b") != 4 {
		t.Errorf("a changed limit kept its limiter (limit %d)", g.Limit("b"))
	}
	if g.Limiter("c") == nil || g.Limit("c") != 2 {
		t.Error("an account added by a reload has no limiter")
	}
	if g.Limiter("d") != nil || g.Limit("d") != 0 {
		t.Error("max_orders_per_second = 0 must mean no limiter")
	}
}
