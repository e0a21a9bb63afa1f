package config

import (
	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/auth/angelone"
	"github.com/authproxy/authproxy/auth/fivepaisa"
	"github.com/authproxy/authproxy/auth/kite"
	"github.com/authproxy/authproxy/auth/pocketful"
	"github.com/authproxy/authproxy/auth/tradingo"
	"github.com/authproxy/authproxy/auth/tradovate"
	"github.com/authproxy/authproxy/auth/upstox"
)

// The tests read configs with the brokers cmd/authproxy lists, in its order.
func testSchema() Schema {
	return NewSchema([]auth.Kind{tradingo.Kind, tradovate.Kind, fivepaisa.Kind, pocketful.Kind,
		kite.Kind, angelone.Kind, upstox.Kind}...)
}

func Load(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	return testSchema().Load(path, lookupEnv)
}

func Parse(path string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	return testSchema().Parse(path, data, lookupEnv)
}

func IsSecretKey(key string) bool { return testSchema().IsSecretKey(key) }

func DefaultHosts(typ string, values map[string]string) []string {
	return testSchema().DefaultHosts(typ, values)
}

func Types() []string { return testSchema().Types() }

func AccountKeys(typ string) []string { return testSchema().AccountKeys(typ) }
