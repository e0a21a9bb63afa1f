package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// selfCommand is how the user can run this binary again from a shell:
// "go run ./cmd/authproxy" under go run, "authproxy" when that name on PATH
// is this binary, else its absolute path (installed but not on PATH).
func selfCommand() string {
	exe, err := os.Executable()
	if err != nil {
		return "authproxy"
	}
	return selfCommandFor(exe, exec.LookPath)
}

func selfCommandFor(exe string, lookPath func(string) (string, error)) string {
	if strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/authproxy"
	}
	if onPath, err := lookPath("authproxy"); err == nil && sameFile(onPath, exe) {
		return "authproxy"
	}
	if strings.ContainsAny(exe, " '\\\"$`") {
		return shQuote(exe)
	}
	return exe
}

func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}
