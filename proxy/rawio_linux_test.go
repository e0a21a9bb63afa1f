//go:build linux

package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func rawPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, s := dialAccept(t, ln)
	rc := rawIO(s)
	if _, ok := rc.(*rawIOConn); !ok {
		t.Fatalf("rawIO gave %T", rc)
	}
	t.Cleanup(func() { c.Close(); rc.Close() })
	return rc, c
}

// TestRawIOConnBehavesLikeTCPConn: data both ways (a large write waits for
// the reader), EOF, deadlines and a closed connection give the errors
// net.TCPConn gives.
func TestRawIOConnBehavesLikeTCPConn(t *testing.T) {
	rc, peer := rawPair(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB: more than the socket buffers
	done := make(chan error, 1)
	go func() {
		_, err := rc.Write(big)
		done <- err
	}()
	got, err := io.ReadAll(io.LimitReader(peer, int64(len(big))))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("peer read %d bytes (%v), want the %d written", len(got), err, len(big))
	}
	if err := <-done; err != nil {
		t.Fatalf("write: %v", err)
	}
	if _, err := peer.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, err := rc.Read(buf); err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("read %q %v", buf[:n], err)
	}

	_ = rc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err = rc.Read(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	_ = rc.SetReadDeadline(time.Time{})

	peer.Close()
	if n, err := rc.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read after the peer closed: %d %v, want EOF", n, err)
	}
	rc.Close()
	if _, err := rc.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v, want net.ErrClosed", err)
	}
	if _, err := rc.Write(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v, want net.ErrClosed", err)
	}
}

// TestRawIOConnWriteToAResetPeer fails with an error, as net.TCPConn does.
func TestRawIOConnWriteToAResetPeer(t *testing.T) {
	rc, peer := rawPair(t)
	_ = peer.(*net.TCPConn).SetLinger(0)
	peer.Close() // a reset
	var err error
	for range 100 {
		if _, err = rc.Write([]byte("x")); err != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "write" {
		t.Fatalf("writes to a reset peer: %v, want a write OpError", err)
	}
}
