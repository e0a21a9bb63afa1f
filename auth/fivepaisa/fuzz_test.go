package fivepaisa

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/authproxy/authproxy/auth"
)

// decodeObject decodes doc as a JSON object with numbers kept exact; ok is
// false when doc is not one.
func decodeObject(doc []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false // trailing data
	}
	return m, true
}

// FuzzRewriteBody: any input gives no panic; a JSON object gives a JSON
// object whose head.key and body.ClientCode are the injected values, with
// exactly one spelling of "key" under head, and every other member (top
// level, head, body) equal to the input's; anything else gives an error
// wrapping auth.ErrBadRequest and no output. Seeds in testdata/fuzz.
func FuzzRewriteBody(f *testing.F) {
	f.Add([]byte(`{"head":{},"body":{"ClientCode":""}}`), "AppKey123", "50012322")
	f.Add([]byte(`{"head":{"Key":"a","kEy":"b"},"body":{"ClientCode":1,"Qty":1e400}}`), "K", "C")
	f.Add([]byte(`{"head":{"key":"a"},"body":{"clientcode":"victim","CLIENTCODE":"x","Qty":1}}`), "K", "C")
	f.Fuzz(func(t *testing.T, body []byte, appKey, clientCode string) {
		out, err := RewriteBody(body, appKey, clientCode)
		in, isObject := decodeObject(body)
		if err != nil {
			if !errors.Is(err, auth.ErrBadRequest) || out != nil {
				t.Fatalf("err %v (out %q), want ErrBadRequest and no output", err, out)
			}
			if isObject {
				t.Fatalf("a JSON object was refused: %v", err)
			}
			return
		}
		if !isObject {
			t.Fatalf("non-object %q accepted: %q", body, out)
		}
		got, ok := decodeObject(out)
		if !ok {
			t.Fatalf("output is not a JSON object: %q", out)
		}
		if !utf8.ValidString(appKey) || !utf8.ValidString(clientCode) {
			return // encoding/json replaces invalid UTF-8; values cannot compare
		}
		for k, v := range in {
			if k == "head" || k == "body" {
				continue
			}
			if !reflect.DeepEqual(got[k], v) {
				t.Fatalf("member %q changed: %v -> %v", k, v, got[k])
			}
		}
		for k := range got {
			if _, had := in[k]; !had && k != "head" && k != "body" {
				t.Fatalf("member %q appeared", k)
			}
		}
		head, ok := got["head"].(map[string]any)
		if !ok || head["key"] != appKey {
			t.Fatalf("head = %v, want key %q", got["head"], appKey)
		}
		inHead, _ := in["head"].(map[string]any)
		for k, v := range head {
			if strings.EqualFold(k, "key") {
				if k != "key" {
					t.Fatalf("head still has %q", k)
				}
				continue
			}
			if !reflect.DeepEqual(inHead[k], v) {
				t.Fatalf("head.%s changed: %v -> %v", k, inHead[k], v)
			}
		}
		for k := range inHead {
			if _, kept := head[k]; !kept && !strings.EqualFold(k, "key") {
				t.Fatalf("head.%s dropped", k)
			}
		}
		bd, ok := got["body"].(map[string]any)
		if !ok || bd["ClientCode"] != clientCode {
			t.Fatalf("body = %v, want ClientCode %q", got["body"], clientCode)
		}
		inBody, _ := in["body"].(map[string]any)
		for k, v := range bd {
			if strings.EqualFold(k, "ClientCode") {
				if k != "ClientCode" {
					t.Fatalf("body still has the client's %q next to the injected ClientCode", k)
				}
				continue
			}
			if !reflect.DeepEqual(inBody[k], v) {
				t.Fatalf("body.%s changed: %v -> %v", k, inBody[k], v)
			}
		}
		for k := range inBody {
			if _, kept := bd[k]; !kept && !strings.EqualFold(k, "ClientCode") {
				t.Fatalf("body.%s dropped", k)
			}
		}
	})
}

// FuzzParseResponse: any peek gives no panic; a body.Status that is a
// plain integer is found; a document built from (status, msg) reads back.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(`{"head":{"status":"0"},"body":{"Message":"Invalid Session","Status":9}}`), 9, "Invalid Session")
	f.Add([]byte(`{"body":null}`), 0, "")
	f.Fuzz(func(t *testing.T, peek []byte, status int, msg string) {
		st, m, ok := ParseStatus(peek)
		if !ok && st != 0 {
			t.Fatalf("status %d without ok", st)
		}
		if ok && (st < -1e9 || st > 1e9) {
			t.Fatalf("status %d out of range", st)
		}
		_ = m
		// Oracle: exactly {"body":{"Status":<integer>}} with exact key names.
		if top, isObj := decodeObject(peek); isObj && len(top) == 1 {
			if b, isMap := top["body"].(map[string]any); isMap && len(b) == 1 {
				if n, isNum := b["Status"].(json.Number); isNum {
					if v, err := strconv.Atoi(n.String()); err == nil && v >= -1e9 && v <= 1e9 {
						if !ok || st != v {
							t.Fatalf("ParseStatus(%s) = %d, %v; want %d", peek, st, ok, v)
						}
					}
				}
			}
		}
		// Round trip of a built document.
		if status < -1e9 || status > 1e9 || !utf8.ValidString(msg) {
			return
		}
		doc, err := json.Marshal(map[string]any{"head": map[string]string{"status": "0"}, "body": map[string]any{"Status": status, "Message": msg}})
		if err != nil {
			t.Fatal(err)
		}
		st, m, ok = ParseStatus(doc)
		if !ok || st != status || m != msg {
			t.Fatalf("ParseStatus(%s) = %d, %q, %v", doc, st, m, ok)
		}
	})
}
