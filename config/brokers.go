package config

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/authproxy/authproxy/auth"
)

// Schema is what config knows of brokers: the kinds cmd/authproxy lists,
// in that order.
type Schema struct {
	kinds []auth.Kind
}

// NewSchema returns the schema for kinds.
func NewSchema(kinds ...auth.Kind) Schema { return Schema{kinds: slices.Clone(kinds)} }

// kind returns the kind of type typ.
func (s Schema) kind(typ string) (auth.Kind, bool) {
	for _, k := range s.kinds {
		if k.Type == typ {
			return k, true
		}
	}
	return auth.Kind{}, false
}

// Types returns the known broker types, sorted.
func (s Schema) Types() []string {
	out := make([]string, 0, len(s.kinds))
	for _, k := range s.kinds {
		out = append(out, k.Type)
	}
	slices.Sort(out)
	return out
}

// typeList is the types quoted for a message: "a", "b" or "c".
func (s Schema) typeList() string {
	q := make([]string, len(s.kinds))
	for i, k := range s.kinds {
		q[i] = strconv.Quote(k.Type)
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// IsSecretKey reports whether the value of key is a secret that must never
// be printed. key is a bare key ("mpin") or a dotted path
// ("brokers.tr.mpin"); the secrets are the keys some kind marks secret, in
// any table, every proxy_auth.users password and store.key.
func (s Schema) IsSecretKey(key string) bool {
	if strings.HasPrefix(key, "proxy_auth.users.") || key == "store.key" {
		return true
	}
	last := key
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		last = key[i+1:]
	}
	last = strings.Trim(last, `"`)
	for _, k := range s.kinds {
		for _, kk := range k.Keys {
			if kk.Name == last && kk.Secret {
				return true
			}
		}
	}
	return false
}

// DefaultHosts returns the hosts an account of type typ claims when its
// table has no "hosts" (nil for an unknown type). values is the account's
// Values (a kind's hosts may depend on them).
func (s Schema) DefaultHosts(typ string, values map[string]string) []string {
	k, ok := s.kind(typ)
	if !ok || k.Hosts == nil {
		return nil
	}
	return k.Hosts(values)
}

// schemaKeys returns the keys (besides type and hosts) an account of type
// typ may hold, or nil for an unknown type.
func (s Schema) schemaKeys(typ string) map[string]auth.Key {
	k, ok := s.kind(typ)
	if !ok {
		return nil
	}
	m := make(map[string]auth.Key, len(k.Keys))
	for _, kk := range k.Keys {
		m[kk.Name] = kk
	}
	return m
}

// validAccountName reports whether name matches [A-Za-z0-9_-]+.
func validAccountName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

// brokerInfo records where an account's hosts came from, for problems about
// them.
type brokerInfo struct {
	key      string // brokers.NAME.hosts, or brokers.NAME for the defaults
	line     int
	explicit bool
}

// brokers walks the [brokers] table. Accounts with an unusable type are left
// out (and reported).
func (p *parser) brokers(f field, listen string) ([]*Account, map[*Account]brokerInfo) {
	m, ok := p.table(f, "a table of [brokers.NAME] tables")
	if !ok {
		return nil, nil
	}
	var accts []*Account
	infos := map[*Account]brokerInfo{}
	for _, c := range p.fields(f, m) {
		if a, info, ok := p.account(c, listen); ok {
			accts = append(accts, a)
			infos[a] = info
		}
	}
	slices.SortFunc(accts, func(a, b *Account) int { return strings.Compare(a.Name, b.Name) })
	return accts, infos
}

// acct is an account being built; it is the auth.Checker a kind's Check
// hook sees.
type acct struct {
	p       *parser
	a       *Account
	f       field
	listen  string
	present map[string]field // keys given in the table (type and hosts aside)
	unset   map[string]bool  // keys whose value used an unset variable
	bad     map[string]bool  // keys whose value was already reported
}

func (b *acct) keyName(k string) string { return append(slices.Clip(b.f.key), k).String() }

// Given reports whether the table holds k.
func (b *acct) Given(k string) bool {
	_, ok := b.present[k]
	return ok
}

// Known reports whether k is given with a usable value.
func (b *acct) Known(k string) bool { return b.Given(k) && !b.unset[k] && !b.bad[k] }

// Value is k's value.
func (b *acct) Value(k string) string { return b.a.Values[k] }

// Require reports each key that is absent, or present but empty. A key whose
// value came from an unset variable is not checked: the account is already
// unconfigured, and Missing names the variable.
func (b *acct) Require(mode string, keys ...string) {
	for _, k := range keys {
		c, ok := b.present[k]
		switch {
		case !ok:
			b.p.probs.add(b.a.Line, b.keyName(k), "missing (required for "+mode+")")
		case b.unset[k] || b.bad[k]:
		case b.a.Values[k] == "":
			b.p.add(c, "must not be empty")
		}
	}
}

// Forbid reports each of keys that is present.
func (b *acct) Forbid(why string, keys ...string) {
	for _, k := range keys {
		if c, ok := b.present[k]; ok {
			b.p.add(c, why)
		}
	}
}

// Check runs fn on k's value when it is known and non-empty; fn returns a
// problem message or "".
func (b *acct) Check(k string, fn func(string) string) {
	v, ok := b.a.Values[k]
	if !ok || v == "" || b.unset[k] {
		return
	}
	if msg := fn(v); msg != "" {
		b.p.add(b.present[k], msg)
		b.bad[k] = true
	}
}

// Default sets k to v when the table does not give k.
func (b *acct) Default(k, v string) {
	if !b.Given(k) {
		b.a.Values[k] = v
	}
}

// DefaultRedirect sets redirect_uri to the proxy's own callback when the
// table leaves it out (or empty).
func (b *acct) DefaultRedirect() {
	if b.unset["redirect_uri"] || b.bad["redirect_uri"] {
		return
	}
	if b.a.Values["redirect_uri"] == "" {
		b.a.Values["redirect_uri"] = "http://" + b.listen + "/callback/" + b.a.Name
	}
}

// Problem records msg about k, or about the table when k is "".
func (b *acct) Problem(k, msg string) {
	if k == "" {
		b.p.probs.add(b.a.Line, b.f.name(), msg)
		return
	}
	if c, ok := b.present[k]; ok {
		b.p.add(c, msg)
		return
	}
	b.p.probs.add(b.a.Line, b.keyName(k), msg)
}

// account builds one [brokers.NAME] table.
func (p *parser) account(f field, listen string) (*Account, brokerInfo, bool) {
	name := f.key[len(f.key)-1]
	m, ok := p.table(f, `a table ([brokers.NAME] with type = "...")`)
	if !ok {
		return nil, brokerInfo{}, false
	}
	kids := p.fields(f, m)
	line := p.line(f)
	a := &Account{Name: name, Line: line, Values: map[string]string{}, MaxOrdersPerSecond: DefaultMaxOrdersPerSecond}
	if !validAccountName(name) {
		p.probs.add(line, f.name(), `account names may hold only letters, digits, "_" and "-" (they are used in URLs)`)
	}

	typeField, ok := m["type"]
	if !ok {
		p.probs.add(line, f.name()+".type", "missing: set type = "+p.schema.typeList())
		return nil, brokerInfo{}, false
	}
	tf := f.child("type", typeField)
	typ, missing, ok := p.rawString(tf, "")
	if !ok {
		return nil, brokerInfo{}, false
	}
	if len(missing) > 0 {
		p.add(tf, "the type must be known: "+missingMsg(missing))
		return nil, brokerInfo{}, false
	}
	kind, known := p.schema.kind(typ)
	if !known {
		p.add(tf, fmt.Sprintf(`unknown type %q (use %s)`, typ, p.schema.typeList()))
		return nil, brokerInfo{}, false
	}
	schema := p.schema.schemaKeys(typ)
	a.Type = typ

	b := &acct{p: p, a: a, f: f, listen: listen, present: map[string]field{}, unset: map[string]bool{}, bad: map[string]bool{}}
	var hostsField *field
	for _, c := range kids {
		k := c.key[len(c.key)-1]
		switch k {
		case "type":
			continue
		case "hosts":
			hostsField = &c
			continue
		case "max_orders_per_second":
			p.maxOrders(c, a)
			continue
		}
		key, known := schema[k]
		if !known {
			msg := "unknown key"
			for _, other := range p.schema.Types() {
				if _, ok := p.schema.schemaKeys(other)[k]; ok {
					msg = fmt.Sprintf("unknown key for type %q", typ)
					break
				}
			}
			p.add(c, msg)
			continue
		}
		b.present[k] = c
		switch key.Kind {
		case auth.KeyBool:
			v, ok := p.boolean(c)
			if !ok {
				b.bad[k] = true
				continue
			}
			a.Values[k] = strconv.FormatBool(v)
		case auth.KeyString:
			s, missing, ok := p.rawString(c, "must be a string (every credential value is a TOML string)")
			if !ok {
				b.bad[k] = true
				continue
			}
			if len(missing) > 0 {
				// Kept (with the unset variables expanded to "") so that
				// which keys the table has stays visible; the account is
				// unconfigured, so the value is never used.
				a.Missing = append(a.Missing, missing...)
				b.unset[k] = true
			}
			a.Values[k] = s
		}
	}

	for _, k := range kind.Keys {
		if k.Check != nil {
			b.Check(k.Name, k.Check)
		}
	}
	if kind.Check != nil {
		kind.Check(b)
	}

	info := p.accountHosts(b, hostsField)
	a.Missing = sortedUnique(a.Missing)
	if len(a.Missing) == 0 {
		a.Missing = nil
	}
	return a, info, true
}

// accountHosts sets a.Hosts from the "hosts" key or the type's defaults.
func (p *parser) accountHosts(b *acct, hf *field) brokerInfo {
	a := b.a
	// Hand the brokers the secret in the form the TOTP libraries expect.
	if v, ok := a.Values["totp_secret"]; ok && !b.bad["totp_secret"] && !b.unset["totp_secret"] {
		if n := auth.NormalizeTOTPSecret(v); n != "" {
			a.Values["totp_secret"] = n
		}
	}
	info := brokerInfo{key: b.f.name(), line: a.Line}
	if hf != nil {
		info = brokerInfo{key: hf.name(), line: p.line(*hf), explicit: true}
		a.Hosts = p.hostList(*hf, a)
	}
	if len(a.Hosts) == 0 {
		a.Hosts = p.schema.DefaultHosts(a.Type, a.Values)
		info.explicit = false
	}
	return info
}

// hostList reads an explicit hosts array. Elements that use an unset
// variable are dropped (and named in a.Missing).
func (p *parser) hostList(f field, a *Account) []string {
	v := p.value(f)
	arr, ok := v.([]any)
	if !ok {
		p.add(f, fmt.Sprintf("must be an array of host names, not %s", typeName(v)))
		return nil
	}
	if len(arr) == 0 {
		p.add(f, "must list at least one host (leave hosts out for the type's defaults)")
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			p.add(f, fmt.Sprintf("element %d must be a string, not %s", i+1, typeName(e)))
			continue
		}
		s, missing, err := expand(s, p.lookupEnv)
		if err != nil {
			p.add(f, fmt.Sprintf("element %d: %v", i+1, err))
			continue
		}
		if len(missing) > 0 {
			a.Missing = append(a.Missing, missing...)
			continue
		}
		h, err := normalizeHostPattern(s)
		if err != nil {
			p.add(f, fmt.Sprintf("%q %v", s, err))
			continue
		}
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

// checkDuplicateHosts reports every host claimed by more than one account
// (called only when there is no [proxy_auth] to tell them apart).
func (p *parser) checkDuplicateHosts(accts []*Account, infos map[*Account]brokerInfo) {
	owners := map[string][]*Account{}
	var order []string
	for _, a := range accts {
		for _, h := range a.Hosts {
			if len(owners[h]) == 0 {
				order = append(order, h)
			}
			owners[h] = append(owners[h], a)
		}
	}
	for _, h := range order {
		as := owners[h]
		if len(as) < 2 {
			continue
		}
		for _, a := range as {
			var others []string
			for _, o := range as {
				if o != a {
					others = append(others, strconv.Quote(o.Name))
				}
			}
			info := infos[a]
			what := "host"
			if !info.explicit {
				what = "default host"
			}
			noun := "account"
			if len(others) > 1 {
				noun = "accounts"
			}
			p.probs.add(info.line, info.key, fmt.Sprintf(
				"%s %q is also claimed by %s %s: give each account its own hosts, or add [proxy_auth] users so that the proxy user name selects the account",
				what, h, noun, strings.Join(others, ", ")))
		}
	}
}

// Account returns the account called name, or nil.
func (c *Config) Account(name string) *Account {
	for _, a := range c.Accounts {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// AccountForHost returns the accounts that claim host, in name order. host
// may carry a port and a trailing dot and is matched without regard to case.
// Exact names win; otherwise the longest "*.suffix" pattern that host is a
// subdomain of (a pattern never matches the bare suffix itself). More than one
// account is returned only when [proxy_auth] lets accounts share a host.
func (c *Config) AccountForHost(host string) []*Account {
	h := lookupHost(host)
	if h == "" {
		return nil
	}
	var exact, wild []*Account
	best := 0
	for _, a := range c.Accounts {
		matchedExact, matchedLen := false, 0
		for _, pat := range a.Hosts {
			if pat == h {
				matchedExact = true
				break
			}
			if suffix, ok := strings.CutPrefix(pat, "*"); ok && len(h) > len(suffix) && strings.HasSuffix(h, suffix) {
				matchedLen = max(matchedLen, len(suffix))
			}
		}
		switch {
		case matchedExact:
			exact = append(exact, a)
		case matchedLen > best:
			best, wild = matchedLen, []*Account{a}
		case matchedLen > 0 && matchedLen == best:
			wild = append(wild, a)
		}
	}
	if len(exact) > 0 {
		return exact
	}
	return wild
}

// lookupHost lower-cases host and strips a port, brackets and a trailing dot.
func lookupHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// normalizeHostPattern checks one "hosts" entry and returns it lower-cased
// without a trailing dot. It allows a host name, an IP address, or a leading
// "*." wildcard; the error completes a sentence that starts with the host.
func normalizeHostPattern(s string) (string, error) {
	h := strings.TrimSuffix(strings.ToLower(s), ".")
	switch {
	case h == "":
		return "", fmt.Errorf("is not a host name")
	case strings.Contains(h, "://"):
		return "", fmt.Errorf("must be a host name, not a URL")
	case strings.Contains(h, "/"):
		return "", fmt.Errorf("must be a host name without a path")
	}
	if ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); ip != nil {
		return ip.String(), nil
	}
	if strings.Contains(h, ":") {
		return "", fmt.Errorf("must not have a port (hosts match on the name alone)")
	}
	name := h
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		name = rest
	}
	if strings.Contains(name, "*") {
		return "", fmt.Errorf(`has a wildcard that is not a leading "*."`)
	}
	if len(name) > 253 {
		return "", fmt.Errorf("is longer than 253 characters")
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return "", fmt.Errorf("is not a valid host name")
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return "", fmt.Errorf("is not a valid host name")
			}
		}
	}
	return h, nil
}
