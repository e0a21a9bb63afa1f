package proxy

import "strings"

// maxHintHeader bounds X-Authproxy-Hint.
const maxHintHeader = 512

// hintHeader is the X-Authproxy-Hint value: "<code> (account NAME):
// message; hint", on one line of printable ASCII, for clients that show
// only the status line and headers (requests' raise_for_status() says just
// "502 Bad Gateway"). It holds nothing the JSON body does not.
func hintHeader(e *ClientError) string {
	var b strings.Builder
	b.WriteString(e.Code)
	if e.Account != "" {
		b.WriteString(" (account " + e.Account + ")")
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Hint != "" {
		b.WriteString("; " + e.Hint)
	}
	out := []byte(b.String())
	for i, c := range out {
		if c < 0x20 || c > 0x7e {
			out[i] = ' '
		}
	}
	s := strings.TrimSpace(string(out))
	if len(s) > maxHintHeader {
		s = s[:maxHintHeader-3] + "..."
	}
	return s
}
