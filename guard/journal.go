package guard

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// IST returns India Standard Time: the journal's files are named by IST dates.
func IST() *time.Location { return time.FixedZone("IST", 5*3600+1800) }

// Outcomes of an order request.
const (
	OutcomeOK          = "ok"           // the broker accepted it
	OutcomeBrokerError = "broker_error" // the broker answered with an error
	OutcomePaused      = "paused"       // stopped by the kill switch
	OutcomeRateLimited = "rate_limited" // over max_orders_per_second
)

// Entry is one journal line.
type Entry struct {
	Time       time.Time       `json:"time"`
	Account    string          `json:"account"`
	Broker     string          `json:"broker"`
	Method     string          `json:"method"`
	Path       string          `json:"path"`
	Body       json.RawMessage `json:"body,omitempty"` // the client's own body, secrets scrubbed
	Status     int             `json:"status"`
	Outcome    string          `json:"outcome"`
	DurationMS float64         `json:"duration_ms"`
	OrderID    string          `json:"order_id,omitempty"`
}

// JournalDir is the journal's directory under the state dir.
func JournalDir(stateDir string) string { return filepath.Join(stateDir, "journal") }

// Journal appends entries to <dir>/<YYYY-MM-DD>.jsonl (IST dates, 0600).
// Each entry is one write(2) of one line on a file opened O_APPEND, followed
// by fsync: a line that was acknowledged survives kill -9 and power loss,
// and a crash mid-write leaves at most a torn last line, which readers skip.
type Journal struct {
	dir string

	mu     sync.Mutex
	day    string
	f      *os.File
	recent []Entry // newest last, at most recentMax
}

const recentMax = 50

// OpenJournal prepares dir (0700) and loads today's latest entries.
func OpenJournal(dir string, now time.Time) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("order journal: %w", err)
	}
	j := &Journal{dir: dir}
	if es, err := ReadJournal(dir, now.Add(-24*time.Hour), now, ""); err == nil {
		if len(es) > recentMax {
			es = es[len(es)-recentMax:]
		}
		j.recent = es
	}
	return j, nil
}

// Append writes e as one line and syncs it to disk.
func (j *Journal) Append(e Entry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("order journal for %q: %w", e.Account, err)
	}
	line = append(line, '\n')
	day := e.Time.In(IST()).Format(time.DateOnly)
	j.mu.Lock()
	defer j.mu.Unlock()
	j.recent = append(j.recent, e)
	if len(j.recent) > recentMax {
		j.recent = append(j.recent[:0:0], j.recent[len(j.recent)-recentMax:]...)
	}
	if j.f == nil || j.day != day {
		if j.f != nil {
			_ = j.f.Close()
			j.f = nil
		}
		f, err := os.OpenFile(filepath.Join(j.dir, day+".jsonl"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("order journal for %q: %w", e.Account, err)
		}
		j.f, j.day = f, day
	}
	if _, err := j.f.Write(line); err != nil {
		return fmt.Errorf("order journal for %q: %w", e.Account, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("order journal for %q: %w", e.Account, err)
	}
	return nil
}

// Recent returns up to n of the latest entries, newest first.
func (j *Journal) Recent(n int) []Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	if n > len(j.recent) {
		n = len(j.recent)
	}
	out := make([]Entry, 0, n)
	for i := len(j.recent) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, j.recent[i])
	}
	return out
}

// Close closes the current file.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

// ReadJournal returns the entries from since to until (inclusive), oldest
// first, of account (all accounts when ""). Lines that do not parse (a torn
// last line after a crash, a hand edit) are skipped.
func ReadJournal(dir string, since, until time.Time, account string) ([]Entry, error) {
	names, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("order journal: %w", err)
	}
	first := since.In(IST()).Format(time.DateOnly)
	last := until.In(IST()).Format(time.DateOnly)
	var out []Entry
	for _, de := range names {
		day, ok := strings.CutSuffix(de.Name(), ".jsonl")
		if !ok || de.IsDir() || day < first || day > last {
			continue
		}
		f, err := os.Open(filepath.Join(dir, de.Name()))
		if err != nil {
			return nil, fmt.Errorf("order journal: %w", err)
		}
		es, err := ParseJournal(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("order journal %s: %w", de.Name(), err)
		}
		for _, e := range es {
			if e.Time.Before(since) || e.Time.After(until) || (account != "" && e.Account != account) {
				continue
			}
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Time.Before(out[b].Time) })
	return out, nil
}

// ParseJournal reads JSON lines, skipping those that are not entries.
func ParseJournal(r io.Reader) ([]Entry, error) {
	var out []Entry
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			if e, ok := ParseEntry(line); ok {
				out = append(out, e)
			}
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// ParseEntry decodes one journal line; ok is false for anything that is not
// a complete entry.
func ParseEntry(line []byte) (Entry, bool) {
	var e Entry
	if err := json.Unmarshal(line, &e); err != nil || e.Time.IsZero() || e.Account == "" || e.Outcome == "" {
		return Entry{}, false
	}
	return e, true
}

// maxJournalBody caps how much of a client's body one entry keeps.
const maxJournalBody = 16 << 10

// ScrubBody returns the client's body as JSON for the journal: a JSON body
// with the values of secret-looking keys replaced by "REDACTED", a form body
// as an object scrubbed the same way, anything else as a (clipped) string.
func ScrubBody(body []byte, contentType string) json.RawMessage {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if json.Valid(body) {
		var v any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&v); err == nil {
			if out, err := json.Marshal(scrub(v)); err == nil && len(out) <= maxJournalBody {
				return out
			}
		}
	}
	if strings.HasPrefix(strings.ToLower(contentType), "application/x-www-form-urlencoded") {
		if vals, err := url.ParseQuery(string(body)); err == nil {
			m := map[string]any{}
			for k, vs := range vals {
				if secretKey(k) {
					m[k] = redacted
				} else if len(vs) == 1 {
					m[k] = vs[0]
				} else {
					m[k] = vs
				}
			}
			if out, err := json.Marshal(m); err == nil && len(out) <= maxJournalBody {
				return out
			}
		}
	}
	s := body
	if len(s) > 4096 {
		s = s[:4096]
	}
	out, _ := json.Marshal(strings.ToValidUTF8(string(s), "?") + clipNote(len(body), len(s)))
	return out
}

func clipNote(full, kept int) string {
	if full == kept {
		return ""
	}
	return " …[" + strconv.Itoa(full-kept) + " more bytes]"
}

const redacted = "REDACTED"

func scrub(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if secretKey(k) {
				t[k] = redacted
				continue
			}
			t[k] = scrub(x)
		}
		return t
	case []any:
		for i := range t {
			t[i] = scrub(t[i])
		}
		return t
	case string:
		if looksLikeBearer(t) {
			return redacted
		}
	}
	return v
}

// secretKey reports whether a body field's name says it holds a secret
// (passwords, PINs, keys, tokens, TOTP codes and secrets).
func secretKey(k string) bool {
	n := strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r == ' ' {
			return -1
		}
		return r
	}, strings.ToLower(k))
	switch n {
	case "key", "pin", "mpin", "tpin", "otp", "sec", "jwt", "session", "sessionid", "auth", "authorization", "cookie", "value1":
		return true
	}
	for _, s := range []string{"password", "passwd", "secret", "token", "apikey", "appkey", "userkey", "encryptionkey", "privatekey", "totp"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

func looksLikeBearer(s string) bool {
	return len(s) > 7 && strings.EqualFold(s[:7], "bearer ")
}

// OrderID finds the broker's order id in an answer's body ("" when none).
// It looks for the fields brokers name their order id with, in order of
// preference: 5paisa BrokerOrderID, Tradingo NorenOrdNo, Pocketful
// oms_order_id, then orderId (Tradovate), order_id (Kite, Upstox v2) and
// orderid (Angel One). Keys compare ignoring case and underscores, and a
// plural key holding a list (Upstox v3 order_ids) gives its first id.
func OrderID(body []byte) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return ""
	}
	for _, want := range [...]string{"brokerorderid", "norenordno", "omsorderid", "orderid"} {
		if id := findKey(v, want, 0); id != "" {
			return id
		}
	}
	return ""
}

func findKey(v any, want string, depth int) string {
	if depth > 8 {
		return ""
	}
	m, ok := v.(map[string]any)
	if ok {
		for k, x := range m {
			switch strings.ReplaceAll(strings.ToLower(k), "_", "") {
			case want:
				if id := idValue(x); id != "" {
					return id
				}
			case want + "s":
				if a, ok := x.([]any); ok && len(a) > 0 {
					if id := idValue(a[0]); id != "" {
						return id
					}
				}
			}
		}
		for _, x := range m {
			if id := findKey(x, want, depth+1); id != "" {
				return id
			}
		}
		return ""
	}
	if a, ok := v.([]any); ok {
		for _, x := range a {
			if id := findKey(x, want, depth+1); id != "" {
				return id
			}
		}
	}
	return ""
}

// idValue is x as an order id: a non-empty, non-zero string of at most 64
// bytes of UTF-8, or a non-zero number ("" otherwise).
func idValue(x any) string {
	switch t := x.(type) {
	case string:
		if t != "" && t != "0" && utf8.ValidString(t) && len(t) <= 64 {
			return t
		}
	case json.Number:
		if t.String() != "0" {
			return t.String()
		}
	}
	return ""
}

// Outcome classifies a broker's answer to an order: broker_error for a
// status of 400 or more and for the error envelopes the brokers send with a
// 200 (Tradingo IsError, Pocketful, Kite and Upstox status "error", Angel
// One status or success false, Tradovate failureReason, 5paisa a non-zero
// body.Status or head.status); ok otherwise.
func Outcome(status int, body []byte) string {
	if status >= 400 {
		return OutcomeBrokerError
	}
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return OutcomeOK
	}
	if b, _ := m["IsError"].(bool); b {
		return OutcomeBrokerError
	}
	if s, _ := m["status"].(string); strings.EqualFold(s, "error") {
		return OutcomeBrokerError
	}
	for _, k := range [...]string{"status", "success"} {
		if b, ok := m[k].(bool); ok && !b {
			return OutcomeBrokerError
		}
	}
	if s, _ := m["failureReason"].(string); s != "" && !strings.EqualFold(s, "Success") {
		return OutcomeBrokerError
	}
	if b, ok := m["body"].(map[string]any); ok {
		if n, ok := b["Status"].(float64); ok && n != 0 {
			return OutcomeBrokerError
		}
	}
	if h, ok := m["head"].(map[string]any); ok {
		if s, ok := h["status"].(string); ok && s != "0" {
			return OutcomeBrokerError
		}
	}
	return OutcomeOK
}
