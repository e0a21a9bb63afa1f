package auth

import (
	"strings"
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
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > MaxMessageLen {
		cut := MaxMessageLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
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
