package config

import (
	"encoding/base32"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Broker types.
const (
	TypeTradingo  = "tradingo"
	TypeTradovate = "tradovate"
	TypeFivepaisa = "fivepaisa"
	TypePocketful = "pocketful"
)

// Types returns the known broker types, sorted.
func Types() []string {
	return []string{TypeFivepaisa, TypePocketful, TypeTradingo, TypeTradovate}
}

// DefaultScope is Pocketful's OAuth scope when "scope" is left out.
const DefaultScope = "orders holdings"

// IsSecretKey reports whether the value of key is a secret that must never
// be printed. key is a bare key ("mpin") or a dotted path
// ("brokers.tr.mpin"); the secrets are mpin, pin, password, sec, totp_secret,
// app_key, encryption_key and client_secret in any table, every
// proxy_auth.users password and store.key.
func IsSecretKey(key string) bool {
	if strings.HasPrefix(key, "proxy_auth.users.") || key == "store.key" {
		return true
	}
	last := key
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		last = key[i+1:]
	}
	switch strings.Trim(last, `"`) {
	case "mpin", "pin", "password", "sec", "totp_secret", "app_key", "encryption_key", "client_secret":
		return true
	}
	return false
}

// DefaultHosts returns the hosts an account of type typ claims when its
// table has no "hosts" (nil for an unknown type). values is the account's
// Values: a Tradovate account's hosts depend on its environment; when that is
// not "demo" or "live" (say, it names an unset variable) both are returned.
func DefaultHosts(typ string, values map[string]string) []string {
	switch typ {
	case TypeTradingo:
		return []string{"tradingorestapi.swastika.co.in"}
	case TypeTradovate:
		switch env := values["environment"]; env {
		case "demo", "live":
			return []string{env + ".tradovateapi.com", "md.tradovateapi.com"}
		}
		return []string{"demo.tradovateapi.com", "live.tradovateapi.com", "md.tradovateapi.com"}
	case TypeFivepaisa:
		return []string{"openapi.5paisa.com", "openfeed.5paisa.com", "aopenfeed.5paisa.com", "bopenfeed.5paisa.com"}
	case TypePocketful:
		return []string{"trade.pocketful.in"}
	}
	return nil
}

// keyKind is how a broker key's value is written in TOML.
type keyKind int

const (
	kindString keyKind = iota
	kindBool
)

// schemaKeys returns the keys (besides type and hosts) an account of type
// typ may hold, or nil for an unknown type.
func schemaKeys(typ string) map[string]keyKind {
	switch typ {
	case TypeTradingo:
		return map[string]keyKind{"client_code": kindString, "mpin": kindString, "totp_secret": kindString, "ip_address": kindString}
	case TypeTradovate:
		return map[string]keyKind{
			"environment": kindString,
			"username":    kindString, "password": kindString, "app_id": kindString, "app_version": kindString,
			"cid": kindString, "sec": kindString, "device_id": kindString,
			"client_id": kindString, "client_secret": kindString, "redirect_uri": kindString,
		}
	case TypeFivepaisa:
		return map[string]keyKind{
			"app_key": kindString, "user_id": kindString, "encryption_key": kindString,
			"client_code": kindString, "pin": kindString, "totp_secret": kindString, "redirect_uri": kindString,
		}
	case TypePocketful:
		return map[string]keyKind{
			"client_id": kindString, "client_secret": kindString, "redirect_uri": kindString,
			"scope": kindString, "fill_client_id": kindBool,
		}
	}
	return nil
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

// acct is an account being built.
type acct struct {
	p       *parser
	a       *Account
	f       field
	present map[string]field // keys given in the table (type and hosts aside)
	unset   map[string]bool  // keys whose value used an unset variable
	bad     map[string]bool  // keys whose value was already reported
}

func (b *acct) keyName(k string) string { return append(slices.Clip(b.f.key), k).String() }

// require reports each key that is absent, or present but empty. A key whose
// value came from an unset variable is not checked: the account is already
// unconfigured, and Missing names the variable.
func (b *acct) require(mode string, keys ...string) {
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

// forbid reports each of keys that is present.
func (b *acct) forbid(why string, keys ...string) {
	for _, k := range keys {
		if c, ok := b.present[k]; ok {
			b.p.add(c, why)
		}
	}
}

// check runs fn on k's value when it is known and non-empty; fn returns a
// problem message or "".
func (b *acct) check(k string, fn func(string) string) {
	v, ok := b.a.Values[k]
	if !ok || v == "" || b.unset[k] {
		return
	}
	if msg := fn(v); msg != "" {
		b.p.add(b.present[k], msg)
		b.bad[k] = true
	}
}

// defaultRedirect sets redirect_uri to the proxy's own callback when the
// table leaves it out (or empty).
func (b *acct) defaultRedirect(listen string) {
	if b.unset["redirect_uri"] || b.bad["redirect_uri"] {
		return
	}
	if b.a.Values["redirect_uri"] == "" {
		b.a.Values["redirect_uri"] = "http://" + listen + "/callback/" + b.a.Name
	}
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
		p.probs.add(line, f.name()+".type", `missing: set type = "tradingo", "tradovate", "fivepaisa" or "pocketful"`)
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
	schema := schemaKeys(typ)
	if schema == nil {
		p.add(tf, fmt.Sprintf(`unknown type %q (use "tradingo", "tradovate", "fivepaisa" or "pocketful")`, typ))
		return nil, brokerInfo{}, false
	}
	a.Type = typ

	b := &acct{p: p, a: a, f: f, present: map[string]field{}, unset: map[string]bool{}, bad: map[string]bool{}}
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
		kind, known := schema[k]
		if !known {
			msg := "unknown key"
			for _, other := range Types() {
				if _, ok := schemaKeys(other)[k]; ok {
					msg = fmt.Sprintf("unknown key for type %q", typ)
					break
				}
			}
			p.add(c, msg)
			continue
		}
		b.present[k] = c
		switch kind {
		case kindBool:
			v, ok := p.boolean(c)
			if !ok {
				b.bad[k] = true
				continue
			}
			a.Values[k] = strconv.FormatBool(v)
		case kindString:
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

	switch typ {
	case TypeTradingo:
		b.require("type tradingo", "client_code", "mpin", "totp_secret")
		b.check("totp_secret", checkTOTPSecret)
		b.check("ip_address", func(v string) string {
			if net.ParseIP(v) == nil {
				return fmt.Sprintf("%q is not an IP address", v)
			}
			return ""
		})
	case TypeTradovate:
		b.require("type tradovate", "environment")
		b.check("environment", func(v string) string {
			if v != "demo" && v != "live" {
				return fmt.Sprintf(`must be "demo" or "live", not %q`, v)
			}
			return ""
		})
		_, password := b.present["password"]
		_, clientID := b.present["client_id"]
		switch {
		case password:
			b.require("tradovate credential login", "username", "password", "app_id", "app_version", "cid", "sec")
			b.forbid(`is for OAuth login, but "password" selects credential login: remove one of them`,
				"client_id", "client_secret", "redirect_uri")
		case clientID:
			b.require("tradovate OAuth login", "client_id", "client_secret")
			b.forbid(`is for credential login (with "password"); OAuth login (with "client_id") does not use it`,
				"username", "app_id", "app_version", "cid", "sec", "device_id")
			b.check("redirect_uri", checkRedirect)
			b.defaultRedirect(listen)
		default:
			p.probs.add(line, f.name(), `needs either "password" (with username, app_id, app_version, cid, sec) for credential login, or "client_id" and "client_secret" for OAuth login`)
		}
	case TypeFivepaisa:
		b.require("type fivepaisa", "app_key", "user_id", "encryption_key")
		_, pin := b.present["pin"]
		_, secret := b.present["totp_secret"]
		if pin || secret {
			b.require("fivepaisa TOTP login", "client_code", "pin", "totp_secret")
			b.check("totp_secret", checkTOTPSecret)
			b.forbid(`is for browser login, but "pin"/"totp_secret" select TOTP login: remove one of them`, "redirect_uri")
		} else {
			b.check("redirect_uri", checkRedirect)
			b.defaultRedirect(listen)
		}
	case TypePocketful:
		b.require("type pocketful", "client_id", "client_secret")
		b.check("redirect_uri", checkRedirect)
		b.defaultRedirect(listen)
		if _, given := b.present["scope"]; !given {
			a.Values["scope"] = DefaultScope
		} else if v := a.Values["scope"]; !b.unset["scope"] && !b.bad["scope"] && strings.TrimSpace(v) == "" {
			p.add(b.present["scope"], "must not be empty (leave it out for "+strconv.Quote(DefaultScope)+")")
		}
		if _, given := b.present["fill_client_id"]; !given {
			a.Values["fill_client_id"] = "true"
		}
	}

	info := p.accountHosts(b, hostsField)
	a.Missing = sortedUnique(a.Missing)
	if len(a.Missing) == 0 {
		a.Missing = nil
	}
	return a, info, true
}

// checkTOTPSecret checks a base32 TOTP secret; it never quotes the value.
func checkTOTPSecret(v string) string {
	if normalizeTOTPSecret(v) == "" {
		return "is not a valid base32 TOTP secret (the value is not shown)"
	}
	return ""
}

// normalizeTOTPSecret strips spaces and padding and upper-cases a base32
// secret; it returns "" when the result is not valid base32.
func normalizeTOTPSecret(v string) string {
	s := strings.ToUpper(strings.Join(strings.Fields(v), ""))
	s = strings.TrimRight(s, "=")
	if s == "" {
		return ""
	}
	if _, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s); err != nil {
		return ""
	}
	return s
}

func checkRedirect(v string) string {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("%q must be an absolute http:// or https:// URL", v)
	}
	return ""
}

// accountHosts sets a.Hosts from the "hosts" key or the type's defaults.
func (p *parser) accountHosts(b *acct, hf *field) brokerInfo {
	a := b.a
	// Hand the brokers the secret in the form the TOTP libraries expect.
	if v, ok := a.Values["totp_secret"]; ok && !b.bad["totp_secret"] && !b.unset["totp_secret"] {
		if n := normalizeTOTPSecret(v); n != "" {
			a.Values["totp_secret"] = n
		}
	}
	info := brokerInfo{key: b.f.name(), line: a.Line}
	if hf != nil {
		info = brokerInfo{key: hf.name(), line: p.line(*hf), explicit: true}
		a.Hosts = p.hostList(*hf, a)
	}
	if len(a.Hosts) == 0 {
		a.Hosts = DefaultHosts(a.Type, a.Values)
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
