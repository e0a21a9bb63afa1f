package fivepaisa

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/authproxy/authproxy/internal/fakebroker/fakehttp"

	"github.com/coder/websocket"
)

// The market-feed WebSocket (brokers.md §3): wss://<a|b|>openfeed.5paisa.com
// /feeds/api/chat?Value1=<access token>|<client code>. The credentials are
// checked before the upgrade; wrong ones get HTTP 401, as 5paisa's handshake
// does.
const (
	FeedHost  = "openfeed.5paisa.com"
	FeedHostA = "aopenfeed.5paisa.com"
	FeedHostB = "bopenfeed.5paisa.com"
	FeedPath  = "/feeds/api/chat"
)

const (
	feedLifetime = time.Minute // a fake socket never outlives this
	feedReadMax  = 64 << 10
)

// FeedHosts returns the feed host names.
func FeedHosts() []string { return []string{FeedHost, FeedHostA, FeedHostB} }

// FeedConn is one market-feed handshake the fake saw.
type FeedConn struct {
	Host       string
	RawQuery   string
	Extensions string // the Sec-WebSocket-Extensions the client offered
	Accepted   bool   // the credentials were right and the socket opened
	Subscribed int    // subscribe requests answered on it
	// Home: the socket is on the feed host the token's RedirectServer
	// names, the only one where 5paisa pushes order updates.
	Home bool
}

// redirectServer is the RedirectServer claim of the tokens issued.
func (f *Fake) redirectServer() string {
	if f.opts.RedirectServer == "" {
		return "C"
	}
	return f.opts.RedirectServer
}

// HomeFeedHost is the feed host named by the RedirectServer claim.
func (f *Fake) HomeFeedHost() string {
	switch f.redirectServer() {
	case "A":
		return FeedHostA
	case "B":
		return FeedHostB
	}
	return FeedHost
}

func isFeedHost(h string) bool {
	return h == FeedHost || h == FeedHostA || h == FeedHostB
}

// FeedConns returns every feed handshake seen, in order.
func (f *Fake) FeedConns() []FeedConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]FeedConn(nil), f.feeds...)
}

// feedClient checks Value1 (exactly one) against the live access tokens:
// the token must be live and issued to the client code it is paired with.
func (f *Fake) feedClient(r *http.Request) (string, bool) {
	vals := r.URL.Query()["Value1"]
	if len(vals) != 1 {
		return "", false
	}
	tok, code, ok := strings.Cut(vals[0], "|")
	if !ok || tok == "" || code == "" {
		return "", false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	it, ok := f.accTokens[tok]
	if !ok || !f.validSig(tok) || it.revoked || !f.opts.Now().Before(it.expiry) || !equal(it.client, code) {
		return "", false
	}
	return it.client, true
}

// serveFeed is the market-feed socket: a subscribe request
// ({"Method":"MarketFeedV3","Operation":"Subscribe","ClientCode":...,
// "MarketFeedData":[...]}) with the socket's client code is answered with
// one JSON array of ticks; any other message with {"Status":2,...}.
func (f *Fake) serveFeed(w http.ResponseWriter, r *http.Request) {
	f.record(r, nil, "feed")
	client, ok := f.feedClient(r)
	f.mu.Lock()
	idx := len(f.feeds)
	f.feeds = append(f.feeds, FeedConn{Host: hostOf(r), RawQuery: r.URL.RawQuery,
		Extensions: r.Header.Get("Sec-WebSocket-Extensions"), Accepted: ok, Home: hostOf(r) == f.HomeFeedHost()})
	f.mu.Unlock()
	if !ok {
		fakehttp.WriteJSON(w, http.StatusUnauthorized, statusBody{Message: "Unauthorized", Status: 401})
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(feedReadMax)
	ctx, cancel := context.WithTimeout(context.Background(), feedLifetime)
	defer cancel()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		var req struct {
			Method, Operation, ClientCode string
			MarketFeedData                []struct {
				Exch, ExchType string
				ScripCode      json.RawMessage
			}
		}
		var out any
		if typ == websocket.MessageText && json.Unmarshal(msg, &req) == nil &&
			strings.EqualFold(req.Operation, "Subscribe") && req.ClientCode == client && len(req.MarketFeedData) > 0 {
			ticks := make([]map[string]any, 0, len(req.MarketFeedData))
			for i, q := range req.MarketFeedData {
				ticks = append(ticks, map[string]any{"Exch": q.Exch, "ExchType": q.ExchType,
					"Token": raw(q.ScripCode, "0"), "LastRate": 430.0 + float64(i), "Time": 33000, "TotalQty": 123456})
			}
			out = ticks
			f.mu.Lock()
			f.feeds[idx].Subscribed++
			f.mu.Unlock()
		} else {
			out = statusBody{Message: MsgInvalidInput, Status: StatusBadInput}
		}
		b, _ := json.Marshal(out)
		if err := c.Write(ctx, websocket.MessageText, b); err != nil {
			return
		}
	}
}
