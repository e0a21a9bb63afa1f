package proxy

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
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
	mux.HandleFunc("GET /login/{name}", p.requireUser(p.serveLogin))
	mux.HandleFunc("GET /callback/{name}", p.ServeCallback)
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

// serveLogin starts an interactive login: it remembers a fresh state and
// redirects the browser to the broker's consent page.
func (p *Proxy) serveLogin(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	// A page of another site must not start (nor, by filling the pending
	// logins, block) a login: only a top-level navigation, the dashboard's
	// button or a non-browser client (no Sec-Fetch-Site, or none /
	// same-origin) may.
	if crossSiteRequest(r) {
		loginPage(w, http.StatusForbidden, "Login refused",
			"A page of another site tried to start a login for "+name+". Open "+p.loginURL(name)+" yourself, or run `authproxy login "+name+"`.")
		return
	}
	a := p.account(name)
	if a == nil {
		loginPage(w, http.StatusNotFound, "Unknown account", "There is no account named "+name+" in rules.toml.")
		return
	}
	ia, ok := a.Broker.(auth.Interactive)
	if !ok || a.Source == nil {
		msg := "Account " + name + " logs in by itself; no browser login is needed."
		if a.Source == nil {
			msg = "Account " + name + " is not configured: unset environment variables " + strings.Join(a.Missing, ", ") + "."
		}
		loginPage(w, http.StatusBadRequest, "No browser login for "+name, msg)
		return
	}
	state, err := p.logins.add(name)
	if err != nil {
		loginPage(w, http.StatusInternalServerError, "Login could not start", err.Error())
		return
	}
	http.Redirect(w, r, ia.AuthURL(state, a.RedirectURI), http.StatusFound)
}

// ServeCallback receives the broker's redirect after a browser login: it
// checks state, exchanges the code and stores the token. It is mounted at
// /callback/NAME on the proxy and on any extra loopback callback listener.
func (p *Proxy) ServeCallback(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == "" {
		name = strings.TrimPrefix(r.URL.Path, "/callback/")
	}
	a := p.account(name)
	if a == nil {
		loginPage(w, http.StatusNotFound, "Unknown account", "There is no account named "+name+".")
		return
	}
	ia, ok := a.Broker.(auth.Interactive)
	if !ok || a.Source == nil {
		loginPage(w, http.StatusBadRequest, "No browser login for "+name, "This account does not log in through a browser.")
		return
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		loginPage(w, http.StatusBadRequest, "The broker refused the login", e+" "+q.Get("error_description"))
		return
	}
	state := q.Get("state")
	if state == "" {
		state = q.Get("State")
	}
	if !p.logins.take(name, state) {
		loginPage(w, http.StatusBadRequest, "Login refused: unknown or used state",
			"This login link is stale, was already used, or did not come from this authproxy. Start again at "+p.loginURL(name)+".")
		return
	}
	tok, err := ia.Exchange(r.Context(), a.RedirectURI, q)
	if err != nil {
		ce := classify(err, name, p.opts.Now(), p.loginURL)
		p.log.Warn("interactive login failed", "account", name, "err", ce.Message)
		loginPage(w, http.StatusBadGateway, "Login failed", ce.Message)
		return
	}
	if err := a.Source.Set(r.Context(), tok); err != nil {
		loginPage(w, http.StatusInternalServerError, "Login could not be saved", err.Error())
		return
	}
	p.log.Info("interactive login complete", "account", name, "expiry", tok.Expiry)
	msg := "authproxy now holds a token for " + name
	if !tok.Expiry.IsZero() {
		msg += ", valid until " + tok.Expiry.Local().Format("2006-01-02 15:04 MST")
	}
	loginPage(w, http.StatusOK, "Logged in", msg+". You can close this tab; your scripts will work now.")
}

func (p *Proxy) account(name string) *Account {
	for _, a := range p.opts.Accounts {
		if a.Name == name {
			return a
		}
	}
	return nil
}

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>authproxy: {{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;color:#222}h1{font-size:1.4em}.ok{color:#176f2c}.bad{color:#a3261b}</style>
</head><body><h1 class="{{if .OK}}ok{{else}}bad{{end}}">{{.Title}}</h1><p id="message">{{.Message}}</p><p><a href="/">Dashboard</a></p></body></html>
`))

func loginPage(w http.ResponseWriter, status int, title, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = loginTmpl.Execute(w, struct {
		Title, Message string
		OK             bool
	}{title, msg, status == http.StatusOK})
}

// loginStates holds pending interactive logins: single-use, short-lived.
type loginStates struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]pendingLogin
}

type pendingLogin struct {
	account string
	created time.Time
}

const loginStateTTL = 15 * time.Minute

func newLoginStates(now func() time.Time) *loginStates {
	return &loginStates{now: now, m: make(map[string]pendingLogin)}
}

func (l *loginStates) add(account string) (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	state := base64.RawURLEncoding.EncodeToString(b[:])
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var (
		n        int
		oldest   string
		oldestAt time.Time
	)
	for k, v := range l.m { // expire old entries; the map stays small
		if now.Sub(v.created) > loginStateTTL {
			delete(l.m, k)
			continue
		}
		if v.account != account {
			continue
		}
		n++
		if oldest == "" || v.created.Before(oldestAt) {
			oldest, oldestAt = k, v.created
		}
	}
	// Bounded per account, and the newest is always accepted: the oldest
	// pending login of this account makes room.
	if n >= maxPendingLogins {
		delete(l.m, oldest)
	}
	l.m[state] = pendingLogin{account: account, created: now}
	return state, nil
}

// take consumes state if it is pending for account.
func (l *loginStates) take(account, state string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.m[state]
	if !ok || v.account != account || l.now().Sub(v.created) > loginStateTTL {
		return false
	}
	delete(l.m, state)
	return true
}

// maxPendingLogins bounds the pending logins of one account.
const maxPendingLogins = 8

// LoginURL is the /login/NAME address for account.
func (p *Proxy) LoginURL(account string) string { return p.loginURL(account) }

// CallbackPath is the path of account's callback on the proxy.
func CallbackPath(account string) string { return "/callback/" + url.PathEscape(account) }
