//go:build unix

package auth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A symlink planted as the lock file is not followed: nothing is created
// or truncated at its target.
func TestLockFileDoesNotFollowSymlinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	link := filepath.Join(dir, "tokens.lock")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockFile(context.Background(), link)
	if err == nil {
		unlock()
		t.Fatal("lockFile followed a symlink")
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the symlink's target was created: %v", err)
	}
}
