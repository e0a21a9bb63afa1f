package pocketful

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// FeedPath is the market-data WebSocket (brokers.md §4):
// wss://trade.pocketful.in/ws/v1/feeds?login_id=<client id>&access_token=<token>.
// The query credentials are checked before the upgrade; wrong ones get HTTP
// 401 with a TokenException body.
const FeedPath = "/ws/v1/feeds"

const (
	feedLifetime = time.Minute // a fake socket never outlives this
	feedReadMax  = 64 << 10
)

// FeedConn is one market-data handshake the fake saw.
type FeedConn struct {
	RawQuery   string
	Extensions string // the Sec-WebSocket-Extensions the client offered
	Accepted   bool   // the credentials were right and the socket opened
	Subscribed int    // subscribe requests answered on it
	Heartbeats int    // {"a":"h"} messages received
}

// FeedConns returns every market-data handshake seen, in order.
func (f *Fake) FeedConns() []FeedConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]FeedConn(nil), f.feeds...)
}

// feedAuthorized checks login_id and access_token: exactly one of each, the
// account's client id and a live token.
func (f *Fake) feedAuthorized(r *http.Request) bool {
	q := r.URL.Query()
	if len(q["login_id"]) != 1 || len(q["access_token"]) != 1 {
		return false
	}
	return q.Get("login_id") == f.opts.ClientID && f.ValidToken(q.Get("access_token"))
}

// FeedPacket is the binary tick the fake sends for one subscribed
// instrument: mode (1 byte, 1), exchange code (1 byte), instrument token
// (uint32), last traded price in paise (uint32), all big-endian.
func FeedPacket(exchange byte, token, ltpPaise uint32) []byte {
	b := []byte{1, exchange}
	b = binary.BigEndian.AppendUint32(b, token)
	return binary.BigEndian.AppendUint32(b, ltpPaise)
}

// serveFeed is the market-data socket: {"a":"subscribe","v":[[exch,token],
// ...],"m":<mode>} is answered with one binary FeedPacket per instrument;
// a heartbeat {"a":"h",...} is counted and not answered; anything else gets
// a JSON error message.
func (f *Fake) serveFeed(w http.ResponseWriter, r *http.Request) {
	ok := f.feedAuthorized(r)
	f.mu.Lock()
	idx := len(f.feeds)
	f.feeds = append(f.feeds, FeedConn{RawQuery: r.URL.RawQuery,
		Extensions: r.Header.Get("Sec-WebSocket-Extensions"), Accepted: ok})
	f.mu.Unlock()
	if !ok {
		f.rejected(w, http.StatusUnauthorized, "invalid login_id or access_token")
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
			A string     `json:"a"`
			V [][]uint32 `json:"v"`
			M string     `json:"m"`
		}
		valid := typ == websocket.MessageText && json.Unmarshal(msg, &req) == nil
		switch {
		case valid && req.A == "h":
			f.mu.Lock()
			f.feeds[idx].Heartbeats++
			f.mu.Unlock()
		case valid && strings.EqualFold(req.A, "subscribe") && len(req.V) > 0:
			f.mu.Lock()
			f.feeds[idx].Subscribed++
			f.mu.Unlock()
			for i, inst := range req.V {
				if len(inst) != 2 || inst[0] > 0xff {
					continue
				}
				if err := c.Write(ctx, websocket.MessageBinary, FeedPacket(byte(inst[0]), inst[1], 142050+uint32(i))); err != nil {
					return
				}
			}
		default:
			b, _ := json.Marshal(map[string]string{"status": "error", "error_type": InputException, "message": "unknown request"})
			if err := c.Write(ctx, websocket.MessageText, b); err != nil {
				return
			}
		}
	}
}
