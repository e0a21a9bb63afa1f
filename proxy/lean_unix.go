//go:build linux || darwin || freebsd || netbsd || openbsd

package proxy

import (
	"net"
	"syscall"
	"time"
	"unsafe"
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
		// MSG_DONTWAIT: it never blocks, so a raw call (no runtime
		// bookkeeping, see rawIOConn) is enough.
		_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&buf[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		alive = errno == syscall.EAGAIN || errno == syscall.EWOULDBLOCK
		return true
	})
	return cerr == nil && alive
}
