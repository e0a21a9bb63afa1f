//go:build !linux

package proxy

import (
	"errors"
	"net/netip"
)

// peerUIDSupported is false: this platform offers no way here to tell
// which user owns a loopback client socket; use [proxy_auth].
const peerUIDSupported = false

// newPlatformPeerUID returns a lookup that always fails; there is nothing
// to close.
func newPlatformPeerUID() (PeerUIDFunc, func()) {
	return func(netip.AddrPort, netip.AddrPort) (int, error) {
		return 0, errors.New("peer uid lookup is not supported on this platform")
	}, func() {}
}
