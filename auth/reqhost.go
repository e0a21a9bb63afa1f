package auth

import (
	"net"
	"net/http"
	"strings"
)

// RequestHost is r's host name (from its URL, else its Host), lower case,
// without port or trailing dot.
func RequestHost(r *http.Request) string {
	h := ""
	if r.URL != nil {
		h = r.URL.Host
	}
	if h == "" {
		h = r.Host
	}
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}
