package fivepaisa

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/authproxy/authproxy/auth"
)

// errNotObject is wrapped (with auth.ErrBadRequest) when a JSON body is not
// an object.
var errNotObject = errors.New("JSON body must be an object")

// member is one "key": value pair of a JSON object, as raw bytes of the
// original document.
type member struct {
	key    string // decoded
	keyRaw []byte // the key's string literal, quotes included
	raw    []byte // from the key's opening quote to the end of the value
	val    []byte // the value
}

// RewriteBody sets head.key = appKey and body.ClientCode = clientCode in a
// 5paisa JSON request body and returns the new body. Every other member,
// at every level, keeps its bytes (key order included); "head" and "body"
// are created when missing (head first, body right after it) and replaced
// by a fresh object when they are not objects. Under head every
// spelling of "key" ("Key", "KEY" ...) is removed and exactly one "key"
// is left where the first was (first in head otherwise); under body every
// spelling of "ClientCode" ("clientcode" ...) is removed and one is left where the first was (first in body
// otherwise). Duplicate top-level "head"/"body" members are each rewritten.
//
// A body that is not JSON, or JSON that is not an object, yields an error
// wrapping auth.ErrBadRequest that never quotes the body.
func RewriteBody(body []byte, appKey, clientCode string) ([]byte, error) {
	doc := trimJSONSpace(body)
	var probe json.RawMessage
	if err := json.Unmarshal(doc, &probe); err != nil || len(doc) == 0 {
		return nil, fmt.Errorf("%w: body labelled JSON is not JSON%s", auth.ErrBadRequest, syntaxWhere(err))
	}
	members, err := splitObject(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", auth.ErrBadRequest, err)
	}
	keyJSON, err := json.Marshal(appKey)
	if err != nil {
		return nil, fmt.Errorf("encode head.key: %w", err)
	}
	codeJSON, err := json.Marshal(clientCode)
	if err != nil {
		return nil, fmt.Errorf("encode body.ClientCode: %w", err)
	}

	var parts [][]byte
	headAt := -1
	sawBody := false
	for _, m := range members {
		switch m.key {
		case "head":
			nv, err := setMember(m.val, func(k string) bool { return strings.EqualFold(k, "key") }, `"key"`, keyJSON)
			if err != nil {
				return nil, fmt.Errorf("%w: head: %w", auth.ErrBadRequest, err)
			}
			if headAt < 0 {
				headAt = len(parts)
			}
			parts = append(parts, joinMember(m.keyRaw, nv))
		case "body":
			// Every spelling of ClientCode goes: 5paisa may read any.
			nv, err := setMember(m.val, func(k string) bool { return strings.EqualFold(k, "ClientCode") }, `"ClientCode"`, codeJSON)
			if err != nil {
				return nil, fmt.Errorf("%w: body: %w", auth.ErrBadRequest, err)
			}
			sawBody = true
			parts = append(parts, joinMember(m.keyRaw, nv))
		default:
			parts = append(parts, m.raw)
		}
	}
	if headAt < 0 {
		parts = append([][]byte{joinMember([]byte(`"head"`), objectOf(`"key"`, keyJSON))}, parts...)
		headAt = 0
	}
	if !sawBody {
		nb := joinMember([]byte(`"body"`), objectOf(`"ClientCode"`, codeJSON))
		parts = append(parts[:headAt+1], append([][]byte{nb}, parts[headAt+1:]...)...)
	}
	return encloseObject(parts), nil
}

// syntaxWhere describes where a JSON syntax error is, without quoting data.
func syntaxWhere(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return " (syntax error at byte " + strconv.FormatInt(se.Offset, 10) + ")"
	}
	return ""
}

// setMember returns obj (a JSON value) as an object in which every member
// whose decoded key matches drop is removed and name: val is placed where
// the first of them was, or first. A value that is not an object becomes
// {name: val}.
func setMember(obj []byte, drop func(string) bool, name string, val []byte) ([]byte, error) {
	if len(obj) == 0 || obj[0] != '{' {
		return objectOf(name, val), nil
	}
	members, err := splitObject(obj)
	if err != nil {
		return nil, err
	}
	fresh := joinMember([]byte(name), val)
	parts := make([][]byte, 0, len(members)+1)
	placed := false
	for _, m := range members {
		if drop(m.key) {
			if !placed {
				parts = append(parts, fresh)
				placed = true
			}
			continue
		}
		parts = append(parts, m.raw)
	}
	if !placed {
		parts = append([][]byte{fresh}, parts...)
	}
	return encloseObject(parts), nil
}

func objectOf(name string, val []byte) []byte {
	return encloseObject([][]byte{joinMember([]byte(name), val)})
}

func joinMember(keyRaw, val []byte) []byte {
	out := make([]byte, 0, len(keyRaw)+1+len(val))
	out = append(out, keyRaw...)
	out = append(out, ':')
	return append(out, val...)
}

func encloseObject(parts [][]byte) []byte {
	n := 2
	for _, p := range parts {
		n += len(p) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, '{')
	for i, p := range parts {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, p...)
	}
	return append(out, '}')
}

// splitObject splits doc, a valid JSON document without surrounding
// whitespace, into its top-level members. It returns errNotObject when doc
// is not an object. It checks its bounds itself, so even invalid input
// yields an error rather than a panic.
func splitObject(doc []byte) ([]member, error) {
	if len(doc) == 0 || doc[0] != '{' {
		return nil, errNotObject
	}
	var out []member
	i := 1
	for {
		i = skipSpace(doc, i)
		if i >= len(doc) {
			return nil, errors.New("unterminated object")
		}
		switch doc[i] {
		case '}':
			return out, nil
		case ',':
			if len(out) == 0 {
				return nil, errors.New("misplaced comma")
			}
			i = skipSpace(doc, i+1)
		default:
			if len(out) > 0 {
				return nil, errors.New("missing comma")
			}
		}
		if i >= len(doc) || doc[i] != '"' {
			return nil, errors.New("object key is not a string")
		}
		ks := i
		ke, err := stringEnd(doc, i)
		if err != nil {
			return nil, err
		}
		var key string
		if err := json.Unmarshal(doc[ks:ke], &key); err != nil {
			return nil, errors.New("object key is not a valid string")
		}
		i = skipSpace(doc, ke)
		if i >= len(doc) || doc[i] != ':' {
			return nil, errors.New("missing colon after object key")
		}
		vs := skipSpace(doc, i+1)
		ve, err := valueEnd(doc, vs)
		if err != nil {
			return nil, err
		}
		out = append(out, member{key: key, keyRaw: doc[ks:ke], raw: doc[ks:ve], val: doc[vs:ve]})
		i = ve
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the index just past the string literal starting at
// b[i] == '"'.
func stringEnd(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, errors.New("expected a string")
	}
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++ // skip the escaped byte; \uXXXX digits hold no quote
		case '"':
			return j + 1, nil
		}
	}
	return 0, errors.New("unterminated string")
}

// valueEnd returns the index just past the JSON value starting at b[i].
func valueEnd(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errors.New("missing value")
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e, err := stringEnd(b, j)
				if err != nil {
					return 0, err
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errors.New("unterminated container")
	default:
		j := i
		for j < len(b) {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				if j == i {
					return 0, errors.New("missing value")
				}
				return j, nil
			}
			j++
		}
		return j, nil
	}
}

// flexInt is a JSON number or a string holding one (5paisa sends both, e.g.
// head "status":"0" and body "Status":0).
type flexInt struct {
	n   int
	set bool
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		return nil
	}
	if len(s) >= 2 && s[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		s = strings.TrimSpace(str)
	}
	n, ok := parseIntLike(s)
	if !ok {
		// Not a number: leave unset rather than fail the whole document.
		return nil
	}
	f.n, f.set = n, true
	return nil
}

// parseIntLike accepts an integer, or a number with an integral value
// ("9.0", "9e0"), within ±1e9.
func parseIntLike(s string) (int, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < -1e9 || n > 1e9 {
			return 0, false
		}
		return n, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != float64(int64(f)) || f < -1e9 || f > 1e9 {
		return 0, false
	}
	return int(f), true
}

// statusDoc is the part of a 5paisa answer ParseStatus reads. Field names
// match case-insensitively (encoding/json); values are decoded one by one so
// that an odd field does not hide the others.
type statusDoc struct {
	Message json.RawMessage `json:"Message"`
	Body    json.RawMessage `json:"body"`
}

type statusBody struct {
	Status  json.RawMessage `json:"Status"`
	Message json.RawMessage `json:"Message"`
}

// ParseStatus reads a 5paisa JSON answer (or the start of one): status is
// body.Status (a number or a string holding one) and ok reports whether it
// was present; msg is body.Message, else the top-level Message, whether or
// not ok. Anything that is not a JSON object yields 0, "", false.
func ParseStatus(peek []byte) (status int, msg string, ok bool) {
	doc := bytes.TrimSpace(peek)
	if len(doc) == 0 || doc[0] != '{' {
		return 0, "", false
	}
	var d statusDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		return 0, "", false
	}
	msg = jsonString(d.Message)
	var b statusBody
	if len(d.Body) == 0 || d.Body[0] != '{' || json.Unmarshal(d.Body, &b) != nil {
		return 0, msg, false
	}
	if m := jsonString(b.Message); m != "" {
		msg = m
	}
	var st flexInt
	if len(b.Status) > 0 && st.UnmarshalJSON(b.Status) == nil && st.set {
		return st.n, msg, true
	}
	return 0, msg, false
}

// jsonString decodes raw as a JSON string, "" if it is anything else.
func jsonString(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// trimJSONSpace trims the four bytes JSON counts as white space (RFC 8259
// §2), and nothing else: a vertical tab before "{" is not JSON.
func trimJSONSpace(b []byte) []byte {
	return bytes.Trim(b, " \t\r\n")
}
