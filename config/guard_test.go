package config

import (
	"strings"
	"testing"
)

func TestMaxOrdersPerSecond(t *testing.T) {
	env := func(string) (string, bool) { return "", false }
	doc := ("[brokers.a]\ntype = \"pocketful\"\nhosts = [\"a.example\"]\nclient_id = \"x\"\nclient_secret = \"y\"\n" +
		"[brokers.b]\ntype = \"pocketful\"\nhosts = [\"b.example\"]\nclient_id = \"x\"\nclient_secret = \"y\"\nmax_orders_per_second = 0\n" +
		"[brokers.c]\ntype = \"pocketful\"\nhosts = [\"c.example\"]\nclient_id = \"x\"\nclient_secret = \"y\"\nmax_orders_per_second = 25\n")
	cfg, err := Parse("rules.toml", []byte(doc), env)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"a": DefaultMaxOrdersPerSecond, "b": 0, "c": 25}
	for _, a := range cfg.Accounts {
		if a.MaxOrdersPerSecond != want[a.Name] {
			t.Errorf("%s: max_orders_per_second %d, want %d", a.Name, a.MaxOrdersPerSecond, want[a.Name])
		}
		if _, leaked := a.Values["max_orders_per_second"]; leaked {
			t.Errorf("%s: max_orders_per_second stored as a credential value", a.Name)
		}
	}
	for _, bad := range []string{`"5"`, "-1", "2.5", "true"} {
		_, err := Parse("rules.toml", []byte("[brokers.a]\ntype = \"pocketful\"\nclient_id = \"x\"\nclient_secret = \"y\"\nmax_orders_per_second = "+bad+"\n"), env)
		if err == nil || !strings.Contains(err.Error(), "rules.toml:5") || !strings.Contains(err.Error(), "max_orders_per_second") {
			t.Errorf("max_orders_per_second = %s: %v, want an error naming line 5 and the key", bad, err)
		}
	}
}
