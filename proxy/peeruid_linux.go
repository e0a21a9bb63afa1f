//go:build linux

package proxy

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
)

// peerUIDSupported reports whether defaultPeerUID can tell who owns a
// loopback client socket on this platform.
const peerUIDSupported = true

// defaultPeerUID finds the client socket in /proc/net/tcp and /proc/net/tcp6
// (the proxy's own network namespace, where every loopback peer lives).
func defaultPeerUID(client, server netip.AddrPort) (int, error) {
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(name)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return 0, fmt.Errorf("peer uid: %w", err)
		}
		uid, err := parseProcNetTCP(f, client, server)
		f.Close()
		if err == nil {
			return uid, nil
		}
		if !errors.Is(err, ErrPeerUnknown) {
			return 0, fmt.Errorf("peer uid from %s: %w", name, err)
		}
	}
	return 0, ErrPeerUnknown
}
