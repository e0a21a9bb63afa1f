//go:build linux

package proxy

import (
	"errors"
	"net"
	"net/netip"
	"testing"
)

// sock_diag and the /proc scan agree on a real socket, and both report an
// unknown four-tuple as ErrPeerUnknown.
func TestSockDiagMatchesProc(t *testing.T) {
	for _, network := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln, err := net.Listen("tcp", network)
		if err != nil {
			if network == "[::1]:0" {
				continue // no IPv6 loopback here
			}
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		client := netip.MustParseAddrPort(s.RemoteAddr().String())
		server := netip.MustParseAddrPort(s.LocalAddr().String())
		got, err := sockDiagUID(client, server)
		if err != nil {
			t.Skipf("sock_diag unavailable here: %v", err)
		}
		want, err := procPeerUID(client, server)
		if err != nil || got != want {
			t.Errorf("%s: sock_diag uid %d, /proc uid %d (err %v)", network, got, want, err)
		}
		// The server's own end is not a client socket to server.
		if _, err := sockDiagUID(server, netip.AddrPortFrom(server.Addr(), server.Port()+1)); !errors.Is(err, ErrPeerUnknown) {
			t.Errorf("%s: unknown socket: err %v, want ErrPeerUnknown", network, err)
		}
		c.Close()
		s.Close()
		ln.Close()
	}
}
