package auth

import (
	"encoding/base32"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Kind describes one broker package to the rest of the program: what its
// accounts are called in rules.toml, which keys they hold and how those are
// checked, which hosts and CA domains it needs, how to build its Broker and
// which requests it forwards untouched. Each broker package exports one Kind
// value; cmd/authproxy lists them, and config and the proxy learn about
// brokers only from that list.
type Kind struct {
	// Type is the account's type in rules.toml ("tradingo").
	Type string
	// Display is the broker's name for people ("5paisa").
	Display string
	// Domains are the registrable domains the local CA always permits, so
	// adding an account never needs a new CA.
	Domains []string
	// Hosts returns the hosts an account claims when its table has no
	// "hosts"; values are the account's values (a Tradovate account's hosts
	// depend on its environment).
	Hosts func(values map[string]string) []string
	// Keys are the keys an account table may hold besides type, hosts and
	// max_orders_per_second.
	Keys []Key
	// Check validates the combination of keys in one account table through
	// c (which config implements); nil when each key stands alone.
	Check func(c Checker)
	// New builds the Broker of a configured account.
	New func(s Settings, d Deps) (Broker, error)
	// BrowserLogin reports, from an account's values, whether it logs in
	// only through a browser (for `authproxy doctor` when the proxy is not
	// running); nil when it never does.
	BrowserLogin func(values map[string]string) bool
	// Bypass recognises the broker's own login endpoints without any
	// credentials, so clients can still log in themselves through the proxy
	// while the account is unconfigured.
	Bypass func(*http.Request) bool
	// Orders is the broker's order declaration (its orders.go).
	Orders Routes
}

// Key is one key of an account table.
type Key struct {
	Name   string
	Secret bool    // never printed (config problems, logs)
	Kind   KeyKind // how the value is written in TOML
	// Check returns a problem with a known, non-empty value, or ""; nil
	// when any value will do.
	Check func(v string) string
}

// KeyKind is how a key's value is written in TOML.
type KeyKind int

// Key kinds.
const (
	KeyString KeyKind = iota // a TOML string (${VAR}s expanded)
	KeyBool                  // a TOML boolean (read as "true" or "false")
)

// Checker is what a Kind's Check sees of the account table being read; the
// problems it records carry the table's file and line.
type Checker interface {
	// Given reports whether the table holds key.
	Given(key string) bool
	// Known reports whether key's value is given and usable: not built
	// from an unset variable, not already reported.
	Known(key string) bool
	// Value is key's value ("" when absent).
	Value(key string) string
	// Require reports each key that is absent ("missing (required for
	// mode)") or given but empty.
	Require(mode string, keys ...string)
	// Forbid reports each of keys that is given, with why.
	Forbid(why string, keys ...string)
	// Check runs fn on key's value when it is known and non-empty; fn
	// returns a problem message or "".
	Check(key string, fn func(string) string)
	// Default sets key to value when the table does not give it.
	Default(key, value string)
	// DefaultRedirect sets redirect_uri to the proxy's own callback for
	// the account when the table leaves it out (or empty).
	DefaultRedirect()
	// Problem records msg about key, or about the whole table when key is "".
	Problem(key, msg string)
}

// Settings are a configured account's checked values, as a Kind's New
// receives them.
type Settings struct {
	Account string            // the account's name
	Values  map[string]string // by key; bools as "true"/"false"
}

// Get returns the value of key ("" when absent).
func (s Settings) Get(key string) string { return s.Values[key] }

// Secret returns the value of key as a Secret.
func (s Settings) Secret(key string) Secret { return Secret(s.Values[key]) }

// Has reports whether the account's table gave key (or config defaulted it).
func (s Settings) Has(key string) bool {
	_, ok := s.Values[key]
	return ok
}

// Bool returns a boolean key's value, def when absent.
func (s Settings) Bool(key string, def bool) (bool, error) {
	v, ok := s.Values[key]
	if !ok || v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return def, fmt.Errorf("account %q: %s %q is not true or false", s.Account, key, v)
	}
	return b, nil
}

// Deps are what a Kind's New gets besides the account's values.
type Deps struct {
	Client   *HTTPClient
	Now      func() time.Time
	Logger   *slog.Logger
	StateDir string // for files a broker keeps across runs
}

// CheckTOTPSecret is a Key.Check for a base32 TOTP secret; it never quotes
// the value.
func CheckTOTPSecret(v string) string {
	if NormalizeTOTPSecret(v) == "" {
		return "is not a valid base32 TOTP secret (the value is not shown)"
	}
	return ""
}

// NormalizeTOTPSecret strips spaces and padding and upper-cases a base32
// secret; it returns "" when the result is not valid base32.
func NormalizeTOTPSecret(v string) string {
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

// CheckRedirectURI is a Key.Check for a redirect URI: an absolute http or
// https URL.
func CheckRedirectURI(v string) string {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("%q must be an absolute http:// or https:// URL", v)
	}
	return ""
}

// Built returns a constructor's result as a Broker, with a nil Broker (not a
// typed nil) on error.
func Built[B Broker](b B, err error) (Broker, error) {
	if err != nil {
		return nil, err
	}
	return b, nil
}
