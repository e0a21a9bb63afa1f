package proxy

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// TokenHeader must accompany POST /token/NAME. A browser cannot add it to a
// cross-site request without a CORS preflight, which the proxy never
// grants, so no web page can read a token.
const TokenHeader = "X-Authproxy-Token-Request"

// TokenAnswer is the /token/NAME document.
type TokenAnswer struct {
	Account string     `json:"account"`
	Token   string     `json:"token"`
	Expiry  *time.Time `json:"expiry,omitempty"`
}

// serveToken hands the account's current token (logging in if needed, in
// this process's one session) to `authproxy token NAME`, so that the
// command never opens a second broker session while the proxy runs. It is
// guarded like /status ([proxy_auth] users, the user's allow-listed
// accounts) and refuses anything a web page could send.
func (p *Proxy) serveToken(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if r.Header.Get(TokenHeader) != "1" || r.Header.Get("Origin") != "" ||
		(r.Header.Get("Sec-Fetch-Site") != "" && r.Header.Get("Sec-Fetch-Site") != "none") {
		(&ClientError{Status: http.StatusForbidden, Code: CodeForbidden, Account: name,
			Message: "tokens are handed only to `authproxy token NAME`"}).write(w)
		return
	}
	if len(p.opts.Users) > 0 && p.opts.UserAccounts != nil {
		// The [proxy_auth] accounts allow-list, as for proxied requests.
		user, _, _ := r.BasicAuth()
		if !slices.Contains(p.opts.UserAccounts[user], name) {
			(&ClientError{Status: http.StatusForbidden, Code: CodeForbidden, Account: name,
				Message: "proxy user " + user + " may not use account " + name}).write(w)
			return
		}
	}
	a := p.account(name)
	if a == nil {
		http.Error(w, "authproxy: no account "+name, http.StatusNotFound)
		return
	}
	if len(a.Missing) > 0 || a.Source == nil {
		(&ClientError{Status: http.StatusBadGateway, Code: CodeNotConfigured, Account: name,
			Message: "account " + name + " is not configured: unset environment variables " + strings.Join(a.Missing, ", ")}).write(w)
		return
	}
	tok, err := p.token(r.Context(), a, nil)
	if err == nil && !tok.Valid(p.opts.Now()) {
		err = &ClientError{Status: http.StatusBadGateway, Code: CodeLoginFailed, Account: name, Message: "no valid token could be obtained"}
	}
	if err != nil {
		ce := classify(err, name, p.opts.Now(), p.loginURL)
		if ce.Status == 499 {
			return
		}
		ce.write(w)
		return
	}
	ans := TokenAnswer{Account: name, Token: tok.Access.Reveal()}
	if !tok.Expiry.IsZero() {
		exp := tok.Expiry.UTC()
		ans.Expiry = &exp
	}
	p.log.Info("token handed to a local command", "account", name)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(ans)
}
