package main

import (
	"context"
	"errors"
	"net"

	"github.com/authproxy/authproxy/proxy"
)

// checkEgress checks that the [upstream] proxy answers, accepts the
// configured credentials and opens a tunnel to a broker host: without it no
// broker request can leave (DESIGN.md "Static IP").
func (d *doctor) checkEgress(ctx context.Context) {
	raw := d.cfg.Upstream.Proxy
	if raw == "" {
		return
	}
	u, err := proxy.ParseEgress(raw)
	if err != nil {
		d.add(levelFail, "egress", "[upstream] proxy: "+err.Error(), "fix [upstream] proxy in "+d.cfg.Path)
		return
	}
	where := u.Scheme + "://" + u.Host
	host := d.firstHost()
	if host == "" {
		host = "example.com"
	}
	dial, err := proxy.UpstreamOptions{Resolve: d.cfg.Upstream.Resolve, Timeout: d.timeout, Proxy: raw}.EgressDialer()
	if err != nil {
		d.add(levelFail, "egress", shortErr(err), "fix [upstream] proxy in "+d.cfg.Path)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	c, err := dial(ctx, "tcp", net.JoinHostPort(host, "443"))
	if err != nil {
		fix := "start the egress proxy on the machine with the static IP (or its SSH tunnel: ssh -N -D 1080 user@vps for socks5://127.0.0.1:1080), then run doctor again"
		var ee *proxy.EgressError
		if errors.As(err, &ee) {
			fix = "the egress proxy refused the tunnel: check the user and password in [upstream] proxy and that it allows CONNECT to port 443"
		}
		d.add(levelFail, "egress", "egress proxy "+where+" did not open a tunnel to "+host+": "+shortErr(err), fix)
		return
	}
	_ = c.Close()
	d.add(levelOK, "egress", "egress proxy "+where+" answers and opened a tunnel to "+host+":443", "")
}
