package main

import (
	"strings"
)

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// nearMiss returns the candidate closest to name when it is a plausible
// typo of it: equal but for case, or within an edit distance of 1 (names
// up to 4 bytes) or 2 (longer names). "" when none is close.
func nearMiss(name string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if c == name {
			continue
		}
		if strings.EqualFold(c, name) {
			return c
		}
		limit := 2
		if len(name) <= 4 {
			limit = 1
		}
		if d := editDistance(strings.ToUpper(name), strings.ToUpper(c)); d <= limit && d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// topKeys are the keys of rules.toml outside [brokers.NAME], by table.
func topKeys() map[string][]string {
	return map[string][]string{
		"":           {"listen", "state_dir", "passthrough", "upstream", "proxy_auth", "limits", "store", "brokers"},
		"upstream":   {"ca_file", "resolve", "timeout", "proxy"},
		"proxy_auth": {"users", "accounts"},
		"limits":     {"refresh_margin", "max_body", "max_tunnels", "idle_timeout"},
		"store":      {"kind", "url", "key"},
	}
}

// suggestKey returns the key a misspelt dotted key (as in a config
// Problem) probably meant, or "".
func suggestKey(dotted string, accountType func(name string) string) string {
	parts := strings.Split(dotted, ".")
	last := parts[len(parts)-1]
	var candidates []string
	switch {
	case len(parts) == 1:
		candidates = topKeys()[""]
	case len(parts) == 2 && parts[0] != "brokers":
		candidates = topKeys()[parts[0]]
	case len(parts) == 3 && parts[0] == "brokers":
		typ := accountType(parts[1])
		if typ == "" {
			for _, t := range schema().Types() {
				candidates = append(candidates, schema().AccountKeys(t)...)
			}
		} else {
			candidates = schema().AccountKeys(typ)
		}
		candidates = append(candidates, "max_orders_per_second")
	}
	return nearMiss(last, candidates)
}

// envNames returns the names of the set, non-empty environment variables.
func envNames(e env) []string {
	if e.environ == nil {
		return nil
	}
	var out []string
	for _, kv := range e.environ() {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k != "" && v != "" {
			out = append(out, k)
		}
	}
	return out
}
