package tradingo

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth/authtest"
	"github.com/pquerna/otp/totp"
)

type clock = authtest.Clock

const (
	testSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	testClient = "GO11240"
	testMPIN   = "1111"
)

func newFake(t *testing.T) (*Fake, *clock) {
	t.Helper()
	clk := authtest.Fixed(time.Date(2024, 1, 31, 3, 0, 5, 0, time.UTC))
	return New(Options{ClientCode: testClient, MPIN: testMPIN, TOTPSecret: testSecret, TokenTTL: time.Hour, Now: clk.Now}), clk
}

func code(t *testing.T, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(testSecret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func loginBody(totpCode string) map[string]any {
	return map[string]any{
		"Totp": totpCode, "ClientCode": testClient, "MPIN": testMPIN,
		"GenerationSourceTP": "FTLTP", "IPAddress": "",
	}
}

type reply struct {
	status int
	header http.Header
	env    map[string]any
	raw    []byte
}

func do(t *testing.T, f *Fake, method, path string, hdr map[string]string, body any) reply {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case nil:
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	req := httptest.NewRequest(method, "https://tradingorestapi.swastika.co.in"+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	f.ServeHTTP(rec, req)
	r := reply{status: rec.Code, header: rec.Header(), raw: rec.Body.Bytes()}
	if err := json.Unmarshal(r.raw, &r.env); err != nil {
		t.Fatalf("%s %s: reply is not JSON: %v: %q", method, path, err, r.raw)
	}
	return r
}

func (r reply) exceptionMessage() string {
	ex, _ := r.env["ResponseException"].(map[string]any)
	s, _ := ex["ExceptionMessage"].(string)
	return s
}

func (r reply) validationFields() []string {
	ex, _ := r.env["ResponseException"].(map[string]any)
	list, _ := ex["ValidationErrors"].([]any)
	var out []string
	for _, v := range list {
		m, _ := v.(map[string]any)
		s, _ := m["Field"].(string)
		out = append(out, s)
	}
	return out
}

func (r reply) isError() bool { b, _ := r.env["IsError"].(bool); return b }

func (r reply) accessToken() string {
	res, _ := r.env["Result"].(map[string]any)
	data, _ := res["Data"].(map[string]any)
	s, _ := data["AccessToken"].(string)
	return s
}

func wantError(t *testing.T, r reply, status int, msg string) {
	t.Helper()
	if r.status != status || !r.isError() || r.exceptionMessage() != msg {
		t.Fatalf("got status %d IsError %v message %q, want %d true %q (%s)", r.status, r.isError(), r.exceptionMessage(), status, msg, r.raw)
	}
	if r.env["Message"] != "Fail" || r.env["Result"] != nil {
		t.Fatalf("error envelope malformed: %s", r.raw)
	}
}

func login(t *testing.T, f *Fake, at time.Time) string {
	t.Helper()
	r := do(t, f, http.MethodPost, LoginPath, nil, loginBody(code(t, at)))
	if r.status != http.StatusOK || r.isError() || r.accessToken() == "" {
		t.Fatalf("login: status %d: %s", r.status, r.raw)
	}
	return r.accessToken()
}

func claims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	if string(hb) != `{"alg":"HS256","typ":"JWT"}` {
		t.Fatalf("header = %s", hb)
	}
	cb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(cb, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLoginSuccessEnvelopeAndToken(t *testing.T) {
	f, clk := newFake(t)
	r := do(t, f, http.MethodPost, LoginPath, nil, loginBody(code(t, clk.Now())))
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	// Same keys, in the same order, as the seed document's success envelope.
	wantPrefix := `{"StatusCode":200,"Message":"Request successful.","IsError":false,"ResponseException":null,` +
		`"Result":{"ResponseId":43,"ResponseMessage":"Data Updated Successfully","Data":{"Isverified":true,"GenerationSourceTP":"FTLTP","AccessToken":"`
	wantSuffix := `","CName":"","CEmail":"","CMobile":"","CDP":"","stk":""}}}`
	if s := string(r.raw); !strings.HasPrefix(s, wantPrefix) || !strings.HasSuffix(s, wantSuffix) {
		t.Fatalf("envelope = %s", s)
	}
	c := claims(t, r.accessToken())
	if got, want := c["exp"], float64(clk.Now().Add(time.Hour).Unix()); got != want {
		t.Errorf("exp = %v, want %v", got, want)
	}
	for k, want := range map[string]string{"iss": Issuer, "aud": Issuer, "clientcode": testClient, roleClaim: "Client"} {
		if c[k] != want {
			t.Errorf("claim %s = %v, want %q", k, c[k], want)
		}
	}
	if _, ok := c[nameClaim].(string); !ok {
		t.Errorf("no name claim in %v", c)
	}
	if f.Logins() != 1 || f.LoginAttempts() != 1 {
		t.Errorf("Logins %d attempts %d, want 1 1", f.Logins(), f.LoginAttempts())
	}
}

func TestLoginStrictness(t *testing.T) {
	type mod func(m map[string]any)
	tests := []struct {
		name       string
		hdr        map[string]string
		raw        string // used instead of the body when set
		change     mod
		status     int
		msg        string
		wantFields []string
	}{
		{name: "extra field", change: func(m map[string]any) { m["Source"] = "x" }, status: 400, msg: MsgValidation, wantFields: []string{"Source"}},
		{name: "missing IPAddress", change: func(m map[string]any) { delete(m, "IPAddress") }, status: 400, msg: MsgValidation, wantFields: []string{"IPAddress"}},
		{name: "wrong case", change: func(m map[string]any) { m["totp"] = m["Totp"]; delete(m, "Totp") }, status: 400, msg: MsgValidation, wantFields: []string{"Totp", "totp"}},
		{name: "number not string", change: func(m map[string]any) { m["MPIN"] = 1111 }, status: 400, msg: MsgValidation, wantFields: []string{"MPIN"}},
		{name: "wrong source", change: func(m map[string]any) { m["GenerationSourceTP"] = "WEB" }, status: 400, msg: MsgValidation, wantFields: []string{"GenerationSourceTP"}},
		{name: "not an object", raw: `["Totp"]`, status: 400, msg: MsgValidation, wantFields: []string{"body"}},
		{name: "trailing data", raw: `{"Totp":"1"} {}`, status: 400, msg: MsgValidation, wantFields: []string{"body"}},
		{name: "authorization header", hdr: map[string]string{"Authorization": "Bearer x"}, status: 400, msg: MsgAuthHeader},
		{name: "form content type", hdr: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, status: 415, msg: MsgContentType},
		{name: "no content type", hdr: map[string]string{"Content-Type": ""}, status: 415, msg: MsgContentType},
		{name: "wrong MPIN", change: func(m map[string]any) { m["MPIN"] = "2222" }, status: 401, msg: MsgInvalidMPIN},
		{name: "wrong client", change: func(m map[string]any) { m["ClientCode"] = "GO99999" }, status: 401, msg: MsgInvalidClient},
		{name: "wrong TOTP", change: func(m map[string]any) { m["Totp"] = "000000" }, status: 401, msg: MsgInvalidTOTP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, clk := newFake(t)
			c := code(t, clk.Now())
			if tc.name == "wrong TOTP" && c == "000000" {
				clk.Advance(time.Minute)
				c = code(t, clk.Now())
			}
			var body any
			if tc.raw != "" {
				body = tc.raw
			} else {
				m := loginBody(c)
				if tc.change != nil {
					tc.change(m)
				}
				body = m
			}
			r := do(t, f, http.MethodPost, LoginPath, tc.hdr, body)
			wantError(t, r, tc.status, tc.msg)
			if tc.wantFields != nil {
				if got := strings.Join(r.validationFields(), ","); got != strings.Join(tc.wantFields, ",") {
					t.Errorf("ValidationErrors fields = %s, want %s", got, strings.Join(tc.wantFields, ","))
				}
			}
			if f.Logins() != 0 || f.LoginAttempts() != 1 {
				t.Errorf("Logins %d attempts %d, want 0 1", f.Logins(), f.LoginAttempts())
			}
		})
	}
}

func TestLoginMethod(t *testing.T) {
	f, _ := newFake(t)
	r := do(t, f, http.MethodGet, LoginPath, nil, nil)
	wantError(t, r, http.StatusMethodNotAllowed, MsgMethod)
}

func TestTOTPUsableOnce(t *testing.T) {
	f, clk := newFake(t)
	c := code(t, clk.Now())
	if r := do(t, f, http.MethodPost, LoginPath, nil, loginBody(c)); r.status != 200 {
		t.Fatalf("first login: %s", r.raw)
	}
	clk.Advance(10 * time.Second) // same or next step: still within skew
	wantError(t, do(t, f, http.MethodPost, LoginPath, nil, loginBody(c)), 401, MsgTOTPUsed)

	// A wrong MPIN spends the code too.
	clk.Advance(time.Minute)
	c2 := code(t, clk.Now())
	b := loginBody(c2)
	b["MPIN"] = "9999"
	wantError(t, do(t, f, http.MethodPost, LoginPath, nil, b), 401, MsgInvalidMPIN)
	wantError(t, do(t, f, http.MethodPost, LoginPath, nil, loginBody(c2)), 401, MsgTOTPUsed)

	// The next step's code works.
	clk.Advance(30 * time.Second)
	login(t, f, clk.Now())
	if f.Logins() != 2 || f.LoginAttempts() != 5 {
		t.Errorf("Logins %d attempts %d, want 2 5", f.Logins(), f.LoginAttempts())
	}
}

func TestTOTPSkew(t *testing.T) {
	f, clk := newFake(t)
	// A code one step old is accepted; three steps old is not.
	login(t, f, clk.Now().Add(-30*time.Second))
	wantError(t, do(t, f, http.MethodPost, LoginPath, nil, loginBody(code(t, clk.Now().Add(-90*time.Second)))), 401, MsgInvalidTOTP)
}

func TestAPIAuthorization(t *testing.T) {
	f, clk := newFake(t)
	tok := login(t, f, clk.Now())
	other, _ := newFake(t)
	forged := login(t, other, clk.Now())

	ok := do(t, f, http.MethodPost, "/kb/OrderBook/GetOrderBookList", map[string]string{"Authorization": "Bearer " + tok}, map[string]any{"Uid": testClient})
	if ok.status != 200 || ok.isError() || ok.env["Message"] != "Request successful." {
		t.Fatalf("order book: %d %s", ok.status, ok.raw)
	}
	res := ok.env["Result"].(map[string]any)
	rows, _ := res["Data"].([]any)
	if len(rows) == 0 || res["ResponseMessage"] != "OK" {
		t.Fatalf("order book rows: %s", ok.raw)
	}

	tests := []struct {
		name string
		auth string
		body any
		msg  string
	}{
		{"no header", "", map[string]any{"Uid": testClient}, MsgUnauthorized},
		{"not bearer", "Basic " + tok, nil, MsgUnauthorized},
		{"garbage", "Bearer abc.def.ghi", nil, MsgUnauthorized},
		{"other fake's token", "Bearer " + forged, nil, MsgUnauthorized},
		{"wrong Uid", "Bearer " + tok, map[string]any{"Uid": "GO99999"}, MsgUidMismatch},
		{"non-string Uid", "Bearer " + tok, map[string]any{"Uid": 11240}, MsgUidMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, do(t, f, http.MethodPost, "/kb/PositionBook/GetPositionBookList", map[string]string{"Authorization": tc.auth}, tc.body), 401, tc.msg)
		})
	}

	t.Run("two authorization headers", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/kb/OrderBook/GetOrderBookList", strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Add("Authorization", "Bearer "+tok)
		req.Header.Add("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		f.ServeHTTP(rec, req)
		if rec.Code != 401 {
			t.Fatalf("status %d, want 401", rec.Code)
		}
	})
}

func TestTokenExpiryAndRevocation(t *testing.T) {
	f, clk := newFake(t)
	hdr := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	tok := login(t, f, clk.Now())

	clk.Advance(59 * time.Minute)
	if r := do(t, f, http.MethodPost, "/kb/anything", hdr(tok), map[string]any{}); r.status != 200 {
		t.Fatalf("before expiry: %s", r.raw)
	}
	clk.Advance(time.Minute)
	wantError(t, do(t, f, http.MethodPost, "/kb/anything", hdr(tok), map[string]any{}), 401, MsgUnauthorized)

	f.SetTokenTTL(10 * time.Minute)
	tok2 := login(t, f, clk.Now())
	if got, want := claims(t, tok2)["exp"], float64(clk.Now().Add(10*time.Minute).Unix()); got != want {
		t.Fatalf("exp after SetTokenTTL = %v, want %v", got, want)
	}
	f.RevokeAll()
	wantError(t, do(t, f, http.MethodPost, "/kb/anything", hdr(tok2), map[string]any{}), 401, MsgUnauthorized)
	clk.Advance(30 * time.Second)
	tok3 := login(t, f, clk.Now())
	if r := do(t, f, http.MethodPost, "/kb/anything", hdr(tok3), map[string]any{}); r.status != 200 {
		t.Fatalf("token issued after RevokeAll: %s", r.raw)
	}
}

func TestFailNextLogins(t *testing.T) {
	f, clk := newFake(t)
	f.FailNextLogins(2, http.StatusServiceUnavailable)
	c := code(t, clk.Now())
	for i := range 2 {
		r := do(t, f, http.MethodPost, LoginPath, nil, loginBody(c))
		wantError(t, r, http.StatusServiceUnavailable, MsgUnavailable)
		if i == 0 && r.env["StatusCode"] != float64(503) {
			t.Errorf("StatusCode in envelope = %v", r.env["StatusCode"])
		}
	}
	login(t, f, clk.Now())
	f.FailNextLogins(1, http.StatusTooManyRequests)
	r := do(t, f, http.MethodPost, LoginPath, nil, loginBody(code(t, clk.Now())))
	wantError(t, r, http.StatusTooManyRequests, MsgTooManyLogins)
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if f.Logins() != 1 || f.LoginAttempts() != 4 {
		t.Errorf("Logins %d attempts %d, want 1 4", f.Logins(), f.LoginAttempts())
	}
}

func TestPlaceOrderAndRequestsRecorded(t *testing.T) {
	f, clk := newFake(t)
	tok := login(t, f, clk.Now())
	hdr := map[string]string{"Authorization": "Bearer " + tok}
	order := map[string]any{"Uid": testClient, "Actid": testClient, "Exch": "NSE", "Tsym": "SBIN-EQ", "Qty": "1", "Prc": "600.00", "Prd": "C", "Trantype": "B", "Prctyp": "LMT", "Ret": "DAY"}
	r := do(t, f, http.MethodPost, "/kb/PlaceOrders/PlaceOrder", hdr, order)
	data, _ := r.env["Result"].(map[string]any)["Data"].(map[string]any)
	no, _ := data["NorenOrdNo"].(string)
	if r.status != 200 || data["Stat"] != "Ok" || no == "" {
		t.Fatalf("place order: %s", r.raw)
	}
	book := do(t, f, http.MethodPost, "/kb/OrderBook/GetOrderBookList", hdr, map[string]any{"Uid": testClient})
	if !strings.Contains(string(book.raw), no) {
		t.Fatalf("order %s not in the order book: %s", no, book.raw)
	}
	wantError(t, do(t, f, http.MethodGet, "/kb/OrderBook/GetOrderBookList", hdr, nil), 405, MsgMethod)
	wantError(t, do(t, f, http.MethodPost, "/nope", nil, nil), 404, MsgNotFound)

	recs := f.Requests()
	if len(recs) != 4 {
		t.Fatalf("recorded %d requests, want 4 (logins are not recorded)", len(recs))
	}
	if recs[0].Method != "POST" || recs[0].Path != "/kb/PlaceOrders/PlaceOrder" || recs[0].Authorization != "Bearer "+tok {
		t.Errorf("first record = %+v", recs[0])
	}
	var got map[string]any
	if err := json.Unmarshal(recs[0].Body, &got); err != nil || got["Tsym"] != "SBIN-EQ" {
		t.Errorf("recorded body = %q", recs[0].Body)
	}
	recs[0].Body[0] = 'X'
	if f.Requests()[0].Body[0] == 'X' {
		t.Error("Requests returned shared memory")
	}
}

func TestConcurrentLoginsOneCodeOneWinner(t *testing.T) {
	f, clk := newFake(t)
	c := code(t, clk.Now())
	var wg sync.WaitGroup
	statuses := make([]int, 20)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, _ := json.Marshal(loginBody(c))
			req := httptest.NewRequest(http.MethodPost, LoginPath, bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			f.ServeHTTP(rec, req)
			statuses[i] = rec.Code
		}()
	}
	wg.Wait()
	wins := 0
	for _, s := range statuses {
		if s == 200 {
			wins++
		}
	}
	if wins != 1 || f.Logins() != 1 || f.LoginAttempts() != 20 {
		t.Fatalf("wins %d Logins %d attempts %d, want 1 1 20", wins, f.Logins(), f.LoginAttempts())
	}
}
