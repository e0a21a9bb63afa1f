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
	for network, ln := range loopbackListeners(t) {
		c, s := dialAccept(t, ln)
		client := netip.MustParseAddrPort(s.RemoteAddr().String())
		server := netip.MustParseAddrPort(s.LocalAddr().String())
		d := &sockDiag{}
		defer d.close()
		got, err := d.lookupUID(client, server)
		if err != nil {
			t.Skipf("sock_diag unavailable here: %v", err)
		}
		want, err := procPeerUID(client, server)
		if err != nil || got != want {
			t.Errorf("%s: sock_diag uid %d, /proc uid %d (err %v)", network, got, want, err)
		}
		// The server's own end is not a client socket to server.
		if _, err := d.lookupUID(server, netip.AddrPortFrom(server.Addr(), server.Port()+1)); !errors.Is(err, ErrPeerUnknown) {
			t.Errorf("%s: unknown socket: err %v, want ErrPeerUnknown", network, err)
		}
		c.Close()
		s.Close()
		ln.Close()
	}
}

// TestSockDiagKeepsOneSocket: a proxy's lookups share one netlink socket,
// answer each connection (and an unknown one) correctly in turn, and after
// close keep working without keeping a socket.
func TestSockDiagKeepsOneSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := &sockDiag{}
	uid, closeFn := d.peerUID, d.close
	var firstFD int
	for i := range 20 {
		c, s := dialAccept(t, ln)
		client := netip.MustParseAddrPort(s.RemoteAddr().String())
		server := netip.MustParseAddrPort(s.LocalAddr().String())
		want, perr := procPeerUID(client, server)
		got, err := uid(client, server)
		if err != nil || perr != nil || got != want {
			t.Fatalf("lookup %d: uid %d err %v, /proc says %d (%v)", i, got, err, want, perr)
		}
		if _, err := uid(server, netip.AddrPortFrom(server.Addr(), server.Port()+1)); !errors.Is(err, ErrPeerUnknown) {
			t.Fatalf("lookup %d of an unknown socket: %v", i, err)
		}
		if i == 0 {
			firstFD = d.fd
		} else if !d.ok || d.fd != firstFD {
			t.Fatalf("lookup %d: socket %d (open %v), want the first one (%d) kept", i, d.fd, d.ok, firstFD)
		}
		c.Close()
		s.Close()
	}
	closeFn()
	_, s := dialAccept(t, ln)
	if _, err := uid(netip.MustParseAddrPort(s.RemoteAddr().String()), netip.MustParseAddrPort(s.LocalAddr().String())); err != nil {
		t.Fatalf("after close: %v", err)
	}
	if d.ok {
		t.Fatal("a lookup after close kept a socket open")
	}
}
