package tradovate

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/authproxy/authproxy/internal/fakebroker/fakehttp"
	"github.com/coder/websocket"
)

// WSPath is the WebSocket endpoint on the demo, live and md hosts
// (brokers.md §2, "WebSocket authentication").
//
// The fake speaks Tradovate's framing: it sends "o", expects the client's
// first message to be "authorize\n<id>\n\n<token>" and answers
// a[{"s":200,"i":<id>}] for a live token of the host's kind (the access
// token on demo/live, the md token on md hosts, an OAuth token anywhere) or
// a[{"s":401,"i":<id>,"d":"Access is denied"}]. After a successful
// authorize it answers requests ("<endpoint>\n<id>\n<query>\n<body>":
// account/list and user/syncrequest on demo/live, md/subscribeQuote on md,
// s 404 for others), and the heartbeat "[]" with "h". Before it, every
// request gets s 401. Each authorize is recorded in [Fake.Requests] as
// Method "WS", Path "authorize", the token's kind and the answer's s as
// Status; each upgrade as its method and path, the Authorization it carried
// (and that token's kind) and Status 101.
const WSPath = "/v1/websocket"

const (
	wsLifetime = time.Minute // a fake socket never outlives this
	wsReadMax  = 64 << 10
)

// wsItem is one element of an "a" frame.
type wsItem struct {
	S int `json:"s"`
	I int `json:"i"`
	D any `json:"d,omitempty"`
}

// serveWS is the WebSocket endpoint. Compression is accepted when the
// client offers it, as a real server's may be.
func (f *Fake) serveWS(w http.ResponseWriter, r *http.Request, host string, md bool) {
	f.recordUpgrade(r, host)
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionContextTakeover})
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(wsReadMax)
	ctx, cancel := context.WithTimeout(context.Background(), wsLifetime)
	defer cancel()
	send := func(s string) bool { return c.Write(ctx, websocket.MessageText, []byte(s)) == nil }
	answer := func(items ...any) bool {
		b, err := json.Marshal(items)
		return err == nil && send("a"+string(b))
	}
	if !send("o") {
		return
	}
	authorized := false
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			_ = c.Close(websocket.StatusUnsupportedData, "text frames only")
			return
		}
		if string(msg) == "[]" {
			if !send("h") {
				return
			}
			continue
		}
		parts := strings.SplitN(string(msg), "\n", 4)
		if len(parts) != 4 {
			_ = c.Close(websocket.StatusPolicyViolation, "malformed request")
			return
		}
		endpoint, body := strings.ToLower(parts[0]), parts[3]
		id, err := strconv.Atoi(parts[1])
		if err != nil {
			_ = c.Close(websocket.StatusPolicyViolation, "malformed request id")
			return
		}
		var ok bool
		switch {
		case endpoint == "authorize":
			authorized = f.wsAuthorize(host, md, body)
			if authorized {
				ok = answer(wsItem{S: http.StatusOK, I: id})
			} else {
				ok = answer(wsItem{S: http.StatusUnauthorized, I: id, D: MsgAccessDenied})
			}
		case !authorized:
			ok = answer(wsItem{S: http.StatusUnauthorized, I: id, D: MsgAccessDenied})
		case !md && endpoint == "account/list":
			ok = answer(wsItem{S: http.StatusOK, I: id, D: []map[string]any{{"id": 1001, "name": "DEMO4242", "userId": fakeUserID, "active": true}}})
		case !md && endpoint == "user/syncrequest":
			ok = answer(wsItem{S: http.StatusOK, I: id, D: map[string]any{"users": []map[string]any{{"id": fakeUserID, "name": f.opts.Username}}}})
		case md && endpoint == "md/subscribequote":
			var req struct {
				Symbol string `json:"symbol"`
			}
			if json.Unmarshal([]byte(body), &req) != nil || req.Symbol == "" {
				ok = answer(wsItem{S: http.StatusBadRequest, I: id, D: "symbol is required"})
				break
			}
			ok = answer(wsItem{S: http.StatusOK, I: id}) && answer(map[string]any{"e": "md", "d": map[string]any{
				"quotes": []map[string]any{{"contractId": 2665267, "symbol": req.Symbol, "entries": map[string]any{
					"Trade": map[string]any{"price": 5001.25, "size": 3}}}}}})
		default:
			ok = answer(wsItem{S: http.StatusNotFound, I: id, D: fmt.Sprintf("unknown endpoint %q", parts[0])})
		}
		if !ok {
			return
		}
	}
}

// recordUpgrade records the upgrade request.
func (f *Fake) recordUpgrade(r *http.Request, host string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec := Recorded{Method: r.Method, Host: host, Path: r.URL.Path,
		Authorization: strings.Join(r.Header.Values("Authorization"), ", "), Status: http.StatusSwitchingProtocols}
	if tok, ok := fakehttp.Bearer(r.Header); ok {
		if ti := f.tokens[tok]; ti != nil && f.liveLocked(ti, f.opts.Now()) {
			rec.TokenKind = ti.kind
		}
	}
	f.appendLocked(rec)
}

// appendLocked records rec, keeping the last maxRecorded.
func (f *Fake) appendLocked(rec Recorded) {
	f.requests = append(f.requests, rec)
	if n := len(f.requests); n > maxRecorded {
		f.requests = f.requests[n-maxRecorded:]
	}
}

// wsAuthorize checks an authorize token for host and records the attempt.
func (f *Fake) wsAuthorize(host string, md bool, tok string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec := Recorded{Method: "WS", Host: host, Path: "authorize", Status: http.StatusUnauthorized}
	if ti := f.tokens[tok]; ti != nil && f.liveLocked(ti, f.opts.Now()) {
		rec.TokenKind = ti.kind
	}
	ok := rec.TokenKind == "oauth" || (md && rec.TokenKind == "md") || (!md && rec.TokenKind == "access")
	if ok {
		rec.Status = http.StatusOK
	}
	f.appendLocked(rec)
	return ok
}
