package tradovate

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestWebSocket(t *testing.T) {
	f, _ := newTestFake()
	login := decode(t, do(f, http.MethodPost, "https://"+HostDemo+"/v1/auth/accesstokenrequest", goodLogin, nil))
	access, _ := login["accessToken"].(string)
	mdTok, _ := login["mdAccessToken"].(string)
	if access == "" || mdTok == "" {
		t.Fatalf("login: %v", login)
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/WebSocket"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// talk sends each message and returns the answers, one per message.
	talk := func(host string, msgs ...string) []string {
		t.Helper()
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Host: host, HTTPHeader: http.Header{"Authorization": {"Bearer " + access}}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if _, o, err := c.Read(ctx); err != nil || string(o) != "o" {
			t.Fatalf("first frame %q, %v", o, err)
		}
		var out []string
		for _, m := range msgs {
			if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
				t.Fatal(err)
			}
			_, a, err := c.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(a))
		}
		c.Close(websocket.StatusNormalClosure, "")
		return out
	}
	check := func(name string, got []string, want ...string) {
		t.Helper()
		for i := range want {
			if i >= len(got) || !strings.HasPrefix(got[i], want[i]) {
				t.Errorf("%s: answer %d = %q, want prefix %q", name, i, got, want[i])
				return
			}
		}
	}

	check("demo, access token",
		talk(HostDemo, "authorize\n2\n\n"+access, "account/list\n3\n\n", "[]", "nope/x\n4\n\n"),
		`a[{"s":200,"i":2}]`, `a[{"s":200,"i":3,"d":[{"active":true`, "h", `a[{"s":404,"i":4`)
	check("demo, md token",
		talk(HostDemo, "authorize\n1\n\n"+mdTok, "account/list\n2\n\n"),
		`a[{"s":401,"i":1,"d":"Access is denied"}]`, `a[{"s":401,"i":2`)
	check("demo, dummy token", talk(HostDemo, "authorize\n7\n\nplaceholder"), `a[{"s":401,"i":7,"d":"Access is denied"}]`)
	check("md, md token",
		talk(HostMD, "authorize\n1\n\n"+mdTok, "md/subscribeQuote\n2\n\n{\"symbol\":\"ESZ6\"}"),
		`a[{"s":200,"i":1}]`, `a[{"s":200,"i":2}]`)
	check("md, access token", talk(HostMD, "authorize\n1\n\n"+access), `a[{"s":401,"i":1`)

	var auths, upgrades int
	for _, r := range f.Requests() {
		switch {
		case r.Method == "WS":
			auths++
		case r.Status == http.StatusSwitchingProtocols:
			upgrades++
			if r.Authorization != "Bearer "+access || r.TokenKind != "access" {
				t.Errorf("upgrade recorded as %+v", r)
			}
		}
	}
	if auths != 5 || upgrades != 5 {
		t.Errorf("recorded %d authorizes and %d upgrades, want 5 and 5", auths, upgrades)
	}
}
