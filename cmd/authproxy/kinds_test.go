package main

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestKindsAreComplete checks each listed broker's descriptor: a unique
// type, a display name, keys named once, default hosts inside its CA
// domains, a constructor, a bypass and an order declaration.
func TestKindsAreComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range kinds() {
		if k.Type == "" || seen[k.Type] {
			t.Errorf("kind %q: empty or repeated type", k.Type)
		}
		seen[k.Type] = true
		if k.Display == "" || k.New == nil || k.Bypass == nil || k.Hosts == nil || len(k.Orders) == 0 {
			t.Errorf("kind %q: Display, New, Bypass, Hosts and Orders are all required", k.Type)
		}
		names := map[string]bool{}
		for _, key := range k.Keys {
			if names[key.Name] || key.Name == "type" || key.Name == "hosts" {
				t.Errorf("kind %q: key %q repeated or reserved", k.Type, key.Name)
			}
			names[key.Name] = true
		}
		for _, values := range []map[string]string{{}, {"environment": "demo"}, {"environment": "live"}} {
			for _, h := range k.Hosts(values) {
				if !slices.Contains(k.Domains, registrable(strings.TrimPrefix(h, "*."))) {
					t.Errorf("kind %q: default host %s is outside its domains %q", k.Type, h, k.Domains)
				}
			}
		}
		if k.Bypass(httptest.NewRequest("GET", "https://example.test/", nil)) {
			t.Errorf("kind %q: bypasses /", k.Type)
		}
	}
}
