package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/auth"
)

// queryBroker puts the token in the query and leaves headers alone: the
// client's own Authorization must still not reach the broker.
type queryBroker struct{ fakeBroker }

func (queryBroker) Inject(r *http.Request, t *auth.Token) error {
	q := r.URL.Query()
	q.Set("token", t.Access.Reveal())
	r.URL.RawQuery = q.Encode()
	return nil
}

func TestPipelineStripsClientCredentials(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.Accounts[0].Broker = queryBroker{} })
	resp, _ := e.do(t, "GET", "/orders", "", map[string]string{"Authorization": "Bearer from-client"})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := e.up.seen(); len(got) != 1 || got[0] != "" {
		t.Fatalf("upstream saw Authorization %q, want none: the client's own is stripped for every broker", got)
	}
	// A bypassed request (the broker's own login endpoints) is untouched.
	resp, _ = e.do(t, "POST", "/auth/login", `{}`, map[string]string{"Authorization": "Basic client"})
	if resp.StatusCode != 200 {
		t.Fatalf("bypass status %d", resp.StatusCode)
	}
	if got := e.up.seen(); len(got) != 2 || got[1] != "Basic client" {
		t.Fatalf("bypass: upstream saw Authorization %q, want the client's own", got)
	}
}

func TestStripClientCredentialsAnySpelling(t *testing.T) {
	// A client (or HTTP/2) can deliver a non-canonical key; it goes too.
	h := http.Header{"authorization": {"Bearer x"}, "AUTHORIZATION": {"y"}, "Authorization": {"a", "b"}, "X-Other": {"kept"},
		"x-privatekey": {"client"}, "X-Privatekey": {"client"}}
	stripClientCredentials(h, fakeBroker{})
	for k := range h {
		if strings.EqualFold(k, "Authorization") {
			t.Errorf("%q survived: %v", k, h)
		}
	}
	if h.Get("X-Other") != "kept" || len(h.Values("X-PrivateKey")) != 1 {
		t.Errorf("other headers lost: %v", h)
	}
	// A broker's own credential headers go too.
	stripClientCredentials(h, keyBroker{})
	for k := range h {
		if strings.EqualFold(k, "X-PrivateKey") {
			t.Errorf("%q survived: %v", k, h)
		}
	}
	if h.Get("X-Other") != "kept" {
		t.Errorf("other headers lost: %v", h)
	}
}

type keyBroker struct{ fakeBroker }

func (keyBroker) CredentialHeaders() []string { return []string{"X-PrivateKey"} }

// LocalOnly (the temporary login server of `authproxy login`) answers only
// requests addressed to its own address or a loopback name, as the proxy's
// own endpoints do.
func TestLocalOnlyChecksHost(t *testing.T) {
	h := LocalOnly("127.0.0.1:8899", nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("served"))
	}))
	for host, want := range map[string]int{"127.0.0.1:8899": 200, "localhost:8899": 200, "evil.test:8899": http.StatusForbidden} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "http://"+host+"/login/pf", nil)
		h.ServeHTTP(rec, r)
		if rec.Code != want {
			t.Errorf("Host %s: %d, want %d (%s)", host, rec.Code, want, rec.Body)
		}
	}
}
