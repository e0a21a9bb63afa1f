// Package config reads rules.toml (the keys are fixed in DESIGN.md): it
// expands ${VAR}s, rejects unknown keys and wrong types with FILE:LINE
// errors, applies each broker type's defaults and validates the result.
// It knows the schema of every broker type but nothing of how they log in.
package config

import (
	"time"

	"github.com/authproxy/authproxy/auth"
)

// Config is a loaded, validated rules.toml.
type Config struct {
	Path        string // the file it came from ("" for built-in defaults)
	Listen      string // host:port, default "127.0.0.1:8899"
	StateDir    string // absolute; "~" expanded; default $XDG_STATE_HOME/authproxy
	Passthrough bool   // default true

	Upstream  Upstream
	ProxyAuth *ProxyAuth // nil when the table is absent
	Store     Store
	Limits    Limits

	Accounts []*Account // sorted by Name
}

// Upstream is the [upstream] table.
type Upstream struct {
	CAFile  string            // extra PEM roots for broker TLS ("" none)
	Resolve map[string]string // lower-cased "host:port" -> "ip:port"
	Timeout time.Duration     // default 30s
	// Proxy is the egress for all broker traffic: "http://[user:pass@]host:port"
	// (CONNECT) or "socks5://[user:pass@]host:port"; "" dials directly. Its
	// password is a secret.
	Proxy string
}

// ProxyAuth is the [proxy_auth] table.
type ProxyAuth struct {
	Users map[string]auth.Secret // user name -> password
	// Accounts is the optional allow-list (key "accounts"): a proxy user
	// may use only the accounts listed for them; when two of them share a
	// host, the first listed is selected. Nil when the key is absent; with
	// the key present, a user not in the map may use no account.
	Accounts map[string][]string
	// AllowPrivateNetworks lets [proxy_auth] users tunnel to loopback and
	// private addresses (key "allow_private_networks", default false).
	AllowPrivateNetworks bool
}

// Store is the [store] table.
type Store struct {
	Kind string      // "file" (default) | "redis"
	URL  string      // with redis
	Key  auth.Secret // with redis: 32 bytes, base64
}

// Limits is the optional [limits] table (keys beyond DESIGN.md's fixed set).
type Limits struct {
	MaxBody      int64         // request body cap in bytes, default 1 MiB ("max_body")
	MaxTunnels   int           // open CONNECT tunnels, default 1024 ("max_tunnels")
	IdleTimeout  time.Duration // idle client/tunnel connections, default 5m ("idle_timeout")
	RefreshAhead time.Duration // refresh margin before expiry, default 15m ("refresh_margin")
}

// Account is one [brokers.NAME] table.
type Account struct {
	Name  string
	Type  string   // one of the Schema's kinds (auth.Kind.Type)
	Hosts []string // lower-case; the type's defaults unless "hosts" was given
	Line  int      // line of the [brokers.NAME] header

	// Values holds every key of the table but type and hosts, with ${VAR}s
	// expanded. Keys that DESIGN.md lists as secrets are still plain strings
	// here: wrap them in auth.Secret when building a broker.
	Values map[string]string
	// Missing lists the environment variables that were unset; a non-empty
	// Missing makes the account unconfigured (the proxy still starts).
	Missing []string
	// MaxOrdersPerSecond is the order guard's rate limit (0: off); see
	// DESIGN.md "The order guard".
	MaxOrdersPerSecond int
}

// Configured reports whether every ${VAR} of the account was set.
func (a *Account) Configured() bool { return len(a.Missing) == 0 }

// Get returns Values[key] ("" when absent).
func (a *Account) Get(key string) string { return a.Values[key] }

// Secret returns Values[key] as an auth.Secret.
func (a *Account) Secret(key string) auth.Secret { return auth.Secret(a.Values[key]) }
