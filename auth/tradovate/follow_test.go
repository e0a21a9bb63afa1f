package tradovate_test

import (
	"net/url"
	"testing"

	"github.com/authproxy/authproxy/auth/tradovate"
)

func TestFollowRedirectOnlyToTradovate(t *testing.T) {
	var b tradovate.Broker
	for raw, want := range map[string]bool{
		"https://live-api-d.tradovateapi.com/v1/x": true,
		"https://LIVE.tradovateapi.com./v1/x":      true,
		"https://demo.tradovateapi.com:443/v1/x":   true,
		"http://live.tradovateapi.com/v1/x":        false,
		"https://live.tradovateapi.com:8443/v1/x":  false,
		"https://u:p@live.tradovateapi.com/v1/x":   false,
		"https://tradovateapi.com.evil.example/":   false,
		"https://eviltradovateapi.com/":            false,
	} {
		u, _ := url.Parse(raw)
		if got := b.FollowRedirect(u); got != want {
			t.Errorf("FollowRedirect(%s) = %v, want %v", raw, got, want)
		}
	}
}
