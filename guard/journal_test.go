package guard

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestJournalAppendReadRotate(t *testing.T) {
	dir := t.TempDir()
	// 23:59 IST and 00:01 IST the next day: two files.
	t1 := time.Date(2026, 12, 7, 18, 29, 0, 0, time.UTC)
	t2 := t1.Add(2 * time.Minute)
	j, err := OpenJournal(dir, t1)
	if err != nil {
		t.Fatal(err)
	}
	for i, tm := range []time.Time{t1, t2} {
		e := Entry{Time: tm, Account: "acc", Broker: "pocketful", Method: "POST", Path: "/api/v1/orders",
			Body: json.RawMessage(`{"qty":1}`), Status: 200, Outcome: OutcomeOK, OrderID: []string{"A1", "A2"}[i]}
		if err := j.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Append(Entry{Time: t2, Account: "other", Method: "POST", Outcome: OutcomePaused, Status: 423}); err != nil {
		t.Fatal(err)
	}
	_ = j.Close()
	for _, name := range []string{"2026-12-07.jsonl", "2026-12-08.jsonl"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	// A torn last line (a crash mid-write) is skipped.
	f, _ := os.OpenFile(filepath.Join(dir, "2026-12-08.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString(`{"time":"2026-12-08T00:00:00Z","account":"acc","outc`)
	f.Close()
	all, err := ReadJournal(dir, t1.Add(-time.Hour), t2.Add(time.Hour), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("read %d entries, want 3: %+v", len(all), all)
	}
	mine, _ := ReadJournal(dir, t1.Add(-time.Hour), t2.Add(time.Hour), "acc")
	if len(mine) != 2 || mine[0].OrderID != "A1" || mine[1].OrderID != "A2" {
		t.Fatalf("account filter/order: %+v", mine)
	}
	later, _ := ReadJournal(dir, t1.Add(time.Minute), t2.Add(time.Hour), "acc")
	if len(later) != 1 {
		t.Fatalf("since filter: %+v", later)
	}
	j2, _ := OpenJournal(dir, t2)
	if r := j2.Recent(10); len(r) != 3 || r[0].Account != "other" {
		t.Fatalf("recent after reopen: %+v", r)
	}
}

func TestScrubBody(t *testing.T) {
	in := `{"head":{"key":"APPKEY123"},"body":{"ClientCode":"C1","Qty":5,"Password":"pw1","totp":"123456"},
	"access_token":"tok","nested":[{"api_key":"k"},{"Authorization":"Bearer abc"}],"note":"Bearer xyz"}`
	out := string(ScrubBody([]byte(in), "application/json"))
	for _, secret := range []string{"APPKEY123", "pw1", "123456", `"tok"`, `"k"`, "abc", "xyz"} {
		if strings.Contains(out, secret) {
			t.Errorf("scrubbed body still holds %s: %s", secret, out)
		}
	}
	for _, keep := range []string{`"ClientCode":"C1"`, `"Qty":5`} {
		if !strings.Contains(out, keep) {
			t.Errorf("scrubbed body lost %s: %s", keep, out)
		}
	}
	form := string(ScrubBody([]byte("qty=1&pin=4321"), "application/x-www-form-urlencoded"))
	if strings.Contains(form, "4321") || !strings.Contains(form, `"qty":"1"`) {
		t.Errorf("form body: %s", form)
	}
	if got := ScrubBody(nil, ""); got != nil {
		t.Errorf("empty body: %s", got)
	}
	if got := string(ScrubBody([]byte("plain text"), "text/plain")); got != `"plain text"` {
		t.Errorf("text body: %s", got)
	}
}

func TestOrderIDAndOutcome(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		id, out    string
	}{
		{"tradovate", `{"orderId":123456}`, 200, "123456", OutcomeOK},
		{"tradovate failure", `{"failureReason":"RiskCheck","failureText":"no"}`, 200, "", OutcomeBrokerError},
		{"tradingo", `{"StatusCode":200,"IsError":false,"Result":{"Data":{"Stat":"Ok","NorenOrdNo":"24120700001"}}}`, 200, "24120700001", OutcomeOK},
		{"tradingo error", `{"IsError":true,"Result":null}`, 200, "", OutcomeBrokerError},
		{"fivepaisa", `{"head":{"status":"0"},"body":{"BrokerOrderID":98765,"ExchOrderID":"0","Status":0}}`, 200, "98765", OutcomeOK},
		{"fivepaisa error", `{"head":{"status":"0"},"body":{"Status":1,"Message":"bad"}}`, 200, "", OutcomeBrokerError},
		{"pocketful", `{"status":"success","data":{"oms_order_id":"P-1"}}`, 200, "P-1", OutcomeOK},
		{"pocketful error", `{"status":"error","message":"x"}`, 400, "", OutcomeBrokerError},
		{"kite", `{"status":"success","data":{"order_id":"151220000000000"}}`, 200, "151220000000000", OutcomeOK},
		{"kite error", `{"status":"error","message":"x","error_type":"InputException"}`, 400, "", OutcomeBrokerError},
		{"angelone", `{"status":true,"message":"SUCCESS","errorcode":"","data":{"script":"SBIN-EQ","orderid":"251207000000001","uniqueorderid":"9f1c"}}`, 200, "251207000000001", OutcomeOK},
		{"angelone error", `{"status":false,"message":"Order not found","errorcode":"AB1013","data":null}`, 200, "", OutcomeBrokerError},
		{"angelone gateway", `{"success":false,"message":"Invalid Token","errorCode":"AG8001","data":""}`, 200, "", OutcomeBrokerError},
		{"upstox v2", `{"status":"success","data":{"order_id":"250724000123456"}}`, 200, "250724000123456", OutcomeOK},
		{"upstox v3", `{"status":"success","data":{"order_ids":["250724000123457","250724000123458"]},"metadata":{"latency":12}}`, 200, "250724000123457", OutcomeOK},
		{"upstox v3 no ids", `{"status":"success","data":{"order_ids":[]}}`, 200, "", OutcomeOK},
		{"upstox error", `{"status":"error","errors":[{"errorCode":"UDAPI100050","message":"Invalid token"}]}`, 401, "", OutcomeBrokerError},
		{"plural not a list", `{"data":{"order_ids":"X1"}}`, 200, "", OutcomeOK},
		{"not json", `<html>`, 502, "", OutcomeBrokerError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := OrderID([]byte(tc.body)); got != tc.id {
				t.Errorf("OrderID = %q, want %q", got, tc.id)
			}
			if got := Outcome(tc.status, []byte(tc.body)); got != tc.out {
				t.Errorf("Outcome = %q, want %q", got, tc.out)
			}
		})
	}
}

func TestPausesPersist(t *testing.T) {
	dir := t.TempDir()
	ps, err := OpenPauses(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	changed, err := ps.Set([]string{"a", "b"}, true, "cli", now)
	if err != nil || len(changed) != 2 {
		t.Fatalf("pause: %v %v", changed, err)
	}
	if again, _ := ps.Set([]string{"a"}, true, "cli", now); len(again) != 0 {
		t.Errorf("pausing a paused account changed %v", again)
	}
	fi, err := os.Stat(filepath.Join(dir, PauseFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", fi, err)
	}
	re, err := OpenPauses(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info, ok := re.Paused("a"); !ok || !info.Since.Equal(now) || info.By != "cli" {
		t.Fatalf("after reopen: %+v %v", info, ok)
	}
	if _, err := re.Set([]string{"a"}, false, "cli", now); err != nil {
		t.Fatal(err)
	}
	re2, _ := OpenPauses(dir)
	if got := re2.All(); len(got) != 1 || got[0] != "b" {
		t.Fatalf("after resume a: %v", got)
	}
	if err := os.WriteFile(filepath.Join(dir, PauseFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenPauses(dir); err == nil {
		t.Fatal("a corrupt state file must be an error, not a silent resume")
	}
}

func FuzzParseJournal(f *testing.F) {
	f.Add([]byte(`{"time":"2026-12-07T04:00:00Z","account":"a","outcome":"ok","status":200}` + "\n"))
	f.Add([]byte("{\"time\":\n\n{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := ParseJournal(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Account == "" || e.Outcome == "" || e.Time.IsZero() {
				t.Fatalf("incomplete entry accepted: %+v", e)
			}
			line, _ := json.Marshal(e)
			if e2, ok := ParseEntry(line); !ok || e2.Account != e.Account {
				t.Fatalf("round trip failed: %s", line)
			}
		}
	})
}

func FuzzScrubBody(f *testing.F) {
	f.Add([]byte(`{"password":"hunter2","qty":1}`), "application/json")
	f.Add([]byte(`pin=1&x=2`), "application/x-www-form-urlencoded")
	f.Add([]byte{0xff, 0xfe}, "")
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		out := ScrubBody(body, ct)
		if out != nil && !json.Valid(out) {
			t.Fatalf("not JSON: %q", out)
		}
		_ = OrderID(body)
		_ = Outcome(200, body)
	})
}
