package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSelfCommand(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "authproxy")
	if err := os.WriteFile(exe, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	found := func(string) (string, error) { return exe, nil }
	missing := func(string) (string, error) { return "", errors.New("not found") }
	if got := selfCommandFor(exe, found); got != "authproxy" {
		t.Errorf("on PATH: %q", got)
	}
	if got := selfCommandFor(exe, missing); got != exe {
		t.Errorf("not on PATH: %q, want the absolute path", got)
	}
	if got := selfCommandFor("/tmp/go-build123/b001/exe/authproxy", found); got != "go run ./cmd/authproxy" {
		t.Errorf("go run: %q", got)
	}
}
