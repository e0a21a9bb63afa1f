package fivepaisa

import (
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/authproxy/authproxy/auth"
)

// FeedPath is the market-feed WebSocket on the feed hosts (matched in any
// case). It authenticates in its query: Value1=<access token>|<client code>
// (brokers.md §3, "WebSocket authentication").
const FeedPath = "/feeds/api/chat"

// isFeedRequest reports whether r is for the market-feed socket.
func isFeedRequest(r *http.Request) bool {
	return r.URL != nil && isFeedHost(auth.RequestHost(r)) && strings.EqualFold(path.Clean("/"+r.URL.Path), FeedPath)
}

// setFeedCredentials writes Value1=<token>|<code> into r's query, replacing
// every Value1 the client sent (any spelling of the name: a placeholder, an
// old token) and keeping the other parameters as the client wrote them. The
// "|" is left unescaped, as 5paisa's own clients send it.
func setFeedCredentials(r *http.Request, token, code string) {
	var kept []string
	if r.URL.RawQuery != "" {
		for _, part := range strings.Split(r.URL.RawQuery, "&") {
			k, _, _ := strings.Cut(part, "=")
			if uk, err := url.QueryUnescape(k); (err == nil && strings.EqualFold(uk, "Value1")) || strings.EqualFold(k, "Value1") {
				continue
			}
			if part != "" {
				kept = append(kept, part)
			}
		}
	}
	kept = append(kept, "Value1="+url.QueryEscape(token)+"|"+url.QueryEscape(code))
	r.URL.RawQuery = strings.Join(kept, "&")
	r.URL.ForceQuery = false
}

// feedCredentials sets the feed socket's query credentials on r, or says
// why it cannot: without a client code 5paisa refuses the socket.
func (s *session) feedCredentials(r *http.Request, t *auth.Token) error {
	code := t.Meta["client_code"]
	if code == "" {
		code = s.clientCode
	}
	if code == "" {
		return &auth.LoginError{Account: s.account,
			Message: "the login reported no client code, which the market feed needs (set client_code)"}
	}
	setFeedCredentials(r, t.Access.Reveal(), code)
	return nil
}
