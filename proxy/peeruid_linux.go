//go:build linux

package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"
)

// peerUIDSupported reports whether newPlatformPeerUID can tell who owns a
// loopback client socket on this platform.
const peerUIDSupported = true

// newPlatformPeerUID returns the lookup a proxy uses, over one netlink
// socket kept open until close: opening and closing one per connection
// cost two of the thirty-odd system calls of a new connection.
func newPlatformPeerUID() (PeerUIDFunc, func()) {
	d := &sockDiag{}
	return d.peerUID, d.close
}

// sockDiag is a NETLINK_INET_DIAG socket, opened on first use and again
// after an error; lookups take turns.
type sockDiag struct {
	mu     sync.Mutex
	fd     int
	ok     bool // fd is open
	closed bool // by close: later lookups do not keep a socket
	seq    uint32
}

func (d *sockDiag) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.ok {
		syscall.Close(d.fd)
		d.ok = false
	}
}

// peerUID asks the kernel (sock_diag, one exact lookup) who owns the
// client socket, and falls back to scanning /proc/net/tcp and
// /proc/net/tcp6 where netlink is unavailable. Both look in the proxy's own
// network namespace, where every loopback peer lives. The scan reads the
// whole table, TIME_WAIT sockets included: with many short connections it
// cost half the proxy's CPU per new connection (BENCHMARKS.md).
func (d *sockDiag) peerUID(client, server netip.AddrPort) (int, error) {
	uid, err := d.lookupUID(client, server)
	if err == nil || errors.Is(err, ErrPeerUnknown) {
		return uid, err
	}
	return procPeerUID(client, server)
}

// lookupUID looks the client socket up with a SOCK_DIAG_BY_FAMILY
// request for exactly its four-tuple (linux/inet_diag.h); the kernel
// answers with its inet_diag_msg, or an error when there is none.
func (d *sockDiag) lookupUID(client, server netip.AddrPort) (int, error) {
	ca, sa := client.Addr().Unmap(), server.Addr().Unmap()
	if ca.Is4() && sa.Is4() {
		uid, err := d.lookup(syscall.AF_INET, ca, client.Port(), sa, server.Port())
		if !errors.Is(err, ErrPeerUnknown) {
			return uid, err
		}
		// An AF_INET6 socket connected to an IPv4-mapped address.
		ca, sa = netip.AddrFrom16(ca.As16()), netip.AddrFrom16(sa.As16())
	}
	return d.lookup(syscall.AF_INET6, ca, client.Port(), sa, server.Port())
}

func (d *sockDiag) lookup(family uint8, local netip.Addr, lport uint16, remote netip.Addr, rport uint16) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	uid, err := d.lookupLocked(family, local, lport, remote, rport)
	if (d.closed || err != nil && !errors.Is(err, ErrPeerUnknown)) && d.ok {
		// Start over on a fresh socket next time: no stale answer waits.
		syscall.Close(d.fd)
		d.ok = false
	}
	return uid, err
}

func (d *sockDiag) lookupLocked(family uint8, local netip.Addr, lport uint16, remote netip.Addr, rport uint16) (int, error) {
	const (
		sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
		hdrLen           = 16 // nlmsghdr
		reqLen           = 56 // inet_diag_req_v2
		uidOffset        = 64 // idiag_uid in inet_diag_msg
	)
	if !d.ok {
		fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, syscall.NETLINK_INET_DIAG)
		if err != nil {
			return 0, fmt.Errorf("sock_diag: %w", err)
		}
		// The kernel answers at once; never wait long for it.
		tv := syscall.Timeval{Sec: 1}
		if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
			syscall.Close(fd)
			return 0, fmt.Errorf("sock_diag: %w", err)
		}
		d.fd, d.ok = fd, true
	}
	fd := d.fd
	d.seq++
	seq := d.seq
	var req [hdrLen + reqLen]byte
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], sockDiagByFamily)
	ne.PutUint16(req[6:], syscall.NLM_F_REQUEST)
	ne.PutUint32(req[8:], seq)
	r := req[hdrLen:]
	r[0] = family
	r[1] = syscall.IPPROTO_TCP
	ne.PutUint32(r[4:], 0xffffffff) // every state
	id := r[8:]                     // inet_diag_sockid
	binary.BigEndian.PutUint16(id[0:], lport)
	binary.BigEndian.PutUint16(id[2:], rport)
	if family == syscall.AF_INET {
		a, b := local.As4(), remote.As4()
		copy(id[4:], a[:])
		copy(id[20:], b[:])
	} else {
		a, b := local.As16(), remote.As16()
		copy(id[4:], a[:])
		copy(id[20:], b[:])
	}
	ne.PutUint32(id[40:], 0xffffffff) // INET_DIAG_NOCOOKIE
	ne.PutUint32(id[44:], 0xffffffff)
	if err := syscall.Sendto(fd, req[:], 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("sock_diag: %w", err)
	}
	var (
		buf [512]byte
		n   int
	)
	for {
		var err error
		n, _, err = syscall.Recvfrom(fd, buf[:], 0)
		if err != nil {
			return 0, fmt.Errorf("sock_diag: %w", err)
		}
		if n < hdrLen {
			return 0, errors.New("sock_diag: short answer")
		}
		if ne.Uint32(buf[8:]) == seq {
			break
		}
		// An answer to an earlier question: not ours.
	}
	switch ne.Uint16(buf[4:]) {
	case syscall.NLMSG_ERROR:
		if n >= hdrLen+4 && int32(ne.Uint32(buf[hdrLen:])) == -int32(syscall.ENOENT) {
			return 0, ErrPeerUnknown
		}
		return 0, fmt.Errorf("sock_diag: error %d", -int32(ne.Uint32(buf[hdrLen:])))
	case sockDiagByFamily:
		if n < hdrLen+uidOffset+4 {
			return 0, errors.New("sock_diag: short answer")
		}
		// The kernel's lookup falls back to a listening socket on the
		// local address: only the exact connection counts.
		if string(buf[hdrLen+4:hdrLen+4+36]) != string(id[:36]) {
			return 0, ErrPeerUnknown
		}
		return int(ne.Uint32(buf[hdrLen+uidOffset:])), nil
	}
	return 0, fmt.Errorf("sock_diag: unexpected message type %d", ne.Uint16(buf[4:]))
}

// procPeerUID finds the client socket in /proc/net/tcp and /proc/net/tcp6.
func procPeerUID(client, server netip.AddrPort) (int, error) {
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
