package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"

	"github.com/authproxy/authproxy/config"
)

// ownRequest builds a request to the running proxy's own endpoint path,
// with the [proxy_auth] credentials for account ("" for any) when the config
// has users. Send it with ownClient.
func ownRequest(ctx context.Context, cfg *config.Config, method, path, account string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+proxyAddr(cfg)+path, body)
	if err != nil {
		return nil, err
	}
	if user, pass := statusCredentials(cfg, account); user != "" {
		req.SetBasicAuth(user, pass.Reveal())
	}
	return req, nil
}

// ownClient talks to the proxy's own endpoints directly, never through a
// proxy from the environment. Every caller bounds its request with a
// context deadline (a token request may wait for a login).
func ownClient() *http.Client {
	return &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
}

// notListening reports whether err means nothing accepted the connection
// (no proxy runs there), as opposed to a proxy that failed to answer.
func notListening(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
