//go:build unix

package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockWaitMax bounds how long lockFile waits for another holder.
const lockWaitMax = 10 * time.Second

// lockFile takes an exclusive flock on path (created 0600), waiting until ctx
// is done or lockWaitMax has passed. flock locks belong to the open file, so two FileStores
// in one process exclude each other as two processes do.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	// O_NOFOLLOW: a symlink planted as the lock file is never followed.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	wait := time.Millisecond
	deadline := time.Now().Add(lockWaitMax)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("flock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			_ = f.Close()
			return nil, fmt.Errorf("flock %s: still held by another process after %s", path, lockWaitMax)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			_ = f.Close()
			return nil, ctx.Err()
		case <-t.C:
		}
		if wait < 10*time.Millisecond {
			wait *= 2
		}
	}
}
