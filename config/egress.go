package config

import (
	"net"
	"net/url"
)

// egressProblem checks an [upstream] proxy URL and says what is wrong with
// it ("" when nothing). The message never repeats a password.
func egressProblem(raw string) string {
	const want = `want "http://[user:pass@]host:port" (HTTP CONNECT) or "socks5://[user:pass@]host:port"`
	u, err := url.Parse(raw)
	if err != nil {
		return "not a URL: " + want
	}
	switch u.Scheme {
	case "http", "socks5", "socks5h":
	default:
		return "unsupported scheme " + `"` + u.Scheme + `": ` + want
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" || !validPort(port) {
		return "the proxy address must be host:port with a port from 1 to 65535: " + want
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "the proxy URL must have no path, query or fragment: " + want
	}
	return ""
}
