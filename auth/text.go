package auth

import (
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxMessageLen bounds broker text passed on to clients and logs.
const MaxMessageLen = 300

// BrokerMessage makes a broker's own text safe to show and log: none of
// secrets (each at least 4 bytes long is replaced by REDACTED), valid UTF-8,
// no control characters, spaces collapsed, at most MaxMessageLen bytes.
func BrokerMessage(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, Redacted)
		}
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r) {
			return ' '
		}
		return r
	}, s)
	return Clip(strings.Join(strings.Fields(s), " "), MaxMessageLen)
}

// Clip cuts s to at most n bytes on a rune boundary and marks a cut with
// "…"; a valid UTF-8 s stays valid.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// IsB64Token reports whether s fits RFC 6750's b64token (at most 16 KiB),
// so it can go into an Authorization header as is.
func IsB64Token(s string) bool {
	if s == "" || len(s) > 16<<10 {
		return false
	}
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/':
		default:
			return false
		}
	}
	return true
}

// StatusText names an HTTP status for messages: "HTTP 502 Bad Gateway", or
// "HTTP 599" for a code without a name.
func StatusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return "HTTP " + strconv.Itoa(code) + " " + t
	}
	return "HTTP " + strconv.Itoa(code)
}

// StatusName is a status's bare name, "Bad Gateway", or "HTTP 599" for a
// code without one.
func StatusName(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "HTTP " + strconv.Itoa(code)
}

// RetryAfter parses a Retry-After value: delay-seconds (at most a day) or an
// HTTP date, relative to now (a past date is 0). ok is false when v is
// absent, negative or unreadable.
func RetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, int64(24*time.Hour/time.Second))) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// RetryAfterWithin is the delay a Retry-After value asks for, def when it
// is absent or unreadable, bounded to [lo, hi].
func RetryAfterWithin(v string, now time.Time, def, lo, hi time.Duration) time.Duration {
	d, ok := RetryAfter(v, now)
	if !ok {
		d = def
	}
	return min(max(d, lo), hi)
}

// Alnum reports whether s is 1 to maxLen ASCII letters and digits.
func Alnum(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
