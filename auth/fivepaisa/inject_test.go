package fivepaisa

import (
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
)

func TestRewriteBody(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty head and code", `{"head":{},"body":{"ClientCode":""}}`,
			`{"head":{"key":"K"},"body":{"ClientCode":"C"}}`},
		{"body only", `{"body":{}}`, `{"head":{"key":"K"},"body":{"ClientCode":"C"}}`},
		{"empty object", `{}`, `{"head":{"key":"K"},"body":{"ClientCode":"C"}}`},
		{"order and bytes kept", "{ \"x\" : [1, 2,\n 3], \"body\": {\"Qty\": 1.50, \"ClientCode\": \"old\", \"Exch\":\"N\"}, \"head\" : {\"appName\":\"a\"} }",
			"{\"x\" : [1, 2,\n 3],\"body\":{\"Qty\": 1.50,\"ClientCode\":\"C\",\"Exch\":\"N\"},\"head\":{\"key\":\"K\",\"appName\":\"a\"}}"},
		{"key variants collapse", `{"head":{"a":1,"Key":"x","KEY":"y","key":"z"},"body":{"ClientCode":"1","ClientCode":"2"}}`,
			`{"head":{"a":1,"key":"K"},"body":{"ClientCode":"C"}}`},
		{"client code case variants are dropped", `{"head":{"key":"K"},"body":{"clientcode":"x","a":1,"CLIENTCODE":"y"}}`,
			`{"head":{"key":"K"},"body":{"ClientCode":"C","a":1}}`},
		{"non-object head and body", `{"head":null,"body":[1]}`, `{"head":{"key":"K"},"body":{"ClientCode":"C"}}`},
		{"missing body goes after head", `{"a":1,"head":{"key":"old"},"z":2}`,
			`{"a":1,"head":{"key":"K"},"body":{"ClientCode":"C"},"z":2}`},
		{"escaped key names", `{"h\u0065ad":{"k\u0045y":1},"bod\u0079":{}}`,
			`{"h\u0065ad":{"key":"K"},"bod\u0079":{"ClientCode":"C"}}`},
		{"nested lookalikes untouched", `{"body":{"head":{"key":"n"},"o":{"ClientCode":"n"}}}`,
			`{"head":{"key":"K"},"body":{"ClientCode":"C","head":{"key":"n"},"o":{"ClientCode":"n"}}}`},
		{"strings with braces", `{"note":"}{\"],","body":{"s":"\\\"}"}}`,
			`{"head":{"key":"K"},"note":"}{\"],","body":{"ClientCode":"C","s":"\\\"}"}}`},
		{"duplicate heads", `{"head":{"a":1},"head":{"b":2}}`,
			`{"head":{"key":"K","a":1},"body":{"ClientCode":"C"},"head":{"key":"K","b":2}}`},
		{"surrounding space", " \n{\"head\":{}}\t", `{"head":{"key":"K"},"body":{"ClientCode":"C"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RewriteBody([]byte(tc.in), "K", "C")
			if err != nil {
				t.Fatalf("RewriteBody: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("got\n %s\nwant\n %s", got, tc.want)
			}
		})
	}
}

func TestRewriteBodyRejects(t *testing.T) {
	for _, in := range []string{``, `not json`, `{"head":`, `[{"head":{}}]`, `"x"`, `null`, `{"a":1} {"b":2}`, `{"a":1,}`, "{\"a\":\"\x00\"}"} {
		out, err := RewriteBody([]byte(in), "SecretAppKey", "C")
		if !errors.Is(err, auth.ErrBadRequest) || out != nil {
			t.Errorf("RewriteBody(%q) = %q, %v; want ErrBadRequest", in, out, err)
			continue
		}
		if strings.Contains(err.Error(), "SecretAppKey") {
			t.Errorf("error quotes the app key: %v", err)
		}
	}
}

func TestRewriteBodyEscapesValues(t *testing.T) {
	got, err := RewriteBody([]byte(`{}`), `a"b\c`, "<c>")
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"head":{"key":"a\"b\\c"},"body":{"ClientCode":"\u003cc\u003e"}}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// testBroker is a Broker with no network use, for Inject/Rejected/Bypass.
func testBroker(t *testing.T) *Broker {
	t.Helper()
	b, err := New(Config{Account: "fp", AppKey: "APPKEY123", UserID: "u", EncryptionKey: "e",
		ClientCode: "CFG1", PIN: "1234", TOTPSecret: testSecret}, auth.NewHTTPClient(nil, nil, auth.RetryOptions{}), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInject(t *testing.T) {
	b := testBroker(t)
	tok := &auth.Token{Access: "tok.en.x", Meta: map[string]string{"client_code": "50012322"}}
	tests := []struct {
		name     string
		url      string
		ct       string
		body     *string
		wantBody string
		wantCT   string
		wantErr  error
	}{
		{name: "json", url: ServiceURL + "/V3/OrderBook", ct: "application/json",
			body: ptr(`{"head":{},"body":{"ClientCode":""}}`), wantBody: `{"head":{"key":"APPKEY123"},"body":{"ClientCode":"50012322"}}`, wantCT: "application/json"},
		{name: "json with charset", url: ServiceURL + "/V3/OrderBook", ct: "application/json; charset=utf-8",
			body: ptr(`{"body":{}}`), wantBody: `{"head":{"key":"APPKEY123"},"body":{"ClientCode":"50012322"}}`, wantCT: "application/json; charset=utf-8"},
		{name: "no content type, object untouched", url: ServiceURL + "/V3/OrderBook",
			body: ptr("  \n{\"body\":{}}"), wantBody: "  \n{\"body\":{}}"},
		{name: "no content type, not an object", url: ServiceURL + "/V3/OrderBook",
			body: ptr("hello"), wantBody: "hello"},
		{name: "text/plain untouched", url: ServiceURL + "/V3/OrderBook", ct: "text/plain",
			body: ptr(`{"head":{}}`), wantBody: `{"head":{}}`, wantCT: "text/plain"},
		{name: "form untouched", url: ServiceURL + "/V3/OrderBook", ct: "application/x-www-form-urlencoded",
			body: ptr(`a=b`), wantBody: `a=b`, wantCT: "application/x-www-form-urlencoded"},
		{name: "bodiless", url: ServiceURL + "/V3/OrderBook", ct: "application/json", wantCT: "application/json"},
		{name: "empty json body", url: ServiceURL + "/V3/OrderBook", ct: "application/json", body: ptr(""), wantBody: "", wantCT: "application/json"},
		{name: "feed host header only", url: "https://openfeed.5paisa.com/Feeds/api/chat", ct: "application/json",
			body: ptr(`{"body":{}}`), wantBody: `{"body":{}}`, wantCT: "application/json"},
		{name: "labelled json, not json", url: ServiceURL + "/V3/OrderBook", ct: "application/json",
			body: ptr(`not json`), wantErr: auth.ErrBadRequest},
		{name: "json array", url: ServiceURL + "/V3/OrderBook", ct: "application/vnd.x+json",
			body: ptr(`[1]`), wantErr: auth.ErrBadRequest},
		{name: "brace without content type untouched", url: ServiceURL + "/V3/OrderBook",
			body: ptr(`{oops`), wantBody: `{oops`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r *http.Request
			if tc.body == nil {
				r, _ = http.NewRequest(http.MethodPost, tc.url, nil)
			} else {
				r, _ = http.NewRequest(http.MethodPost, tc.url, strings.NewReader(*tc.body))
			}
			r.Header.Set("Content-Length", "999")
			if tc.ct != "" {
				r.Header.Set("Content-Type", tc.ct)
			}
			r.Header.Add("Authorization", "Bearer client")
			err := b.Inject(r, tok)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Inject = %v, want %v", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "APPKEY123") {
					t.Errorf("error quotes the app key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Inject: %v", err)
			}
			var auths []string
			for k, v := range r.Header {
				if strings.EqualFold(k, "Authorization") {
					auths = append(auths, v...)
				}
			}
			if len(auths) != 1 || auths[0] != "bearer tok.en.x" {
				t.Errorf("Authorization = %q, want exactly [bearer tok.en.x]", auths)
			}
			if got := r.Header.Get("Content-Type"); got != tc.wantCT {
				t.Errorf("Content-Type %q, want %q", got, tc.wantCT)
			}
			if tc.body == nil {
				if r.Body != nil && r.Body != http.NoBody {
					t.Error("a bodiless request got a body")
				}
				return
			}
			got, _ := io.ReadAll(r.Body)
			if string(got) != tc.wantBody {
				t.Errorf("body %q, want %q", got, tc.wantBody)
			}
			rewritten := string(got) != *tc.body
			if r.ContentLength != int64(len(tc.wantBody)) || (rewritten && r.Header.Get("Content-Length") == "999") {
				t.Errorf("ContentLength %d (header %q), want %d", r.ContentLength, r.Header.Get("Content-Length"), len(tc.wantBody))
			}
			if r.GetBody != nil {
				again, _ := r.GetBody()
				g2, _ := io.ReadAll(again)
				if string(g2) != tc.wantBody {
					t.Errorf("GetBody gives %q", g2)
				}
			}
		})
	}
}

func TestInjectClientCodeFallback(t *testing.T) {
	b := testBroker(t)
	r, _ := http.NewRequest(http.MethodPost, ServiceURL+"/V3/OrderBook", strings.NewReader(`{}`))
	r.Header.Set("Content-Type", "application/json")
	if err := b.Inject(r, &auth.Token{Access: "t"}); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r.Body)
	if want := `{"head":{"key":"APPKEY123"},"body":{"ClientCode":"CFG1"}}`; string(got) != want {
		t.Errorf("body %s, want %s", got, want)
	}
	if err := b.Inject(r, nil); err == nil {
		t.Error("Inject accepted a nil token")
	}
}

func ptr(s string) *string { return &s }

func TestRejected(t *testing.T) {
	b := testBroker(t)
	tests := []struct {
		name   string
		status int
		ct     string
		body   string
		want   bool
	}{
		{"401", 401, "text/html", "<html>", true},
		{"status 9", 200, "application/json", `{"head":{"status":"0","statusDescription":"Success"},"body":{"Message":"Invalid Session","Status":9}}`, true},
		{"status string 9", 200, "application/json", `{"body":{"Status":"9"}}`, true},
		{"message only", 200, "application/json; charset=utf-8", `{"body":{"Message":"invalid session"}}`, true},
		{"top-level message", 200, "", `{"Message":"Invalid Session"}`, true},
		{"success", 200, "application/json", `{"head":{"status":"0"},"body":{"Message":"Success","Status":0}}`, false},
		{"no orders", 200, "application/json", `{"body":{"Message":"No orders","Status":1}}`, false},
		{"invalid head", 200, "application/json", `{"head":{"status":"2","statusDescription":"Invalid head parameters."},"body":null}`, false},
		{"not json", 200, "application/json", `Invalid Session`, false},
		{"head status 9 is not body status", 200, "application/json", `{"head":{"status":"9"},"body":{}}`, false},
		{"500 invalid session", 500, "application/json", `{"body":{"Status":9}}`, true},
	}
	for _, tc := range tests {
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{}}
		if tc.ct != "" {
			resp.Header.Set("Content-Type", tc.ct)
		}
		if got := b.Rejected(resp, func() []byte { return []byte(tc.body) }); got != tc.want {
			t.Errorf("%s: Rejected = %v, want %v", tc.name, got, tc.want)
		}
	}
	// A stream is never peeked at.
	resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}}
	if b.Rejected(resp, func() []byte { t.Error("peeked at a stream"); return nil }) {
		t.Error("stream rejected")
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		in     string
		status int
		msg    string
		ok     bool
	}{
		{`{"body":{"Message":"Invalid Session","Status":9}}`, 9, "Invalid Session", true},
		{`{"body":{"Status":" 2 "}}`, 2, "", true},
		{`{"body":{"Status":-1,"Message":"x"},"Message":"y"}`, -1, "x", true},
		{`{"Message":"y","body":null}`, 0, "y", false},
		{`{"body":{"Status":9.0}}`, 9, "", true},
		{`{"body":{"Status":9.5}}`, 0, "", false},
		{`{"body":{"Status":"abc","Message":"m"}}`, 0, "m", false},
		{`{"body":{"Status":true}}`, 0, "", false},
		{`{"body":"str"}`, 0, "", false},
		{`[1]`, 0, "", false},
		{``, 0, "", false},
		{`{"body":{"Status":9}`, 0, "", false},
	}
	for _, tc := range tests {
		st, msg, ok := ParseStatus([]byte(tc.in))
		if st != tc.status || msg != tc.msg || ok != tc.ok {
			t.Errorf("ParseStatus(%s) = %d, %q, %v; want %d, %q, %v", tc.in, st, msg, ok, tc.status, tc.msg, tc.ok)
		}
	}
}

func TestBypass(t *testing.T) {
	b := testBroker(t)
	tests := []struct {
		url  string
		want bool
	}{
		{"https://openapi.5paisa.com/VendorsAPI/Service1.svc/TOTPLogin", true},
		{"https://Openapi.5paisa.com/vendorsapi/service1.svc/totplogin/", true},
		{"https://openapi.5paisa.com/VendorsAPI/Service1.svc/GetAccessToken", true},
		{"https://openapi.5paisa.com/VendorsAPI/Service1.svc/GETACCESSTOKEN?x=1", true},
		{"https://dev-openapi.5paisa.com/WebVendorLogin/VLogin/Index?VendorKey=x", true},
		{"https://DEV-OPENAPI.5paisa.com:443/anything", true},
		{"https://openapi.5paisa.com/VendorsAPI/Service1.svc/V3/OrderBook", false},
		{"https://openapi.5paisa.com/VendorsAPI/Service1.svc/XTOTPLogin", false},
		{"https://openapi.5paisa.com/TOTPLogin/V3/OrderBook", false},
	}
	for _, tc := range tests {
		r, err := http.NewRequest(http.MethodPost, tc.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.Bypass(r); got != tc.want {
			t.Errorf("Bypass(%s) = %v, want %v", tc.url, got, tc.want)
		}
	}
	// A MITM'd request carries only a path and a Host header.
	r, _ := http.NewRequest(http.MethodGet, "https://x/", nil)
	r.URL.Host, r.Host = "", "dev-openapi.5paisa.com"
	if !b.Bypass(r) {
		t.Error("vendor host by Host header not bypassed")
	}
}

func TestTokenExpiry(t *testing.T) {
	now := time.Date(2024, 1, 31, 10, 0, 0, 0, IST())
	if got := TokenExpiry("not-a-jwt", now); !got.Equal(NextCutoff(now)) {
		t.Errorf("fallback expiry %v", got)
	}
	exp := now.Add(2 * time.Hour).Unix()
	tok := "eyJhbGciOiJIUzI1NiJ9." + b64(`{"exp":`+strconv.FormatInt(exp, 10)+`}`) + ".sig"
	if got := TokenExpiry(tok, now); got.Unix() != exp {
		t.Errorf("exp expiry %v, want %v", got, time.Unix(exp, 0))
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
