package config

import "sort"

// AccountKeys returns the keys an account of type typ may hold (type and
// hosts included), sorted; nil for an unknown type. `authproxy check` uses
// it to suggest the key a typo meant.
func (s Schema) AccountKeys(typ string) []string {
	schema := s.schemaKeys(typ)
	if schema == nil {
		return nil
	}
	out := []string{"type", "hosts"}
	for k := range schema {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
