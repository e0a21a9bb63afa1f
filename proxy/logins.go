package proxy

import (
	"crypto/rand"
	"encoding/base64"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/authproxy/authproxy/auth"
)

// Logins serves interactive browser logins: GET /login/NAME sends the
// browser to the broker's consent page with a fresh single-use state, and
// GET /callback/NAME checks that state, exchanges the code and stores the
// token. It needs only the accounts: the proxy mounts it on its own
// endpoints, and `authproxy login` serves it alone when no proxy runs.
type Logins struct {
	log      *slog.Logger
	now      func() time.Time
	listen   string
	accounts []*Account
	pending  *loginStates
}

// LoginsOptions configure [Logins].
type LoginsOptions struct {
	Logger   *slog.Logger
	Listen   string // the address the browser uses, for /login/NAME URLs
	Accounts []*Account
	Now      func() time.Time
}

// NewLogins returns the login handlers for opts.Accounts.
func NewLogins(opts LoginsOptions) *Logins {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Logins{log: opts.Logger, now: opts.Now, listen: opts.Listen, accounts: opts.Accounts,
		pending: newLoginStates(opts.Now)}
}

// URL is the /login/NAME address for account.
func (l *Logins) URL(account string) string { return loginURL(l.listen, account) }

func loginURL(listen, account string) string { return "http://" + listen + "/login/" + account }

func (l *Logins) account(name string) *Account { return findAccount(l.accounts, name) }

// ServeLogin starts an interactive login: it remembers a fresh state and
// redirects the browser to the broker's consent page.
func (l *Logins) ServeLogin(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	// A page of another site must not start (nor, by filling the pending
	// logins, block) a login: only a top-level navigation, the dashboard's
	// button or a non-browser client (no Sec-Fetch-Site, or none /
	// same-origin) may.
	if crossSiteRequest(r) {
		loginPage(w, http.StatusForbidden, "Login refused",
			"A page of another site tried to start a login for "+name+". Open "+l.URL(name)+" yourself, or run `authproxy login "+name+"`.")
		return
	}
	a := l.account(name)
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
	state, err := l.pending.add(name)
	if err != nil {
		loginPage(w, http.StatusInternalServerError, "Login could not start", err.Error())
		return
	}
	http.Redirect(w, r, ia.AuthURL(state, a.RedirectURI), http.StatusFound)
}

// ServeCallback receives the broker's redirect after a browser login: it
// checks state, exchanges the code and stores the token. It is mounted at
// /callback/NAME on the proxy and on any extra loopback callback listener.
func (l *Logins) ServeCallback(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == "" {
		name = strings.TrimPrefix(r.URL.Path, "/callback/")
	}
	a := l.account(name)
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
	if !l.pending.take(name, state) {
		loginPage(w, http.StatusBadRequest, "Login refused: unknown or used state",
			"This login link is stale, was already used, or did not come from this authproxy. Start again at "+l.URL(name)+".")
		return
	}
	tok, err := ia.Exchange(r.Context(), a.RedirectURI, q)
	if err != nil {
		ce := classify(err, name, l.now(), l.URL)
		l.log.Warn("interactive login failed", "account", name, "err", ce.Message)
		loginPage(w, http.StatusBadGateway, "Login failed", ce.Message)
		return
	}
	if err := a.Source.Set(r.Context(), tok); err != nil {
		loginPage(w, http.StatusInternalServerError, "Login could not be saved", err.Error())
		return
	}
	l.log.Info("interactive login complete", "account", name, "expiry", tok.Expiry)
	msg := "authproxy now holds a token for " + name
	if !tok.Expiry.IsZero() {
		msg += ", valid until " + tok.Expiry.Local().Format("2006-01-02 15:04 MST")
	}
	loginPage(w, http.StatusOK, "Logged in", msg+". You can close this tab; your scripts will work now.")
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

// CallbackPath is the path of account's callback on the proxy.
func CallbackPath(account string) string { return "/callback/" + url.PathEscape(account) }
