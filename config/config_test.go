package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
)

// env returns a lookupEnv over the given NAME, VALUE pairs.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

const testHome = "/home/test"

// A valid base32 secret and store key for tests.
const (
	goodTOTP     = "JBSWY3DPEHPK3PXP"
	goodStoreKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // "0123456789abcdef0123456789abcdef"
)

func mustParse(t *testing.T, src string, lookup func(string) (string, bool)) *Config {
	t.Helper()
	cfg, err := Parse("test.toml", []byte(src), lookup)
	if err != nil {
		t.Fatalf("Parse: unexpected error:\n%v", err)
	}
	return cfg
}

func TestDefaults(t *testing.T) {
	cfg := mustParse(t, "", env("HOME", testHome))
	if cfg.Listen != "127.0.0.1:8899" {
		t.Errorf("Listen = %q, want 127.0.0.1:8899", cfg.Listen)
	}
	if want := filepath.Join(testHome, ".local/state/authproxy"); cfg.StateDir != want {
		t.Errorf("StateDir = %q, want %q", cfg.StateDir, want)
	}
	if !cfg.Passthrough {
		t.Error("Passthrough = false, want true")
	}
	if cfg.Upstream.Timeout != 30*time.Second || cfg.Upstream.CAFile != "" || cfg.Upstream.Resolve == nil {
		t.Errorf("Upstream = %+v, want 30s timeout, no CA file, empty resolve map", cfg.Upstream)
	}
	if cfg.ProxyAuth != nil {
		t.Errorf("ProxyAuth = %+v, want nil", cfg.ProxyAuth)
	}
	if cfg.Store.Kind != "file" {
		t.Errorf("Store.Kind = %q, want file", cfg.Store.Kind)
	}
	want := Limits{MaxBody: 1 << 20, MaxTunnels: 1024, IdleTimeout: 5 * time.Minute, RefreshAhead: 15 * time.Minute}
	if cfg.Limits != want {
		t.Errorf("Limits = %+v, want %+v", cfg.Limits, want)
	}
	if len(cfg.Accounts) != 0 {
		t.Errorf("Accounts = %v, want none", cfg.Accounts)
	}

	cfg = mustParse(t, "", env("HOME", testHome, "XDG_STATE_HOME", "/xdg/state"))
	if cfg.StateDir != "/xdg/state/authproxy" {
		t.Errorf("with XDG_STATE_HOME: StateDir = %q, want /xdg/state/authproxy", cfg.StateDir)
	}
	cfg = mustParse(t, "", env("HOME", testHome, "XDG_STATE_HOME", "relative/state"))
	if want := filepath.Join(testHome, ".local/state/authproxy"); cfg.StateDir != want {
		t.Errorf("with a relative XDG_STATE_HOME: StateDir = %q, want %q", cfg.StateDir, want)
	}
}

func TestTopLevel(t *testing.T) {
	src := `
listen = "localhost:0"
state_dir = "~/state"
passthrough = false
[upstream]
ca_file = "certs/ca.pem"
resolve = { "OpenAPI.5paisa.com.:443" = "127.0.0.1:9443" }
timeout = "2s"
[store]
kind = "redis"
url = "redis://127.0.0.1:6379/0"
key = "${STORE_KEY}"
[limits]
max_body = "512 KiB"
max_tunnels = 7
idle_timeout = "1m"
refresh_margin = "0s"
`
	cfg, err := Parse("/etc/authproxy/rules.toml", []byte(src), env("HOME", testHome, "STORE_KEY", goodStoreKey))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "localhost:0" || cfg.Passthrough {
		t.Errorf("Listen, Passthrough = %q, %v; want localhost:0, false", cfg.Listen, cfg.Passthrough)
	}
	if cfg.StateDir != testHome+"/state" {
		t.Errorf("StateDir = %q, want %s/state", cfg.StateDir, testHome)
	}
	if cfg.Upstream.CAFile != "/etc/authproxy/certs/ca.pem" {
		t.Errorf("CAFile = %q, want it relative to the config file", cfg.Upstream.CAFile)
	}
	if want := map[string]string{"openapi.5paisa.com:443": "127.0.0.1:9443"}; !maps.Equal(cfg.Upstream.Resolve, want) {
		t.Errorf("Resolve = %v, want %v", cfg.Upstream.Resolve, want)
	}
	if cfg.Upstream.Timeout != 2*time.Second {
		t.Errorf("Timeout = %v, want 2s", cfg.Upstream.Timeout)
	}
	if cfg.Store.Kind != "redis" || cfg.Store.URL != "redis://127.0.0.1:6379/0" || cfg.Store.Key.Reveal() != goodStoreKey {
		t.Errorf("Store = %+v (key %q)", cfg.Store, cfg.Store.Key.Reveal())
	}
	want := Limits{MaxBody: 512 << 10, MaxTunnels: 7, IdleTimeout: time.Minute, RefreshAhead: 0}
	if cfg.Limits != want {
		t.Errorf("Limits = %+v, want %+v", cfg.Limits, want)
	}
}

func TestMaxBody(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{`1048576`, 1 << 20},
		{`"1MiB"`, 1 << 20},
		{`"1mib"`, 1 << 20},
		{`"2 MB"`, 2_000_000},
		{`"10KB"`, 10_000},
		{`"3GiB"`, 3 << 30},
		{`"100"`, 100},
		{`"100B"`, 100},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			cfg := mustParse(t, "[limits]\nmax_body = "+tc.in+"\n", env("HOME", testHome))
			if cfg.Limits.MaxBody != tc.want {
				t.Errorf("MaxBody = %d, want %d", cfg.Limits.MaxBody, tc.want)
			}
		})
	}
}

func TestProxyAuth(t *testing.T) {
	src := `
listen = "0.0.0.0:8899"
[proxy_auth]
users = { alice = "${ALICE_PW}", bob = "literal" }
accounts = { alice = "a1", bob = ["a2", "a1"] }
allow_private_networks = true
[brokers.a1]
type = "pocketful"
client_id = "x"
client_secret = "y"
[brokers.a2]
type = "pocketful"
client_id = "x2"
client_secret = "y2"
`
	cfg := mustParse(t, src, env("HOME", testHome, "ALICE_PW", "s3cret"))
	pa := cfg.ProxyAuth
	if pa == nil {
		t.Fatal("ProxyAuth is nil")
	}
	if want := map[string]auth.Secret{"alice": "s3cret", "bob": "literal"}; !maps.Equal(pa.Users, want) {
		t.Errorf("Users = %v, want %v", pa.Users, want)
	}
	if want := map[string][]string{"alice": {"a1"}, "bob": {"a2", "a1"}}; !maps.EqualFunc(pa.Accounts, want, slices.Equal) {
		t.Errorf("Accounts = %v, want %v", pa.Accounts, want)
	}
	if !pa.AllowPrivateNetworks {
		t.Error("AllowPrivateNetworks = false, want true")
	}
	// The two accounts share trade.pocketful.in: allowed with [proxy_auth].
	got := cfg.AccountForHost("trade.pocketful.in:443")
	if len(got) != 2 || got[0].Name != "a1" || got[1].Name != "a2" {
		t.Errorf("AccountForHost = %v, want [a1 a2]", names(got))
	}
}

func names(as []*Account) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Name)
	}
	return out
}

func TestBrokers(t *testing.T) {
	tests := []struct {
		name        string
		src         string
		env         []string
		wantType    string
		wantHosts   []string
		wantValues  map[string]string
		wantMissing []string
	}{
		{
			name:       "tradingo",
			src:        `type = "tradingo"` + "\n" + `client_code = "C1"` + "\n" + `mpin = "${MPIN}"` + "\n" + `totp_secret = "jbsw y3dp ehpk 3pxp"`,
			env:        []string{"MPIN", "1234"},
			wantType:   "tradingo",
			wantHosts:  []string{"tradingorestapi.swastika.co.in"},
			wantValues: map[string]string{"client_code": "C1", "mpin": "1234", "totp_secret": goodTOTP},
		},
		{
			name:        "tradingo unconfigured",
			src:         `type = "tradingo"` + "\n" + `client_code = "${CODE}"` + "\n" + `mpin = "${MPIN}${MPIN}"` + "\n" + `totp_secret = "${TOTP}"`,
			env:         []string{"CODE", ""},
			wantType:    "tradingo",
			wantHosts:   []string{"tradingorestapi.swastika.co.in"},
			wantValues:  map[string]string{"client_code": "", "mpin": "", "totp_secret": ""}, // present, never used
			wantMissing: []string{"CODE", "MPIN", "TOTP"},
		},
		{
			name: "tradovate credentials",
			src: `type = "tradovate"
environment = "live"
username = "u"
password = "p$$w"
app_id = "app"
app_version = "1.0"
cid = "8"
sec = "s"`,
			wantType:   "tradovate",
			wantHosts:  []string{"live.tradovateapi.com", "md.tradovateapi.com"},
			wantValues: map[string]string{"environment": "live", "username": "u", "password": "p$w", "app_id": "app", "app_version": "1.0", "cid": "8", "sec": "s"},
		},
		{
			name: "tradovate credentials unconfigured",
			src: `type = "tradovate"
environment = "demo"
username = "${USER}"
password = "${PW}"
app_id = "app"
app_version = "1.0"
cid = "8"
sec = "x${SEC}"`,
			wantType:  "tradovate",
			wantHosts: []string{"demo.tradovateapi.com", "md.tradovateapi.com"},
			wantValues: map[string]string{"environment": "demo", "username": "", "password": "", "app_id": "app",
				"app_version": "1.0", "cid": "8", "sec": "x"},
			wantMissing: []string{"PW", "SEC", "USER"},
		},
		{
			name:       "tradovate oauth",
			src:        `type = "tradovate"` + "\n" + `environment = "demo"` + "\n" + `client_id = "id"` + "\n" + `client_secret = "cs"`,
			wantType:   "tradovate",
			wantHosts:  []string{"demo.tradovateapi.com", "md.tradovateapi.com"},
			wantValues: map[string]string{"environment": "demo", "client_id": "id", "client_secret": "cs", "redirect_uri": "http://127.0.0.1:8899/callback/acct"},
		},
		{
			name:        "tradovate environment unset",
			src:         `type = "tradovate"` + "\n" + `environment = "${ENV}"` + "\n" + `client_id = "id"` + "\n" + `client_secret = "cs"`,
			wantType:    "tradovate",
			wantHosts:   []string{"demo.tradovateapi.com", "live.tradovateapi.com", "md.tradovateapi.com"},
			wantValues:  map[string]string{"environment": "", "client_id": "id", "client_secret": "cs", "redirect_uri": "http://127.0.0.1:8899/callback/acct"},
			wantMissing: []string{"ENV"},
		},
		{
			name:      "fivepaisa totp",
			src:       `type = "fivepaisa"` + "\n" + `app_key = "k"` + "\n" + `user_id = "u"` + "\n" + `encryption_key = "e"` + "\n" + `client_code = "c"` + "\n" + `pin = "1"` + "\n" + `totp_secret = "` + goodTOTP + `"`,
			wantType:  "fivepaisa",
			wantHosts: []string{"openapi.5paisa.com", "openfeed.5paisa.com", "aopenfeed.5paisa.com", "bopenfeed.5paisa.com"},
			wantValues: map[string]string{"app_key": "k", "user_id": "u", "encryption_key": "e",
				"client_code": "c", "pin": "1", "totp_secret": goodTOTP},
		},
		{
			name:      "fivepaisa totp unconfigured",
			src:       `type = "fivepaisa"` + "\n" + `app_key = "${K}"` + "\n" + `user_id = "u"` + "\n" + `encryption_key = "e"` + "\n" + `client_code = "c"` + "\n" + `pin = "${PIN}"` + "\n" + `totp_secret = "JB${PART}"`,
			env:       []string{"K", "k"},
			wantType:  "fivepaisa",
			wantHosts: []string{"openapi.5paisa.com", "openfeed.5paisa.com", "aopenfeed.5paisa.com", "bopenfeed.5paisa.com"},
			wantValues: map[string]string{"app_key": "k", "user_id": "u", "encryption_key": "e",
				"client_code": "c", "pin": "", "totp_secret": "JB"},
			wantMissing: []string{"PART", "PIN"},
		},
		{
			name:       "fivepaisa browser",
			src:        `type = "fivepaisa"` + "\n" + `app_key = "k"` + "\n" + `user_id = "u"` + "\n" + `encryption_key = "e"` + "\n" + `redirect_uri = "https://example.com/cb"` + "\n" + `hosts = ["OpenAPI.5paisa.com."]`,
			wantType:   "fivepaisa",
			wantHosts:  []string{"openapi.5paisa.com"},
			wantValues: map[string]string{"app_key": "k", "user_id": "u", "encryption_key": "e", "redirect_uri": "https://example.com/cb"},
		},
		{
			name:      "pocketful defaults",
			src:       `type = "pocketful"` + "\n" + `client_id = "id"` + "\n" + `client_secret = "cs"`,
			wantType:  "pocketful",
			wantHosts: []string{"trade.pocketful.in"},
			wantValues: map[string]string{"client_id": "id", "client_secret": "cs", "scope": "orders holdings",
				"fill_client_id": "true", "redirect_uri": "http://127.0.0.1:8899/callback/acct"},
		},
		{
			name:      "pocketful scope unset",
			src:       `type = "pocketful"` + "\n" + `client_id = "id"` + "\n" + `client_secret = "cs"` + "\n" + `scope = "${SCOPE}"` + "\n" + `redirect_uri = "${CB}"`,
			wantType:  "pocketful",
			wantHosts: []string{"trade.pocketful.in"},
			wantValues: map[string]string{"client_id": "id", "client_secret": "cs", "scope": "",
				"fill_client_id": "true", "redirect_uri": ""},
			wantMissing: []string{"CB", "SCOPE"},
		},
		{
			name:      "pocketful explicit",
			src:       `type = "pocketful"` + "\n" + `client_id = "id"` + "\n" + `client_secret = "cs"` + "\n" + `scope = "orders"` + "\n" + `fill_client_id = false` + "\n" + `hosts = ["*.Example.com", "api.example.com", "${HOST2}"]`,
			wantType:  "pocketful",
			wantHosts: []string{"*.example.com", "api.example.com"},
			wantValues: map[string]string{"client_id": "id", "client_secret": "cs", "scope": "orders",
				"fill_client_id": "false", "redirect_uri": "http://127.0.0.1:8899/callback/acct"},
			wantMissing: []string{"HOST2"},
		},
		{
			name:       "kite defaults",
			src:        `type = "kite"` + "\n" + `api_key = "kitekey1"` + "\n" + `api_secret = "${SECRET}"`,
			env:        []string{"SECRET", "ks"},
			wantType:   "kite",
			wantHosts:  []string{"api.kite.trade", "ws.kite.trade"},
			wantValues: map[string]string{"api_key": "kitekey1", "api_secret": "ks", "redirect_uri": "http://127.0.0.1:8899/callback/acct"},
		},
		{
			name:       "kite registered redirect",
			src:        `type = "kite"` + "\n" + `api_key = "kitekey1"` + "\n" + `api_secret = "ks"` + "\n" + `redirect_uri = "http://127.0.0.1:9000/callback/acct"`,
			wantType:   "kite",
			wantHosts:  []string{"api.kite.trade", "ws.kite.trade"},
			wantValues: map[string]string{"api_key": "kitekey1", "api_secret": "ks", "redirect_uri": "http://127.0.0.1:9000/callback/acct"},
		},
		{
			name:       "angelone",
			src:        `type = "angelone"` + "\n" + `api_key = "${KEY}"` + "\n" + `client_code = "A123456"` + "\n" + `pin = "1234"` + "\n" + `totp_secret = "jbsw y3dp ehpk 3pxp"`,
			env:        []string{"KEY", "SmartKey9"},
			wantType:   "angelone",
			wantHosts:  []string{"apiconnect.angelone.in", "smartapisocket.angelone.in"},
			wantValues: map[string]string{"api_key": "SmartKey9", "client_code": "A123456", "pin": "1234", "totp_secret": goodTOTP},
		},
		{
			name:        "angelone unconfigured",
			src:         `type = "angelone"` + "\n" + `api_key = "${KEY}"` + "\n" + `client_code = "A123456"` + "\n" + `pin = "${PIN}"` + "\n" + `totp_secret = "${TOTP}"`,
			wantType:    "angelone",
			wantHosts:   []string{"apiconnect.angelone.in", "smartapisocket.angelone.in"},
			wantValues:  map[string]string{"api_key": "", "client_code": "A123456", "pin": "", "totp_secret": ""},
			wantMissing: []string{"KEY", "PIN", "TOTP"},
		},
		{
			name:       "upstox defaults",
			src:        `type = "upstox"` + "\n" + `client_id = "id"` + "\n" + `client_secret = "cs"`,
			wantType:   "upstox",
			wantHosts:  []string{"api.upstox.com", "api-hft.upstox.com"},
			wantValues: map[string]string{"client_id": "id", "client_secret": "cs", "redirect_uri": "http://127.0.0.1:8899/callback/acct"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustParse(t, "[brokers.acct]\n"+tc.src+"\n", env(append([]string{"HOME", testHome}, tc.env...)...))
			if len(cfg.Accounts) != 1 {
				t.Fatalf("got %d accounts, want 1", len(cfg.Accounts))
			}
			a := cfg.Account("acct")
			if a == nil || a != cfg.Accounts[0] {
				t.Fatalf("Account(acct) = %v, want the only account", a)
			}
			if a.Type != tc.wantType || a.Line != 1 {
				t.Errorf("Type, Line = %q, %d; want %q, 1", a.Type, a.Line, tc.wantType)
			}
			if !slices.Equal(a.Hosts, tc.wantHosts) {
				t.Errorf("Hosts = %q, want %q", a.Hosts, tc.wantHosts)
			}
			if !maps.Equal(a.Values, tc.wantValues) {
				t.Errorf("Values = %q, want %q", a.Values, tc.wantValues)
			}
			if !slices.Equal(a.Missing, tc.wantMissing) {
				t.Errorf("Missing = %q, want %q", a.Missing, tc.wantMissing)
			}
			if a.Configured() != (len(tc.wantMissing) == 0) {
				t.Errorf("Configured() = %v with Missing %q", a.Configured(), a.Missing)
			}
		})
	}
}

// TestProblems checks problems that the golden files do not pin, by
// substring, with their lines.
func TestProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		env  []string
		want []string // each must appear in the error text, in this order
	}{
		{"unset variable outside brokers", `listen = "${LISTEN}"`, nil,
			[]string{"test.toml:1: listen: environment variable LISTEN is not set (or is empty)"}},
		{"malformed variable", `listen = "${1X}"`, nil,
			[]string{`test.toml:1: listen: "${...}" must hold a variable name`}},
		{"unterminated variable", "[brokers.a]\ntype = \"pocketful\"\nclient_id = \"${ID\"\nclient_secret = \"x\"", nil,
			[]string{`test.toml:3: brokers.a.client_id: unterminated "${"`}},
		{"bad listen", `listen = "8899"`, nil, []string{`test.toml:1: listen: "8899" must be host:port`}},
		{"listen on all interfaces", `listen = ":8899"`, nil, []string{`":8899" is not a loopback address`}},
		{"proxy_auth without users", "[proxy_auth]\n", nil, []string{"test.toml:1: proxy_auth: needs users"}},
		{"proxy_auth unset password", "[proxy_auth]\nusers = { a = \"${PW}\" }", nil,
			[]string{"test.toml:2: proxy_auth.users.a: environment variable PW is not set"}},
		{"proxy_auth unknown account and user", "[proxy_auth]\nusers = { a = \"pw\" }\naccounts = { a = \"nope\", b = \"nope\" }", nil,
			[]string{`test.toml:3: proxy_auth.accounts.a: there is no account [brokers.nope]`,
				`test.toml:3: proxy_auth.accounts.b: user "b" is not in proxy_auth.users`}},
		{"store kind", "[store]\nkind = \"s3\"", nil, []string{`test.toml:2: store.kind: must be "file" or "redis", not "s3"`}},
		{"redis without url and key", "[store]\nkind = \"redis\"", nil,
			[]string{`test.toml:1: store.key: required when kind = "redis"`, `test.toml:1: store.url: required when kind = "redis"`}},
		{"redis key unset", "[store]\nkind = \"redis\"\nurl = \"redis://h:1\"\nkey = \"${K}\"", nil,
			[]string{"test.toml:4: store.key: environment variable K is not set"}},
		{"bad store key with kind file", "[store]\nkey = \"c2hvcnQ=\"", nil,
			[]string{"test.toml:2: store.key: must be 32 bytes in base64"}},
		{"bad redis url", "[store]\nkind = \"redis\"\nurl = \"http://x\"\nkey = \"" + goodStoreKey + "\"", nil,
			[]string{"test.toml:3: store.url: must be a redis://"}},
		{"resolve without port", "[upstream]\nresolve = { \"a.com\" = \"1.2.3.4:443\" }", nil,
			[]string{`test.toml:2: upstream.resolve."a.com": the key must be "host:port"`}},
		{"resolve duplicate by case", "[upstream.resolve]\n\"a.com:443\" = \"1.2.3.4:443\"\n\"A.COM:443\" = \"1.2.3.4:443\"", nil,
			[]string{`test.toml:3: upstream.resolve."A.COM:443": a.com:443 is given twice`}},
		{"max_body unit", "[limits]\nmax_body = \"1 parsec\"", nil, []string{`test.toml:2: limits.max_body: "1 parsec": unknown unit`}},
		{"max_body negative", "[limits]\nmax_body = -5", nil, []string{`test.toml:2: limits.max_body: must be at least 1 byte`}},
		{"refresh_margin negative", "[limits]\nrefresh_margin = \"-1m\"", nil, []string{`limits.refresh_margin: "-1m" must not be negative`}},
		{"timeout zero", "[upstream]\ntimeout = \"0s\"", nil, []string{`upstream.timeout: "0s" must be positive`}},
		{"table expected", "upstream = 5", nil, []string{"test.toml:1: upstream: must be a table, not an integer"}},
		{"broker not a table", "[brokers]\nx = \"tradingo\"", nil, []string{`test.toml:2: brokers.x: must be a table`}},
		{"type missing", "[brokers.x]\nmpin = \"1\"", nil, []string{`test.toml:1: brokers.x.type: missing`}},
		{"type unset", "[brokers.x]\ntype = \"${T}\"", nil, []string{`test.toml:2: brokers.x.type: the type must be known: environment variable T`}},
		{"key of another type", "[brokers.x]\ntype = \"pocketful\"\nclient_id = \"a\"\nclient_secret = \"b\"\nmpin = \"1\"", nil,
			[]string{`test.toml:5: brokers.x.mpin: unknown key for type "pocketful"`}},
		{"tradovate neither mode", "[brokers.x]\ntype = \"tradovate\"\nenvironment = \"demo\"", nil,
			[]string{`test.toml:1: brokers.x: needs either "password"`}},
		{"tradovate both modes", "[brokers.x]\ntype = \"tradovate\"\nenvironment = \"demo\"\nusername = \"u\"\npassword = \"p\"\napp_id = \"a\"\napp_version = \"1\"\ncid = \"1\"\nsec = \"s\"\nclient_id = \"c\"", nil,
			[]string{`test.toml:10: brokers.x.client_id: is for OAuth login, but "password" selects credential login`}},
		{"fivepaisa redirect with totp", "[brokers.x]\ntype = \"fivepaisa\"\napp_key = \"k\"\nuser_id = \"u\"\nencryption_key = \"e\"\nclient_code = \"c\"\npin = \"1\"\ntotp_secret = \"" + goodTOTP + "\"\nredirect_uri = \"http://x/\"", nil,
			[]string{`test.toml:9: brokers.x.redirect_uri: is for browser login`}},
		{"empty required value", "[brokers.x]\ntype = \"pocketful\"\nclient_id = \"\"\nclient_secret = \"b\"", nil,
			[]string{`test.toml:3: brokers.x.client_id: must not be empty`}},
		{"bad redirect", "[brokers.x]\ntype = \"pocketful\"\nclient_id = \"a\"\nclient_secret = \"b\"\nredirect_uri = \"/cb\"", nil,
			[]string{`test.toml:5: brokers.x.redirect_uri: "/cb" must be an absolute http:// or https:// URL`}},
		{"bad ip", "[brokers.x]\ntype = \"tradingo\"\nclient_code = \"c\"\nmpin = \"1\"\ntotp_secret = \"" + goodTOTP + "\"\nip_address = \"1.2.3\"", nil,
			[]string{`test.toml:6: brokers.x.ip_address: "1.2.3" is not an IP address`}},
		{"empty hosts", "[brokers.x]\ntype = \"pocketful\"\nclient_id = \"a\"\nclient_secret = \"b\"\nhosts = []", nil,
			[]string{`test.toml:5: brokers.x.hosts: must list at least one host`}},
		{"hosts not strings", "[brokers.x]\ntype = \"pocketful\"\nclient_id = \"a\"\nclient_secret = \"b\"\nhosts = [\"a.com\", 5]", nil,
			[]string{`test.toml:5: brokers.x.hosts: element 2 must be a string, not an integer`}},
		{"bad account name", "[brokers.\"a b\"]\ntype = \"pocketful\"\nclient_id = \"a\"\nclient_secret = \"b\"", nil,
			[]string{`test.toml:1: brokers."a b": account names may hold only letters`}},
		{"dotted unknown table", "\n\nfoo.bar.baz = 1", nil, []string{"test.toml:3: foo: unknown key"}},
		{"unknown in upstream", "[upstream]\nproxies = \"x\"", nil, []string{"test.toml:2: upstream.proxies: unknown key"}},
		{"many at once", "listen = 1\npassthrough = \"yes\"\n[limits]\nmax_tunnels = \"many\"", nil,
			[]string{"test.toml:1: listen: must be a string, not an integer",
				"test.toml:2: passthrough: must be a boolean (true or false), not a string",
				"test.toml:4: limits.max_tunnels: must be an integer, not a string"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("test.toml", []byte(tc.src), env(append([]string{"HOME", testHome}, tc.env...)...))
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want an error", cfg)
			}
			if cfg != nil {
				t.Errorf("Parse returned a config with its error")
			}
			text := err.Error()
			rest := text
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error lacks %q (in order); got:\n%s", w, text)
				}
				rest = rest[i+len(w):]
			}
			for _, p := range Problems(err) {
				if p.File != "test.toml" {
					t.Errorf("Problem %q has File %q", p, p.File)
				}
			}
		})
	}
}

// TestSecretsNotEchoed: problems about secret values never quote them.
func TestSecretsNotEchoed(t *testing.T) {
	const secret = "NOT-BASE32-S3CRET!"
	srcs := []string{
		"[brokers.x]\ntype = \"tradingo\"\nclient_code = \"c\"\nmpin = \"1\"\ntotp_secret = \"${SECRET}\"",
		"[store]\nkey = \"${SECRET}\"",
		"[store]\nkind = \"redis\"\nurl = \"redis://x:1\"\nkey = \"" + secret + "\"",
		"[brokers.x]\ntype = \"tradingo\"\nmpin = " + secret + "\n",
		"[brokers.x]\ntype = \"tradingo\"\nmpin = \"" + secret + "\n",
		"[brokers.x]\ntype = \"fivepaisa\"\napp_key = \"k\"\nuser_id = \"u\"\nencryption_key = \"e\"\nclient_code = \"c\"\npin = \"1\"\ntotp_secret = \"" + secret + "\"",
	}
	for i, src := range srcs {
		_, err := Parse("test.toml", []byte(src), env("HOME", testHome, "SECRET", secret))
		if err == nil {
			t.Errorf("case %d: Parse succeeded, want an error", i)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "S3CRET") {
			t.Errorf("case %d: the error quotes the secret:\n%v", i, err)
		}
	}
}

func TestExpand(t *testing.T) {
	lookup := env("A", "alpha", "B", "", "PATH_1", "/p")
	tests := []struct {
		in, want    string
		wantMissing []string
		wantErr     bool
	}{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "alpha"},
		{in: "x${A}y${PATH_1}z", want: "xalphay/pz"},
		{in: "$$", want: "$"},
		{in: "$${A}", want: "${A}"},
		{in: "$$$${A}", want: "$${A}"},
		{in: "a$b$", want: "a$b$"},
		{in: "$A", want: "$A"},
		{in: "${B}", want: "", wantMissing: []string{"B"}},
		{in: "${C}-${A}-${C}", want: "-alpha-", wantMissing: []string{"C", "C"}},
		{in: "${", wantErr: true},
		{in: "${A", wantErr: true},
		{in: "${}", wantErr: true},
		{in: "${A-B}", wantErr: true},
		{in: "${9}", wantErr: true},
	}
	for _, tc := range tests {
		got, missing, err := expand(tc.in, lookup)
		if (err != nil) != tc.wantErr {
			t.Errorf("expand(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if tc.wantErr {
			continue
		}
		if got != tc.want || !slices.Equal(missing, tc.wantMissing) {
			t.Errorf("expand(%q) = %q, %q; want %q, %q", tc.in, got, missing, tc.want, tc.wantMissing)
		}
	}
}

func TestAccountForHost(t *testing.T) {
	src := `
[brokers.exact]
type = "pocketful"
client_id = "a"
client_secret = "b"
hosts = ["api.example.com", "10.0.0.1", "::1"]
[brokers.wild]
type = "pocketful"
client_id = "a"
client_secret = "b"
hosts = ["*.example.com"]
[brokers.deeper]
type = "pocketful"
client_id = "a"
client_secret = "b"
hosts = ["*.eu.example.com"]
[brokers.tv]
type = "tradovate"
environment = "live"
client_id = "a"
client_secret = "b"
`
	cfg := mustParse(t, src, env("HOME", testHome))
	tests := []struct {
		host string
		want []string
	}{
		{"api.example.com", []string{"exact"}},
		{"API.Example.COM.:443", []string{"exact"}},
		{"www.example.com", []string{"wild"}},
		{"a.b.example.com", []string{"wild"}},
		{"x.eu.example.com:8443", []string{"deeper"}},
		{"example.com", nil},
		{"eu.example.com", []string{"wild"}},
		{"notexample.com", nil},
		{"10.0.0.1:443", []string{"exact"}},
		{"[::1]:443", []string{"exact"}},
		{"live.tradovateapi.com", []string{"tv"}},
		{"md.tradovateapi.com:443", []string{"tv"}},
		{"demo.tradovateapi.com", nil},
		{"", nil},
	}
	for _, tc := range tests {
		if got := names(cfg.AccountForHost(tc.host)); !slices.Equal(got, tc.want) {
			t.Errorf("AccountForHost(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
	if cfg.Account("nope") != nil {
		t.Error("Account(nope) != nil")
	}
	if got := names(cfg.Accounts); !slices.Equal(got, []string{"deeper", "exact", "tv", "wild"}) {
		t.Errorf("Accounts not sorted by name: %q", got)
	}
}

func TestHostPatterns(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"Api.Example.com.", "api.example.com", true},
		{"*.example.com", "*.example.com", true},
		{"127.0.0.1", "127.0.0.1", true},
		{"[::1]", "::1", true},
		{"under_score.example", "under_score.example", true},
		{"", "", false},
		{".", "", false},
		{"a..b", "", false},
		{"https://a.com", "", false},
		{"a.com/path", "", false},
		{"a.com:443", "", false},
		{"*", "", false},
		{"*.", "", false},
		{"a.*.com", "", false},
		{"*a.com", "", false},
		{"**.a.com", "", false},
		{"a b.com", "", false},
		{strings.Repeat("a", 64) + ".com", "", false},
	}
	for _, tc := range tests {
		got, err := normalizeHostPattern(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("normalizeHostPattern(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestIsSecretKey(t *testing.T) {
	for _, k := range []string{"mpin", "pin", "password", "sec", "totp_secret", "app_key", "encryption_key",
		"client_secret", "brokers.tr.mpin", `brokers."my acct".sec`, "proxy_auth.users.alice", "store.key",
		"api_secret", "brokers.kt.api_secret", "brokers.ao.api_key", "brokers.ao.pin", "brokers.ux.client_secret"} {
		if !IsSecretKey(k) {
			t.Errorf("IsSecretKey(%q) = false, want true", k)
		}
	}
	for _, k := range []string{"client_code", "user_id", "username", "cid", "client_id", "brokers.tr.client_code",
		"app_id", "listen", "store.url", "proxy_auth.accounts.alice", "key", "type"} {
		if IsSecretKey(k) {
			t.Errorf("IsSecretKey(%q) = true, want false", k)
		}
	}
}

func TestDefaultHosts(t *testing.T) {
	tests := []struct {
		typ    string
		values map[string]string
		want   []string
	}{
		{"tradingo", nil, []string{"tradingorestapi.swastika.co.in"}},
		{"tradovate", map[string]string{"environment": "demo"}, []string{"demo.tradovateapi.com", "md.tradovateapi.com"}},
		{"tradovate", map[string]string{"environment": "live"}, []string{"live.tradovateapi.com", "md.tradovateapi.com"}},
		{"tradovate", nil, []string{"demo.tradovateapi.com", "live.tradovateapi.com", "md.tradovateapi.com"}},
		{"fivepaisa", nil, []string{"openapi.5paisa.com", "openfeed.5paisa.com", "aopenfeed.5paisa.com", "bopenfeed.5paisa.com"}},
		{"pocketful", nil, []string{"trade.pocketful.in"}},
		{"kite", nil, []string{"api.kite.trade", "ws.kite.trade"}},
		{"angelone", nil, []string{"apiconnect.angelone.in", "smartapisocket.angelone.in"}},
		{"upstox", nil, []string{"api.upstox.com", "api-hft.upstox.com"}},
		{"other", nil, nil},
	}
	for _, tc := range tests {
		if got := DefaultHosts(tc.typ, tc.values); !slices.Equal(got, tc.want) {
			t.Errorf("DefaultHosts(%q, %v) = %q, want %q", tc.typ, tc.values, got, tc.want)
		}
	}
}

func TestProblemFormat(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "r.toml", Line: 3, Key: "brokers.tr.mpin", Msg: "m"}, "r.toml:3: brokers.tr.mpin: m"},
		{Problem{File: "r.toml", Key: "foo", Msg: "m"}, "r.toml: foo: m"},
		{Problem{File: "r.toml", Line: 2, Msg: "m"}, "r.toml:2: m"},
		{Problem{Line: 2, Key: "k", Msg: "m"}, "line 2: k: m"},
		{Problem{Msg: "m"}, "m"},
	}
	for _, tc := range tests {
		if got := tc.p.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	a, b := &Problem{Msg: "a"}, &Problem{Msg: "b"}
	err := errors.Join(a, errors.Join(b), errors.New("other"))
	if got := Problems(err); len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("Problems = %v, want [a b]", got)
	}
	if got := Problems(nil); got != nil {
		t.Errorf("Problems(nil) = %v", got)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "rules.toml")
	if err := os.WriteFile(p, []byte("state_dir = \"st\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p, env("HOME", testHome))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Path != p || cfg.StateDir != filepath.Join(dir, "st") {
		t.Errorf("Path, StateDir = %q, %q; want %q, %q", cfg.Path, cfg.StateDir, p, filepath.Join(dir, "st"))
	}

	_, err = Load(filepath.Join(dir, "missing.toml"), env())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want one wrapping fs.ErrNotExist", err)
	}
	if ps := Problems(err); len(ps) != 1 || !strings.HasPrefix(ps[0].Error(), filepath.Join(dir, "missing.toml")+": cannot read") {
		t.Errorf("Load(missing) problems = %v", ps)
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	home := filepath.Join(dir, "home")
	xdg := filepath.Join(dir, "xdg")
	getenv := func(kv ...string) func(string) string {
		l := env(kv...)
		return func(k string) string { v, _ := l(k); return v }
	}
	write := func(p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := Find("", getenv("HOME", home)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("nothing anywhere: err = %v, want fs.ErrNotExist", err)
	}
	write(filepath.Join(home, ".config/authproxy/rules.toml"))
	write(filepath.Join(xdg, "authproxy/rules.toml"))
	check := func(name, flag string, ge func(string) string, want string) {
		t.Helper()
		got, err := Find(flag, ge)
		if err != nil || got != want {
			t.Errorf("%s: Find = %q, %v; want %q", name, got, err, want)
		}
	}
	check("home default", "", getenv("HOME", home), filepath.Join(home, ".config/authproxy/rules.toml"))
	check("xdg", "", getenv("HOME", home, "XDG_CONFIG_HOME", xdg), filepath.Join(xdg, "authproxy/rules.toml"))
	write(filepath.Join(dir, "rules.toml"))
	check("cwd", "", getenv("HOME", home, "XDG_CONFIG_HOME", xdg), "rules.toml")
	check("env", "", getenv("AUTHPROXY_CONFIG", "/from/env.toml", "HOME", home), "/from/env.toml")
	check("flag", "/from/flag.toml", getenv("AUTHPROXY_CONFIG", "/from/env.toml"), "/from/flag.toml")
}

// shippedVars returns the variables the shipped rules.toml uses.
func shippedVars() []string {
	return []string{
		"TRADINGO_CLIENT_CODE", "TRADINGO_MPIN", "TRADINGO_TOTP_SECRET",
		"TRADOVATE_USERNAME", "TRADOVATE_PASSWORD", "TRADOVATE_APP_ID", "TRADOVATE_APP_VERSION",
		"TRADOVATE_CID", "TRADOVATE_SEC", "TRADOVATE_DEVICE_ID",
		"FIVEPAISA_APP_KEY", "FIVEPAISA_USER_ID", "FIVEPAISA_ENCRYPTION_KEY", "FIVEPAISA_CLIENT_CODE",
		"FIVEPAISA_PIN", "FIVEPAISA_TOTP_SECRET",
		"POCKETFUL_CLIENT_ID", "POCKETFUL_CLIENT_SECRET",
	}
}

func TestShippedRules(t *testing.T) {
	const path = "../rules.toml"
	wantNames := []string{"fivepaisa", "pocketful", "tradingo", "tradovate"}

	cfg, err := Load(path, env("HOME", testHome))
	if err != nil {
		t.Fatalf("empty environment: %v", err)
	}
	if got := names(cfg.Accounts); !slices.Equal(got, wantNames) {
		t.Fatalf("accounts = %q, want %q", got, wantNames)
	}
	var missing []string
	for _, a := range cfg.Accounts {
		if a.Configured() {
			t.Errorf("empty environment: account %s is configured", a.Name)
		}
		if a.Type != a.Name || len(a.Hosts) == 0 {
			t.Errorf("account %s: type %q, hosts %q", a.Name, a.Type, a.Hosts)
		}
		missing = append(missing, a.Missing...)
	}
	slices.Sort(missing)
	if want := slices.Sorted(slices.Values(shippedVars())); !slices.Equal(missing, want) {
		t.Errorf("missing variables = %q, want %q", missing, want)
	}

	full := []string{"HOME", testHome}
	for _, v := range shippedVars() {
		val := "value-of-" + v
		if strings.HasSuffix(v, "TOTP_SECRET") {
			val = goodTOTP
		}
		full = append(full, v, val)
	}
	cfg, err = Load(path, env(full...))
	if err != nil {
		t.Fatalf("full environment: %v", err)
	}
	for _, a := range cfg.Accounts {
		if !a.Configured() {
			t.Errorf("full environment: account %s is unconfigured, missing %q", a.Name, a.Missing)
		}
	}
	if got := cfg.Account("tradingo").Get("mpin"); got != "value-of-TRADINGO_MPIN" {
		t.Errorf("tradingo mpin = %q", got)
	}
	if got := cfg.Account("tradovate").Get("cid"); got != "value-of-TRADOVATE_CID" {
		t.Errorf("tradovate cid = %q", got)
	}
	if got := cfg.Account("pocketful").Get("redirect_uri"); got != "http://127.0.0.1:8899/callback/pocketful" {
		t.Errorf("pocketful redirect_uri = %q", got)
	}
	if got := cfg.Account("fivepaisa").Secret("pin").Reveal(); got != "value-of-FIVEPAISA_PIN" {
		t.Errorf("fivepaisa pin = %q", got)
	}
}

func TestProblemCap(t *testing.T) {
	var b strings.Builder
	for i := range maxProblems + 50 {
		fmt.Fprintf(&b, "unknown%d = 1\n", i)
	}
	_, err := Parse("test.toml", []byte(b.String()), env("HOME", testHome))
	ps := Problems(err)
	if len(ps) != maxProblems+1 {
		t.Fatalf("got %d problems, want %d", len(ps), maxProblems+1)
	}
	if last := ps[len(ps)-1]; last.Msg != "50 more problems not shown: fix these first" {
		t.Errorf("last problem = %q", last)
	}
}
