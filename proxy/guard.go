package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/guard"
)

// CodePaused is the kill switch's answer (423).
const CodePaused = "paused"

// orderState travels with a request the account's broker declares an order.
type orderState struct {
	method, path string
	body         json.RawMessage
	journaled    bool
}

// isOrder reports whether r is an order for acct: the broker's own
// declaration, or the type's (Account.Orders) for an unconfigured account.
func (a *Account) isOrder(r *http.Request) bool {
	if d, ok := a.Broker.(auth.OrderDeclarer); ok {
		return d.Orders().Match(r.Method, r.URL.Path)
	}
	return a.Orders.Match(r.Method, r.URL.Path)
}

// markOrder notes that r is an order, when the guard is on.
func (x *exchange) markOrder(r *http.Request) {
	if x.p.opts.Guard == nil || x.acct.bypasses(r) || !x.acct.isOrder(r) {
		return
	}
	x.ord = &orderState{method: r.Method, path: safePath(r.URL.Path)}
}

// guardOrder captures the client's own body (before any injection) for the
// journal and applies the kill switch.
func (x *exchange) guardOrder(r *http.Request) error {
	if x.ord == nil {
		return nil
	}
	x.ord.body = guard.ScrubBody(x.body, r.Header.Get("Content-Type"))
	return x.p.pausedError(x.acct.Name)
}

func (p *Proxy) pausedError(name string) error {
	if !p.opts.Guard.Paused(name) {
		return nil
	}
	return &ClientError{Status: http.StatusLocked, Code: CodePaused, Account: name,
		Message: fmt.Sprintf("orders for account %q are paused (kill switch); nothing was sent to the broker", name),
		Hint:    "authproxy resume " + name}
}

// orderSlot waits for the account's rate guard right before an order goes
// to the broker (a replay after a rejected token takes a slot of its own)
// and checks the kill switch again, for orders that waited in line.
func (x *exchange) orderSlot(ctx context.Context) (func(), error) {
	if x.ord == nil {
		return func() {}, nil
	}
	p, name := x.p, x.acct.Name
	release, err := p.opts.Guard.Limiter(name).Acquire(ctx)
	var rl *guard.RateLimitedError
	switch {
	case errors.As(err, &rl):
		return nil, &ClientError{Status: http.StatusTooManyRequests, Code: CodeRateLimited, Account: name,
			RetryAfter: rl.RetryAfter,
			Message: fmt.Sprintf("more than %d orders per second for account %q: this order waited %s in line and was not sent to the broker",
				rl.Limit, name, guard.MaxWait),
			Hint: "send orders more slowly, or raise [brokers." + name + "] max_orders_per_second (0 turns the limit off)"}
	case err != nil:
		return nil, err
	}
	if err := p.pausedError(name); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// recordOrder journals an order once: with the broker's answer (resp, whose
// body is peeked and left whole) or with the proxy's own answer.
func (x *exchange) recordOrder(resp *http.Response) {
	if x.ord == nil || x.ord.journaled {
		return
	}
	p := x.p
	x.ord.journaled = true
	e := guard.Entry{Time: x.start.UTC(), Account: x.acct.Name, Broker: x.acct.Type,
		Method: x.ord.method, Path: x.ord.path, Body: x.ord.body, Status: x.status, Outcome: x.outcome,
		DurationMS: float64(p.opts.Now().Sub(x.start).Microseconds()) / 1000}
	if resp != nil {
		e.Status = resp.StatusCode
		body := peeker(resp)()
		e.Outcome = guard.Outcome(resp.StatusCode, body)
		e.OrderID = guard.OrderID(body)
	}
	if e.Outcome == "" {
		e.Outcome = "error"
	}
	p.opts.Guard.Record(e)
}

// guardEndpoints mounts the kill switch and the journal on the proxy's own
// endpoints.
func (p *Proxy) guardEndpoints(mux *http.ServeMux) {
	if p.opts.Guard == nil {
		return
	}
	for _, action := range []string{"pause", "resume"} {
		h := p.requireUser(p.servePause(action == "pause"))
		mux.HandleFunc("POST /"+action, h)
		mux.HandleFunc("POST /"+action+"/{name}", h)
	}
	mux.HandleFunc("GET /journal", p.requireUser(p.serveJournal))
	mux.HandleFunc("GET "+dashGuardJSPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write([]byte(dashGuardJS))
	})
}

// PauseReply is the answer to POST /pause and /resume.
type PauseReply struct {
	Changed []string `json:"changed"` // accounts whose state changed
	Paused  []string `json:"paused"`  // every paused account afterwards
}

// checkSameOrigin refuses state changes a page of another site could send:
// a cross-site or same-site fetch, a foreign Origin, or a simple content
// type (a plain HTML form cannot send application/json, and no CORS
// preflight is ever answered).
func checkSameOrigin(r *http.Request) error {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return errors.New("cross-site requests may not pause or resume accounts")
	}
	if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host && o != "https://"+r.Host {
		return fmt.Errorf("origin %q may not pause or resume accounts", o)
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return errors.New("send Content-Type: application/json")
	}
	return nil
}

func (p *Proxy) servePause(paused bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := checkSameOrigin(r); err != nil {
			(&ClientError{Status: http.StatusForbidden, Code: CodeForbidden, Message: err.Error()}).write(w)
			return
		}
		var names []string
		if n := r.PathValue("name"); n != "" {
			if p.account(n) == nil {
				(&ClientError{Status: http.StatusNotFound, Code: CodeNoAccount, Account: n,
					Message: fmt.Sprintf("no account %q in the config", n)}).write(w)
				return
			}
			names = []string{n}
		} else {
			for _, a := range p.opts.Accounts {
				names = append(names, a.Name)
			}
		}
		by := "api"
		if r.Header.Get("Sec-Fetch-Site") != "" {
			by = "dashboard"
		} else if strings.HasPrefix(r.Header.Get("User-Agent"), "authproxy") {
			by = "cli"
		}
		changed, err := p.opts.Guard.SetPaused(names, paused, by)
		if err != nil {
			(&ClientError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: err.Error()}).write(w)
			return
		}
		if changed == nil {
			changed = []string{}
		}
		writeJSON(w, PauseReply{Changed: changed, Paused: p.opts.Guard.PausedAccounts()})
	}
}

// serveJournal answers the latest journal entries (newest first):
// ?account=NAME narrows them, ?limit=N (at most 50).
func (p *Proxy) serveJournal(w http.ResponseWriter, r *http.Request) {
	n := 50
	if s := r.URL.Query().Get("limit"); s != "" {
		if v, err := strconv.Atoi(s); err == nil && v >= 0 && v < n {
			n = v
		}
	}
	acct := r.URL.Query().Get("account")
	out := []guard.Entry{}
	for _, e := range p.opts.Guard.Recent(50) {
		if len(out) < n && (acct == "" || e.Account == acct) {
			out = append(out, e)
		}
	}
	writeJSON(w, out)
}

func writeJSON(w http.ResponseWriter, v any) {
	data, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(data, '\n'))
}

// addGuardStatus fills the kill switch and rate guard into the report.
func (p *Proxy) addGuardStatus(rep *StatusReport) {
	if p.opts.Guard == nil {
		return
	}
	for i := range rep.Accounts {
		as := &rep.Accounts[i]
		as.MaxOrdersPerSecond = p.opts.Guard.Limit(as.Name)
		if since, ok := p.opts.Guard.PausedSince(as.Name); ok {
			as.Paused = true
			s := since.UTC()
			as.PausedSince = &s
		}
	}
}
