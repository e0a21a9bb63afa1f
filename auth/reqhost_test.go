package auth

import (
	"net/http"
	"net/url"
	"testing"
)

func TestRequestHost(t *testing.T) {
	for _, c := range []struct {
		r    *http.Request
		want string
	}{
		{&http.Request{URL: &url.URL{Host: "API.Kite.Trade:443"}, Host: "other"}, "api.kite.trade"},
		{&http.Request{URL: &url.URL{Path: "/x"}, Host: "ws.kite.trade."}, "ws.kite.trade"},
		{&http.Request{Host: "[::1]:8080"}, "::1"},
		{&http.Request{}, ""},
	} {
		if got := RequestHost(c.r); got != c.want {
			t.Errorf("RequestHost(%v) = %q, want %q", c.r, got, c.want)
		}
	}
}
