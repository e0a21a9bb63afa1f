package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestLockStateDirDoesNotFollowSymlinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "victim")
	if err := os.Symlink(target, filepath.Join(dir, "authproxy.lock")); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockStateDir(dir)
	if err == nil {
		unlock()
		t.Fatal("lockStateDir followed a symlink")
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the symlink's target was created: %v", err)
	}
}
