package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/authproxy/authproxy/auth"
)

// Defaults for keys that are left out.
const (
	DefaultListen        = "127.0.0.1:8899"
	DefaultTimeout       = 30 * time.Second
	DefaultMaxBody       = 1 << 20
	DefaultMaxTunnels    = 1024
	DefaultIdleTimeout   = 5 * time.Minute
	DefaultRefreshMargin = 15 * time.Minute
)

// Load reads the config file at path, expands ${VAR}s with lookupEnv
// (os.LookupEnv in production), applies defaults and validates the result.
// On failure the error is an errors.Join of *Problem values, one per problem
// found (see [Problems]); a file that cannot be read gives one Problem that
// wraps the cause (errors.Is(err, fs.ErrNotExist) works).
func (s Schema) Load(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		cause := err
		var pe *fs.PathError
		if errors.As(err, &pe) {
			cause = pe.Err
		}
		return nil, errors.Join(&Problem{File: path, Msg: fmt.Sprintf("cannot read the config file: %v", cause), cause: err})
	}
	return s.Parse(path, data, lookupEnv)
}

// Parse is Load on data already read from path (path is used in Problems and
// to resolve relative paths in the file).
func (s Schema) Parse(path string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	p := &parser{schema: s, probs: problems{file: path}, lookupEnv: lookupEnv}
	var root map[string]toml.Primitive
	md, err := toml.Decode(string(data), &root)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			msg := "syntax error: " + pe.Message
			if s.IsSecretKey(pe.LastKey) {
				// The parser's message may quote the broken value.
				msg = "syntax error in the value of " + pe.LastKey + " (not shown: it is a secret)"
			}
			p.probs.add(pe.Position.Line, "", msg)
		} else {
			p.probs.add(0, "", err.Error())
		}
		return nil, p.probs.err()
	}
	p.md = md
	cfg := p.config(path, root)
	if err := p.probs.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// parser walks one decoded document. Every value is reached through a
// toml.Primitive, so the library's own key positions give exact lines.
type parser struct {
	schema    Schema
	md        toml.MetaData
	probs     problems
	lookupEnv func(string) (string, bool)
}

// field is one key of a table: its full path and its undecoded value.
type field struct {
	key  toml.Key
	prim toml.Primitive
}

func (f field) name() string { return f.key.String() }

// child returns the field for sub-key k below f.
func (f field) child(k string, prim toml.Primitive) field {
	return field{key: append(slices.Clip(f.key), k), prim: prim}
}

// lineProbe makes the decoder fail on purpose: the toml.ParseError it then
// returns carries the position the parser recorded for the key.
type lineProbe struct{}

func (lineProbe) UnmarshalTOML(any) error { return errors.New("line probe") }

// line returns the 1-based line of f's key. A table the parser recorded no
// position for (one implied by a dotted key or a [a.b.c] header) gets the
// first line of its contents; 0 when nothing has a position.
func (p *parser) line(f field) int {
	err := p.md.PrimitiveDecode(f.prim, lineProbe{})
	var pe toml.ParseError
	if errors.As(err, &pe) && pe.Position.Line > 0 {
		return pe.Position.Line
	}
	m, ok := p.tableQuiet(f)
	if !ok {
		return 0
	}
	first := 0
	for k, prim := range m {
		if l := p.line(f.child(k, prim)); l > 0 && (first == 0 || l < first) {
			first = l
		}
	}
	return first
}

// value decodes f into a plain Go value: string, int64, float64, bool,
// time.Time, []any, []map[string]any or map[string]any.
func (p *parser) value(f field) any {
	var v any
	if err := p.md.PrimitiveDecode(f.prim, &v); err != nil {
		p.add(f, fmt.Sprintf("cannot decode: %v", err))
		return nil
	}
	return v
}

func (p *parser) add(f field, msg string) {
	if p.probs.full() {
		p.probs.dropped++
		return
	}
	p.probs.add(p.line(f), f.name(), msg)
}

// table decodes f as a table, reporting a Problem (and returning false) when
// it is anything else.
func (p *parser) table(f field, what string) (map[string]toml.Primitive, bool) {
	if _, ok := p.value(f).(map[string]any); !ok {
		p.add(f, fmt.Sprintf("must be %s, not %s", what, typeName(p.value(f))))
		return nil, false
	}
	var m map[string]toml.Primitive
	if err := p.md.PrimitiveDecode(f.prim, &m); err != nil {
		p.add(f, fmt.Sprintf("cannot decode: %v", err))
		return nil, false
	}
	return m, true
}

// fields returns m's entries sorted by key. (Problems are sorted by line
// in the end; finding a line costs a pass over the file, so it is done only
// for keys that have a problem.)
func (p *parser) fields(parent field, m map[string]toml.Primitive) []field {
	out := make([]field, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, parent.child(k, m[k]))
	}
	return out
}

// rawString returns f's value if it is a string, with ${VAR}s expanded;
// missing holds the variables that were unset or empty. ok is false (and a
// Problem reported) when f is not a string (typeMsg, if set, is then the
// message) or holds a malformed ${...}.
func (p *parser) rawString(f field, typeMsg string) (s string, missing []string, ok bool) {
	v := p.value(f)
	raw, isStr := v.(string)
	if !isStr {
		if typeMsg == "" {
			typeMsg = "must be a string, not " + typeName(v)
		}
		p.add(f, typeMsg)
		return "", nil, false
	}
	s, missing, err := expand(raw, p.lookupEnv)
	if err != nil {
		p.add(f, err.Error())
		return "", nil, false
	}
	return s, missing, true
}

// strOrList reads a string or a non-empty array of strings.
func (p *parser) strOrList(f field) ([]string, bool) {
	v := p.value(f)
	if _, isStr := v.(string); isStr {
		s, ok := p.str(f)
		if !ok {
			return nil, false
		}
		return []string{s}, true
	}
	arr, isArr := v.([]any)
	if !isArr {
		p.add(f, fmt.Sprintf("must be an account name or an array of account names, not %s", typeName(v)))
		return nil, false
	}
	if len(arr) == 0 {
		p.add(f, "must list at least one account (leave the user out to allow none)")
		return nil, false
	}
	var out []string
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			p.add(f, fmt.Sprintf("element %d must be a string, not %s", i+1, typeName(e)))
			return nil, false
		}
		s, missing, err := expand(s, p.lookupEnv)
		if err != nil || len(missing) > 0 {
			if err == nil {
				err = errors.New(missingMsg(missing))
			}
			p.add(f, fmt.Sprintf("element %d: %v", i+1, err))
			return nil, false
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, true
}

// str is rawString where an unset variable is a Problem.
func (p *parser) str(f field) (string, bool) {
	s, missing, ok := p.rawString(f, "")
	if !ok {
		return "", false
	}
	if len(missing) > 0 {
		p.add(f, missingMsg(missing))
		return "", false
	}
	return s, true
}

func missingMsg(vars []string) string {
	vars = sortedUnique(vars)
	if len(vars) == 1 {
		return fmt.Sprintf("environment variable %s is not set (or is empty)", vars[0])
	}
	return fmt.Sprintf("environment variables %s are not set (or are empty)", strings.Join(vars, ", "))
}

func sortedUnique(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

func (p *parser) boolean(f field) (bool, bool) {
	v := p.value(f)
	b, ok := v.(bool)
	if !ok {
		p.add(f, fmt.Sprintf("must be a boolean (true or false), not %s", typeName(v)))
	}
	return b, ok
}

// duration reads a Go duration string such as "30s"; min is the smallest
// value allowed.
func (p *parser) duration(f field, min time.Duration) (time.Duration, bool) {
	v := p.value(f)
	raw, isStr := v.(string)
	if !isStr {
		p.add(f, fmt.Sprintf(`must be a duration string such as "30s" or "5m", not %s`, typeName(v)))
		return 0, false
	}
	s, ok := p.str(f)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		p.add(f, fmt.Sprintf(`%q is not a duration (write e.g. "30s", "5m" or "1h30m")`, raw))
		return 0, false
	}
	if d < min {
		if min > 0 {
			p.add(f, fmt.Sprintf("%q must be positive", raw))
		} else {
			p.add(f, fmt.Sprintf("%q must not be negative", raw))
		}
		return 0, false
	}
	return d, true
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date/time"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("a %T", v)
}

// config walks the document root.
func (p *parser) config(path string, root map[string]toml.Primitive) *Config {
	cfg := &Config{
		Path:        path,
		Listen:      DefaultListen,
		Passthrough: true,
		Upstream:    Upstream{Resolve: map[string]string{}, Timeout: DefaultTimeout},
		Store:       Store{Kind: "file"},
		Limits: Limits{
			MaxBody:      DefaultMaxBody,
			MaxTunnels:   DefaultMaxTunnels,
			IdleTimeout:  DefaultIdleTimeout,
			RefreshAhead: DefaultRefreshMargin,
		},
	}
	top := map[string]field{}
	for _, f := range p.fields(field{}, root) {
		switch k := f.key[0]; k {
		case "listen", "state_dir", "passthrough", "upstream", "proxy_auth", "store", "limits", "brokers":
			top[k] = f
		default:
			p.add(f, "unknown key")
		}
	}
	base := p.baseDir(path)

	listenOK := false
	if f, ok := top["listen"]; ok {
		if s, ok := p.str(f); ok {
			cfg.Listen = s
			listenOK = p.checkListen(f, s)
		}
	} else {
		listenOK = true
	}
	if f, ok := top["state_dir"]; ok {
		if s, ok := p.str(f); ok {
			if s == "" {
				p.add(f, "must not be empty (leave it out for the default)")
			} else if dir, err := p.absPath(s, base); err != nil {
				p.add(f, err.Error())
			} else {
				cfg.StateDir = dir
			}
		}
	} else if dir, err := p.defaultStateDir(); err != nil {
		p.probs.add(0, "state_dir", err.Error())
	} else {
		cfg.StateDir = dir
	}
	if f, ok := top["passthrough"]; ok {
		if b, ok := p.boolean(f); ok {
			cfg.Passthrough = b
		}
	}
	if f, ok := top["upstream"]; ok {
		p.upstream(f, base, &cfg.Upstream)
	}
	if f, ok := top["proxy_auth"]; ok {
		cfg.ProxyAuth = p.proxyAuth(f)
	}
	if f, ok := top["store"]; ok {
		p.store(f, &cfg.Store)
	}
	if f, ok := top["limits"]; ok {
		p.limits(f, &cfg.Limits)
	}
	var brokerLines map[*Account]brokerInfo
	if f, ok := top["brokers"]; ok {
		cfg.Accounts, brokerLines = p.brokers(f, cfg.Listen)
	}

	// Cross-table checks.
	if listenOK && cfg.ProxyAuth == nil && !IsLoopbackListen(cfg.Listen) {
		f := top["listen"]
		p.add(f, fmt.Sprintf("%q is not a loopback address: add [proxy_auth] users so that only they can use the proxy, or listen on 127.0.0.1", cfg.Listen))
	}
	if cfg.ProxyAuth != nil {
		p.checkProxyAccounts(top["proxy_auth"], cfg)
	} else {
		p.checkDuplicateHosts(cfg.Accounts, brokerLines)
	}
	return cfg
}

// baseDir is the directory relative paths in the file are resolved against:
// the config file's own directory.
func (p *parser) baseDir(path string) string {
	if path == "" {
		return "."
	}
	return filepath.Dir(path)
}

func (p *parser) home() (string, error) {
	h, _ := p.lookupEnv("HOME")
	return homeDir(h)
}

// absPath expands a leading "~" and makes s absolute (relative to base).
func (p *parser) absPath(s, base string) (string, error) {
	switch {
	case s == "~" || strings.HasPrefix(s, "~/"):
		h, err := p.home()
		if err != nil {
			return "", err
		}
		s = filepath.Join(h, s[1:])
	case strings.HasPrefix(s, "~"):
		return "", errors.New(`only "~" and "~/..." are expanded (not "~user")`)
	case !filepath.IsAbs(s):
		s = filepath.Join(base, s)
	}
	abs, err := filepath.Abs(s)
	if err != nil {
		return "", fmt.Errorf("cannot make the path absolute: %w", err)
	}
	return abs, nil
}

func (p *parser) defaultStateDir() (string, error) {
	if x, ok := p.lookupEnv("XDG_STATE_HOME"); ok && filepath.IsAbs(x) {
		return filepath.Join(x, "authproxy"), nil
	}
	h, err := p.home()
	if err != nil {
		return "", fmt.Errorf("no default: %w; set state_dir", err)
	}
	abs, err := filepath.Abs(filepath.Join(h, ".local", "state", "authproxy"))
	if err != nil {
		return "", fmt.Errorf("no default: %w; set state_dir", err)
	}
	return abs, nil
}

// checkListen validates the listen address's form (loopback is checked
// later, once [proxy_auth] is known).
func (p *parser) checkListen(f field, s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		p.add(f, fmt.Sprintf(`%q must be host:port, e.g. "127.0.0.1:8899"`, s))
		return false
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		p.add(f, fmt.Sprintf("%q: port must be a number from 0 to 65535", s))
		return false
	}
	if strings.ContainsAny(host, "/ ") {
		p.add(f, fmt.Sprintf("%q: not a valid host", s))
		return false
	}
	return true
}

// IsLoopbackListen reports whether a listen address only accepts local
// connections: 127.0.0.0/8, ::1 or localhost.
func IsLoopbackListen(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (p *parser) upstream(f field, base string, up *Upstream) {
	m, ok := p.table(f, "a table")
	if !ok {
		return
	}
	for _, c := range p.fields(f, m) {
		switch c.key[len(c.key)-1] {
		case "ca_file":
			s, ok := p.str(c)
			if !ok || s == "" {
				continue
			}
			if abs, err := p.absPath(s, base); err != nil {
				p.add(c, err.Error())
			} else {
				up.CAFile = abs
			}
		case "resolve":
			p.resolve(c, up.Resolve)
		case "timeout":
			if d, ok := p.duration(c, time.Nanosecond); ok {
				up.Timeout = d
			}
		case "proxy":
			if s, ok := p.str(c); ok && s != "" {
				if msg := egressProblem(s); msg != "" {
					p.add(c, msg)
				} else {
					up.Proxy = s
				}
			}
		default:
			p.add(c, "unknown key")
		}
	}
}

func (p *parser) resolve(f field, out map[string]string) {
	m, ok := p.table(f, `a table of "host:port" = "ip:port"`)
	if !ok {
		return
	}
	seen := map[string]field{}
	for _, c := range p.fields(f, m) {
		k := c.key[len(c.key)-1]
		host, port, err := net.SplitHostPort(k)
		if err != nil || host == "" || !validPort(port) {
			p.add(c, `the key must be "host:port" with a port from 1 to 65535`)
			continue
		}
		key := net.JoinHostPort(strings.TrimSuffix(strings.ToLower(host), "."), port)
		v, ok := p.str(c)
		if !ok {
			continue
		}
		th, tp, err := net.SplitHostPort(v)
		if err != nil || th == "" || !validPort(tp) {
			p.add(c, fmt.Sprintf(`%q must be "ip:port" (or "host:port") with a port from 1 to 65535`, v))
			continue
		}
		if first, dup := seen[key]; dup {
			later := c
			if p.line(first) > p.line(c) {
				later = first
			}
			p.add(later, fmt.Sprintf("%s is given twice (keys ignore case)", key))
			continue
		}
		seen[key] = c
		out[key] = v
	}
}

func validPort(s string) bool {
	n, err := strconv.ParseUint(s, 10, 16)
	return err == nil && n > 0
}

func (p *parser) proxyAuth(f field) *ProxyAuth {
	pa := &ProxyAuth{Users: map[string]auth.Secret{}}
	m, ok := p.table(f, "a table")
	if !ok {
		return pa
	}
	usersSeen := false
	for _, c := range p.fields(f, m) {
		switch c.key[len(c.key)-1] {
		case "users":
			usersSeen = true
			um, ok := p.table(c, "a table of user = password")
			if !ok {
				continue
			}
			for _, u := range p.fields(c, um) {
				name := u.key[len(u.key)-1]
				if name == "" || strings.ContainsAny(name, ":\r\n") {
					p.add(u, `user names must be non-empty and hold no ":"`)
					continue
				}
				pw, ok := p.str(u)
				if !ok {
					continue
				}
				if pw == "" {
					p.add(u, "the password must not be empty")
					continue
				}
				pa.Users[name] = auth.Secret(pw)
			}
			if len(um) == 0 {
				p.add(c, "needs at least one user")
			}
		case "accounts":
			am, ok := p.table(c, "a table of user = account name, or user = [account names]")
			if !ok {
				continue
			}
			// With accounts present it is an allow-list: an unlisted user
			// may use no account at all (non-nil, empty map included).
			pa.Accounts = map[string][]string{}
			for _, a := range p.fields(c, am) {
				if names, ok := p.strOrList(a); ok {
					pa.Accounts[a.key[len(a.key)-1]] = names
				}
			}
		case "allow_private_networks":
			if b, ok := p.boolean(c); ok {
				pa.AllowPrivateNetworks = b
			}
		default:
			p.add(c, "unknown key")
		}
	}
	if !usersSeen {
		p.add(f, "needs users = { NAME = \"${PASSWORD_VAR}\" }")
	}
	return pa
}

// checkProxyAccounts checks [proxy_auth] accounts against users and brokers.
func (p *parser) checkProxyAccounts(f field, cfg *Config) {
	m, ok := p.tableQuiet(f)
	if !ok {
		return
	}
	prim, ok := m["accounts"]
	if !ok {
		return
	}
	af := f.child("accounts", prim)
	am, ok := p.tableQuiet(af)
	if !ok {
		return
	}
	for _, c := range p.fields(af, am) {
		user := c.key[len(c.key)-1]
		names, ok := cfg.ProxyAuth.Accounts[user]
		if !ok {
			continue // already reported
		}
		if _, known := cfg.ProxyAuth.Users[user]; !known && len(cfg.ProxyAuth.Users) > 0 {
			p.add(c, fmt.Sprintf("user %q is not in proxy_auth.users", user))
		}
		for _, name := range names {
			if cfg.Account(name) == nil {
				p.add(c, fmt.Sprintf("there is no account [brokers.%s]", toml.Key{name}))
			}
		}
	}
}

// tableQuiet is table without reporting (the problem was reported before).
func (p *parser) tableQuiet(f field) (map[string]toml.Primitive, bool) {
	if _, ok := p.value(f).(map[string]any); !ok {
		return nil, false
	}
	var m map[string]toml.Primitive
	if err := p.md.PrimitiveDecode(f.prim, &m); err != nil {
		return nil, false
	}
	return m, true
}

func (p *parser) store(f field, st *Store) {
	m, ok := p.table(f, "a table")
	if !ok {
		return
	}
	keys := map[string]field{}
	for _, c := range p.fields(f, m) {
		switch k := c.key[len(c.key)-1]; k {
		case "kind", "url", "key":
			keys[k] = c
		default:
			p.add(c, "unknown key")
		}
	}
	if c, ok := keys["kind"]; ok {
		if s, ok := p.str(c); ok {
			switch s {
			case "file", "redis":
				st.Kind = s
			default:
				p.add(c, fmt.Sprintf(`must be "file" or "redis", not %q`, s))
				st.Kind = ""
			}
		} else {
			st.Kind = ""
		}
	}
	redis := st.Kind == "redis"
	// url and key matter only with redis: an unset variable in them is a
	// problem only then, but a value that is set is always checked.
	lenient := func(c field) (string, bool) {
		s, missing, ok := p.rawString(c, "")
		if !ok {
			return "", false
		}
		if len(missing) > 0 {
			if redis {
				p.add(c, missingMsg(missing))
			}
			return "", false
		}
		return s, true
	}
	urlOK, keyOK := false, false
	if c, ok := keys["url"]; ok {
		if s, ok := lenient(c); ok && s != "" {
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
				p.add(c, `must be a redis://, rediss:// or unix:// URL`)
			} else {
				st.URL = s
				urlOK = true
			}
		}
	}
	if c, ok := keys["key"]; ok {
		if s, ok := lenient(c); ok && s != "" {
			if !validStoreKey(s) {
				p.add(c, `must be 32 bytes in base64, e.g. from "openssl rand -base64 32" (the value is not shown)`)
			} else {
				st.Key = auth.Secret(s)
				keyOK = true
			}
		}
	}
	if redis {
		if _, ok := keys["url"]; !ok {
			p.probs.add(p.line(f), f.name()+".url", `required when kind = "redis"`)
		} else if c := keys["url"]; !urlOK && !p.reportedAt(c) {
			p.add(c, `must not be empty when kind = "redis"`)
		}
		if _, ok := keys["key"]; !ok {
			p.probs.add(p.line(f), f.name()+".key", `required when kind = "redis" (32 bytes in base64; tokens are encrypted with it)`)
		} else if c := keys["key"]; !keyOK && !p.reportedAt(c) {
			p.add(c, `must not be empty when kind = "redis"`)
		}
	}
}

// reportedAt reports whether a Problem was already recorded for f's key.
func (p *parser) reportedAt(f field) bool {
	name := f.name()
	for _, pr := range p.probs.list {
		if pr.Key == name {
			return true
		}
	}
	return false
}

// validStoreKey reports whether s is base64 (standard or URL alphabet,
// padded or not) for exactly 32 bytes.
func validStoreKey(s string) bool {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return len(b) == 32
		}
	}
	return false
}

func (p *parser) limits(f field, l *Limits) {
	m, ok := p.table(f, "a table")
	if !ok {
		return
	}
	for _, c := range p.fields(f, m) {
		switch c.key[len(c.key)-1] {
		case "max_body":
			if n, ok := p.size(c); ok {
				l.MaxBody = n
			}
		case "max_tunnels":
			v := p.value(c)
			n, isInt := v.(int64)
			switch {
			case !isInt:
				p.add(c, fmt.Sprintf("must be an integer, not %s", typeName(v)))
			case n < 1 || n > math.MaxInt32:
				p.add(c, fmt.Sprintf("%d must be from 1 to %d", n, math.MaxInt32))
			default:
				l.MaxTunnels = int(n)
			}
		case "idle_timeout":
			if d, ok := p.duration(c, time.Nanosecond); ok {
				l.IdleTimeout = d
			}
		case "refresh_margin":
			if d, ok := p.duration(c, 0); ok {
				l.RefreshAhead = d
			}
		default:
			p.add(c, "unknown key")
		}
	}
}

// size reads a byte count: an integer, or a string such as "1MiB", "512 KB"
// or "1048576".
func (p *parser) size(f field) (int64, bool) {
	v := p.value(f)
	var n int64
	switch x := v.(type) {
	case int64:
		n = x
	case string:
		s, ok := p.str(f)
		if !ok {
			return 0, false
		}
		var err error
		if n, err = parseSize(s); err != nil {
			p.add(f, fmt.Sprintf("%q: %v", x, err))
			return 0, false
		}
	default:
		p.add(f, fmt.Sprintf(`must be a size such as "1MiB" or a number of bytes, not %s`, typeName(v)))
		return 0, false
	}
	if n < 1 {
		p.add(f, "must be at least 1 byte")
		return 0, false
	}
	return n, true
}

// parseSize parses "<digits>[ ]<unit>" with unit B, KB, MB, GB (powers of
// 1000) or KiB, MiB, GiB (powers of 1024), case-insensitive.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, errors.New(`not a size (write e.g. "1MiB", "512KiB" or a number of bytes)`)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, errors.New("too large")
	}
	var mult int64
	switch strings.ToLower(strings.TrimSpace(s[i:])) {
	case "", "b":
		mult = 1
	case "kb":
		mult = 1000
	case "kib":
		mult = 1 << 10
	case "mb":
		mult = 1000 * 1000
	case "mib":
		mult = 1 << 20
	case "gb":
		mult = 1000 * 1000 * 1000
	case "gib":
		mult = 1 << 30
	default:
		return 0, errors.New(`unknown unit (use B, KB, KiB, MB, MiB, GB or GiB)`)
	}
	if n > math.MaxInt64/mult {
		return 0, errors.New("too large")
	}
	return n * mult, nil
}
