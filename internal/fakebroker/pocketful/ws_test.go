package pocketful

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestFeedSocket(t *testing.T) {
	f, _ := newFake()
	_, tok := login(t, f)
	srv := httptest.NewServer(f)
	defer srv.Close()
	base := "ws" + strings.TrimPrefix(srv.URL, "http") + FeedPath
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for name, query := range map[string]string{
		"none":          "",
		"no login_id":   "?access_token=" + tok,
		"wrong login":   "?login_id=XX0001&access_token=" + tok,
		"dummy token":   "?login_id=YA0002&access_token=dummy",
		"token twice":   "?login_id=YA0002&access_token=" + tok + "&access_token=" + tok,
		"only login_id": "?login_id=YA0002",
	} {
		_, resp, err := websocket.Dial(ctx, base+query, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: dial = %v, want HTTP 401", name, err)
		}
	}
	if c := f.Counts(); c.TokenRejections != 6 {
		t.Errorf("TokenRejections = %d, want 6", c.TokenRejections)
	}

	conn, _, err := websocket.Dial(ctx, base+"?login_id=YA0002&access_token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	for _, m := range []string{`{"a":"h","v":[],"m":""}`, `{"a":"subscribe","v":[[1,22],[2,3045]],"m":"marketdata"}`} {
		if err := conn.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range [][]byte{FeedPacket(1, 22, 142050), FeedPacket(2, 3045, 142051)} {
		typ, msg, err := conn.Read(ctx)
		if err != nil || typ != websocket.MessageBinary || !bytes.Equal(msg, want) {
			t.Fatalf("packet %d: %v %x (%v)", i, typ, msg, err)
		}
	}
	if err := conn.Write(ctx, websocket.MessageText, []byte(`nonsense`)); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := conn.Read(ctx); err != nil || !strings.Contains(string(msg), "InputException") {
		t.Fatalf("bad request answer %s (%v)", msg, err)
	}
	conn.Close(websocket.StatusNormalClosure, "")
	feeds := f.FeedConns()
	if len(feeds) != 7 || !feeds[6].Accepted || feeds[6].Subscribed != 1 || feeds[6].Heartbeats != 1 {
		t.Errorf("FeedConns = %+v", feeds)
	}
	f.Expire()
	if _, resp, err := websocket.Dial(ctx, base+"?login_id=YA0002&access_token="+tok, nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("expired token: %v", err)
	}
}
