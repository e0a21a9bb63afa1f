//go:build linux || darwin || freebsd || netbsd || openbsd

package proxy

import (
	"net"
	"syscall"
	"time"
)

// connAlive reports whether the broker has not closed (or written to) an
// idle connection: one non-blocking MSG_PEEK. An idle HTTP/1.1 connection
// has nothing to read; a FIN (0 bytes), an error or unexpected data (an
// alert) means it must not be reused. A connection it cannot look at (an
// egress proxy's wrapper) counts as alive only after a short idle time.
func connAlive(c net.Conn, idle time.Duration) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return idle < unprobedIdle
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := true
	var buf [1]byte
	cerr := rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		_ = n
		alive = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true
	})
	return cerr == nil && alive
}
