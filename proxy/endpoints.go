package proxy

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/authproxy/authproxy/auth"
)

// ownEndpoints serves requests addressed to the proxy itself.
func (p *Proxy) ownEndpoints() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /status", p.requireUser(p.serveStatus))
	mux.HandleFunc("GET /ca.pem", p.serveCAPEM)
	mux.HandleFunc("POST /token/{name}", p.requireUser(p.serveToken))
	mux.HandleFunc("GET /login/{name}", p.requireUser(p.logins.ServeLogin))
	mux.HandleFunc("GET /callback/{name}", p.logins.ServeCallback)
	p.guardEndpoints(mux)
	mux.HandleFunc("/", p.requireUser(func(w http.ResponseWriter, r *http.Request) {
		if p.opts.Extra != nil {
			p.opts.Extra.ServeHTTP(w, r)
			return
		}
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("authproxy is running. JSON status: /status\n"))
	}))
	return mux
}

// requireUser asks for the [proxy_auth] credentials (as ordinary Basic
// auth) on the proxy's own pages when proxy_auth is configured.
func (p *Proxy) requireUser(h http.HandlerFunc) http.HandlerFunc {
	if len(p.opts.Users) == 0 {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if ok {
			if want, found := p.opts.Users[user]; found &&
				subtle.ConstantTimeCompare([]byte(want.Reveal()), []byte(pass)) == 1 {
				h(w, r)
				return
			}
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="authproxy"`)
		http.Error(w, "authproxy: log in with a [proxy_auth] user", http.StatusUnauthorized)
	}
}

// AccountStatus is one account in /status.
type AccountStatus struct {
	Name             string           `json:"name"`
	Type             string           `json:"type"`
	Display          string           `json:"-"` // the broker's name for people
	State            string           `json:"state"`
	Reason           string           `json:"reason,omitempty"`
	Hosts            []string         `json:"hosts"`
	Missing          []string         `json:"missing,omitempty"`
	Expiry           *time.Time       `json:"expiry,omitempty"`
	ExpiresInSeconds *int64           `json:"expires_in_seconds,omitempty"`
	Obtained         *time.Time       `json:"obtained,omitempty"`
	LockedUntil      *time.Time       `json:"locked_until,omitempty"`
	LastError        string           `json:"last_error,omitempty"`
	StoreError       string           `json:"store_error,omitempty"`
	Logins           int64            `json:"logins"`
	Refreshes        int64            `json:"refreshes"`
	Failures         int64            `json:"failures"`
	Rejections       int64            `json:"rejections"`
	Requests         map[string]int64 `json:"requests"`
	LoginURL         string           `json:"login_url,omitempty"`
	Interactive      bool             `json:"interactive"`
	// The order guard (guard.go).
	Paused             bool       `json:"paused"`
	PausedSince        *time.Time `json:"paused_since,omitempty"`
	MaxOrdersPerSecond int        `json:"max_orders_per_second"`
}

// StatusReport is the /status document.
type StatusReport struct {
	Listen      string          `json:"listen"`
	Time        time.Time       `json:"time"`
	OpenTunnels int64           `json:"open_tunnels"`
	Accounts    []AccountStatus `json:"accounts"`
	// ClientTLSFailures counts handshakes clients broke off on the proxy's
	// certificate since start (usually: the client does not trust the CA).
	ClientTLSFailures    int64      `json:"client_tls_failures"`
	LastClientTLSFailure string     `json:"last_client_tls_failure,omitempty"`
	LastClientTLSAt      *time.Time `json:"last_client_tls_failure_at,omitempty"`
}

// Status builds the status report.
func (p *Proxy) Status() StatusReport {
	now := p.opts.Now()
	rep := StatusReport{Listen: p.opts.Listen, Time: now.UTC(), OpenTunnels: p.tunnels.Load()}
	if n, last, at := p.tlsFails.snapshot(); n > 0 {
		at = at.UTC()
		rep.ClientTLSFailures, rep.LastClientTLSFailure, rep.LastClientTLSAt = n, last, &at
	}
	for _, a := range p.opts.Accounts {
		rep.Accounts = append(rep.Accounts, p.accountStatus(a, now))
	}
	p.addGuardStatus(&rep)
	sort.Slice(rep.Accounts, func(i, j int) bool { return rep.Accounts[i].Name < rep.Accounts[j].Name })
	return rep
}

func (p *Proxy) accountStatus(a *Account, now time.Time) AccountStatus {
	as := AccountStatus{Name: a.Name, Type: a.Type, Display: a.Display, Hosts: a.Hosts, Missing: a.Missing, Requests: a.requests.snapshot()}
	if ia, ok := a.Broker.(auth.Interactive); ok && ia.NeedsBrowser() {
		as.Interactive = true
		as.LoginURL = p.loginURL(a.Name)
	}
	if len(a.Missing) > 0 || a.Source == nil {
		as.State = "unconfigured"
		as.Reason = "unset environment variables: " + strings.Join(a.Missing, ", ")
		return as
	}
	s := a.Source.Status()
	as.State = s.State
	as.LastError = s.LastError
	as.StoreError = s.StoreError
	as.Logins, as.Refreshes, as.Failures, as.Rejections = s.Logins, s.Refreshes, s.Failures, s.Rejections
	if !s.Expiry.IsZero() && s.HasToken {
		e := s.Expiry.UTC()
		as.Expiry = &e
		secs := int64(s.Expiry.Sub(now) / time.Second)
		as.ExpiresInSeconds = &secs
	}
	if !s.Obtained.IsZero() && s.HasToken {
		o := s.Obtained.UTC()
		as.Obtained = &o
	}
	if !s.LockedUntil.IsZero() && s.LockedUntil.After(now) {
		l := s.LockedUntil.UTC()
		as.LockedUntil = &l
		as.State = "locked out"
		as.Reason = "until " + l.Format(time.RFC3339)
	}
	switch {
	case as.State == auth.StateError:
		as.Reason = s.LastError
	case (as.State == auth.StateEmpty || as.State == auth.StateExpired) && !as.Interactive:
		// The proxy logs in by itself: the account serves requests.
		if as.State == auth.StateEmpty {
			as.Reason = "not logged in yet: logs in on the first request"
		} else {
			as.Reason = "token expired: logs in again on the next request"
		}
		as.State = auth.StateReady
	}
	return as
}

func (p *Proxy) serveStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(p.Status())
}

func (p *Proxy) account(name string) *Account { return findAccount(p.opts.Accounts, name) }

func findAccount(accounts []*Account, name string) *Account {
	for _, a := range accounts {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// LoginURL is the /login/NAME address for account.
func (p *Proxy) LoginURL(account string) string { return p.loginURL(account) }

// ServeCallback serves the broker's redirect after a browser login (see
// [Logins.ServeCallback]); extra loopback callback listeners use it.
func (p *Proxy) ServeCallback(w http.ResponseWriter, r *http.Request) { p.logins.ServeCallback(w, r) }
