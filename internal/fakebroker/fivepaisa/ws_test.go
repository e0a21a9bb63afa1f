package fivepaisa

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestFeedSocket(t *testing.T) {
	f, c := newFake()
	tok := exchange(t, f, login(t, f, c))
	srv := httptest.NewServer(f)
	defer srv.Close()
	base := "ws" + strings.TrimPrefix(srv.URL, "http") + "/Feeds/API/chat"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for name, query := range map[string]string{
		"no credentials": "",
		"placeholder":    "?Value1=x|50012322",
		"wrong client":   "?Value1=" + tok + "|99999999",
		"no client":      "?Value1=" + tok,
		"twice":          "?Value1=" + tok + "|50012322&Value1=" + tok + "|50012322",
	} {
		_, resp, err := websocket.Dial(ctx, base+query, &websocket.DialOptions{Host: FeedHostA})
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: dial = %v (resp %v), want HTTP 401", name, err, resp)
		}
	}

	conn, _, err := websocket.Dial(ctx, base+"?Value1="+tok+"|50012322", &websocket.DialOptions{Host: FeedHost})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	sub := `{"Method":"MarketFeedV3","Operation":"Subscribe","ClientCode":"50012322","MarketFeedData":[{"Exch":"N","ExchType":"C","ScripCode":1660}]}`
	if err := conn.Write(ctx, websocket.MessageText, []byte(sub)); err != nil {
		t.Fatal(err)
	}
	_, msg, err := conn.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ticks []map[string]any
	if err := json.Unmarshal(msg, &ticks); err != nil || len(ticks) != 1 || ticks[0]["Token"] != 1660.0 {
		t.Fatalf("subscribe answer %s (%v)", msg, err)
	}
	// Another client's code is refused inside the socket.
	if err := conn.Write(ctx, websocket.MessageText, []byte(strings.Replace(sub, "50012322", "1", 1))); err != nil {
		t.Fatal(err)
	}
	if _, msg, err = conn.Read(ctx); err != nil || !strings.Contains(string(msg), `"Status":2`) {
		t.Fatalf("foreign subscribe answer %s (%v)", msg, err)
	}
	conn.Close(websocket.StatusNormalClosure, "")

	feeds := f.FeedConns()
	if len(feeds) != 6 || !feeds[5].Accepted || feeds[5].Subscribed != 1 || feeds[5].Host != FeedHost {
		t.Errorf("FeedConns = %+v", feeds)
	}
	for _, fc := range feeds[:5] {
		if fc.Accepted {
			t.Errorf("accepted bad credentials: %+v", fc)
		}
	}
	// A revoked token no longer opens the socket.
	f.RevokeAll()
	if _, resp, err := websocket.Dial(ctx, base+"?Value1="+tok+"|50012322", &websocket.DialOptions{Host: FeedHost}); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("revoked token: %v", err)
	}
}
