package proxy

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// ErrPeerUnknown means the owner of a client socket could not be found.
var ErrPeerUnknown = errors.New("peer socket not found")

// PeerUIDFunc returns the Unix uid owning the client end of a TCP
// connection from client to server (both on this machine).
type PeerUIDFunc func(client, server netip.AddrPort) (uid int, err error)

// parseProcNetTCP scans a /proc/net/tcp or /proc/net/tcp6 table for the
// socket whose local address is client and whose remote address is server,
// and returns its uid. Addresses compare after unmapping IPv4-in-IPv6.
func parseProcNetTCP(r io.Reader, client, server netip.AddrPort) (int, error) {
	client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
	server = netip.AddrPortFrom(server.Addr().Unmap(), server.Port())
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	first := true
	for sc.Scan() {
		if first { // header line
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 8 {
			continue
		}
		local, err := parseProcAddr(f[1])
		if err != nil || local != client {
			continue
		}
		remote, err := parseProcAddr(f[2])
		if err != nil || remote != server {
			continue
		}
		uid, err := strconv.Atoi(f[7])
		if err != nil || uid < 0 {
			return 0, fmt.Errorf("bad uid %q in socket table", f[7])
		}
		return uid, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, ErrPeerUnknown
}

// parseProcAddr decodes "0100007F:1F90" (IPv4) or a 32-hex-digit IPv6
// address and port, as the kernel prints them: each 32-bit word of the
// address in the host's byte order.
func parseProcAddr(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok || (len(a) != 8 && len(a) != 32) || len(p) != 4 {
		return netip.AddrPort{}, errors.New("bad socket address")
	}
	raw, err := hex.DecodeString(a)
	if err != nil {
		return netip.AddrPort{}, err
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ip := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(ip[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}
