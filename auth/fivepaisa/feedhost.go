package fivepaisa

import (
	"strings"

	"github.com/authproxy/authproxy/auth"
)

// feedHostByServer maps the access token's RedirectServer claim to the feed
// host that serves the account: 5paisa pushes order updates only there.
var feedHostByServer = map[string]string{
	"C": "openfeed.5paisa.com",
	"A": "aopenfeed.5paisa.com",
	"B": "bopenfeed.5paisa.com",
}

// UpstreamHost implements auth.HostRouter: a request to any openfeed host
// goes to the one named by t's RedirectServer claim (C: openfeed, A:
// aopenfeed, B: bopenfeed.5paisa.com); everything else, and a token without
// a known claim, keeps host.
func (s *session) UpstreamHost(host string, t *auth.Token) string {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if t == nil || !strings.HasSuffix(h, "openfeed.5paisa.com") || !isFeedHost(h) {
		return host
	}
	if to, ok := feedHostByServer[strings.ToUpper(strings.TrimSpace(t.Meta["redirect_server"]))]; ok {
		return to
	}
	return host
}

var _ auth.HostRouter = (*Broker)(nil)
var _ auth.HostRouter = (*BrowserBroker)(nil)
