//go:build linux

package proxy

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawIOConn reads and writes a TCP connection with raw system calls on its
// non-blocking socket, waiting for readiness through the runtime's poller
// (syscall.RawConn) as net.TCPConn does. The difference is what the runtime
// does around each call: syscall.Read and syscall.Write enter and leave a
// "blocking syscall" state, and on a quiet moment the first such entry
// wakes the runtime's monitor thread, which then polls every 20 µs and may
// hand the processor to another thread while a loopback write is under
// way. On the 2-core bench machine that bookkeeping was a quarter of the
// proxy's CPU per keep-alive request (BENCHMARKS.md). A non-blocking socket
// call never blocks, so it needs none of it (RawSyscall's rule).
type rawIOConn struct {
	*net.TCPConn
	rc syscall.RawConn
}

// rawIO wraps c when it is a TCP connection whose socket can be reached,
// and returns c unchanged otherwise.
func rawIO(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &rawIOConn{TCPConn: tc, rc: rc}
}

func (c *rawIOConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var (
		n     int
		errno syscall.Errno
	)
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // wait until readable
			}
			n, errno = int(r), e
			return true
		}
	})
	if err == nil && errno != 0 {
		err = os.NewSyscallError("read", errno)
	}
	if err != nil {
		return 0, c.opError("read", err)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (c *rawIOConn) Write(p []byte) (int, error) {
	var (
		nn    int
		errno syscall.Errno
	)
	err := c.rc.Write(func(fd uintptr) bool {
		for nn < len(p) {
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[nn])), uintptr(len(p)-nn))
			switch e {
			case 0:
				nn += int(r)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // wait until writable
			default:
				errno = e
				return true
			}
		}
		return true
	})
	if err == nil && errno != 0 {
		err = os.NewSyscallError("write", errno)
	}
	if err != nil {
		return nn, c.opError("write", err)
	}
	return nn, nil
}

// opError shapes err as net.TCPConn's would be: timeouts, a closed
// connection (net.ErrClosed) and resets are told apart the same way.
func (c *rawIOConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
