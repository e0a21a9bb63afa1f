package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// trustStore is one system certificate store authproxy knows how to add a
// CA to: a directory of anchors plus the command that rebuilds the bundle.
type trustStore struct {
	name    string // for messages
	dir     string // anchors directory
	ext     string // file extension the tool reads
	refresh []string
}

// linuxStores are the anchor directories of Debian/Ubuntu and
// Fedora/RHEL, in that order.
func linuxStores() []trustStore {
	return []trustStore{
		{"Debian/Ubuntu", "/usr/local/share/ca-certificates", ".crt", []string{"update-ca-certificates"}},
		{"Fedora/RHEL", "/etc/pki/ca-trust/source/anchors", ".pem", []string{"update-ca-trust", "extract"}},
	}
}

// anchorName is the file name authproxy's CA gets in a store: one per state
// dir, so `ca install` after `ca rotate` replaces the old CA.
func anchorName(stateDir string) string {
	sum := sha256.Sum256([]byte(stateDir))
	return "authproxy-" + hex.EncodeToString(sum[:4])
}

// storeRoot is "/" normally; AUTHPROXY_CA_STORE_ROOT (for tests) puts the
// anchor directories under another root so tests never touch the machine.
func storeRoot(e env) string {
	if r := e.getenv("AUTHPROXY_CA_STORE_ROOT"); r != "" {
		return r
	}
	return "/"
}

// findStore returns the first store whose anchors directory exists and
// whose refresh tool is on PATH.
func findStore(e env) (trustStore, bool) {
	for _, s := range linuxStores() {
		s.dir = filepath.Join(storeRoot(e), s.dir)
		if fi, err := os.Stat(s.dir); err != nil || !fi.IsDir() {
			continue
		}
		if _, err := exec.LookPath(s.refresh[0]); err != nil {
			continue
		}
		return s, true
	}
	return trustStore{}, false
}

func runTool(ctx context.Context, e env, argv ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = e.stderr, e.stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return nil
}

// caInstall adds the CA to the system store where it can, else prints the
// exact manual step and fails.
func caInstall(ctx context.Context, e env, stateDir, certPath string, pem []byte) error {
	if runtime.GOOS == "darwin" && storeRoot(e) == "/" {
		argv := []string{"security", "add-trusted-cert", "-r", "trustRoot", "-k", filepath.Join(os.Getenv("HOME"), "Library/Keychains/login.keychain-db"), certPath}
		if err := runTool(ctx, e, argv...); err != nil {
			fmt.Fprintf(e.stderr, "could not add the CA to your login keychain (%v); do it by hand:\n  %s\n", err, strings.Join(argv, " "))
			return errSilent
		}
		fmt.Fprintf(e.stdout, "added %s to your login keychain as a trusted root (Safari, Chrome, curl and Python's truststore use it)\nundo: authproxy ca uninstall\n", certPath)
		return nil
	}
	s, ok := findStore(e)
	if !ok {
		fmt.Fprintf(e.stderr, "no system certificate store authproxy knows how to update here (looked for %s).\nTrust the CA by hand, or point clients at it:\n  eval \"$(authproxy env)\"   # SSL_CERT_FILE, REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS\n  CA: %s\n",
			describeStores(), certPath)
		return errSilent
	}
	dst := filepath.Join(s.dir, anchorName(stateDir)+s.ext)
	manual := fmt.Sprintf("sudo cp %s %s && sudo %s", shQuote(certPath), dst, strings.Join(s.refresh, " "))
	if err := writeAnchor(dst, pem); err != nil {
		fmt.Fprintf(e.stderr, "cannot write %s (%v). Run this instead:\n  %s\n", dst, shortErr(err), manual)
		return errSilent
	}
	if err := runTool(ctx, e, s.refresh...); err != nil {
		fmt.Fprintf(e.stderr, "wrote %s, but %v. Run this instead:\n  sudo %s\n", dst, err, strings.Join(s.refresh, " "))
		return errSilent
	}
	fmt.Fprintf(e.stdout, "added the authproxy CA to the %s system store: %s\n(programs that use the system store, curl included, now trust the proxy; Python requests still needs REQUESTS_CA_BUNDLE from `authproxy env`, or the truststore package)\nundo: authproxy ca uninstall\n", s.name, dst)
	return nil
}

func caUninstall(ctx context.Context, e env, stateDir string) error {
	if runtime.GOOS == "darwin" && storeRoot(e) == "/" {
		argv := []string{"security", "delete-certificate", "-c", "authproxy local CA", filepath.Join(os.Getenv("HOME"), "Library/Keychains/login.keychain-db")}
		if err := runTool(ctx, e, argv...); err != nil {
			fmt.Fprintf(e.stderr, "could not remove the CA from your login keychain (%v); do it by hand:\n  %s\n", err, strings.Join(argv, " "))
			return errSilent
		}
		fmt.Fprintln(e.stdout, "removed the authproxy CA from your login keychain")
		return nil
	}
	s, ok := findStore(e)
	if !ok {
		fmt.Fprintf(e.stderr, "no system certificate store authproxy knows how to update here (looked for %s); nothing to undo\n", describeStores())
		return errSilent
	}
	dst := filepath.Join(s.dir, anchorName(stateDir)+s.ext)
	if err := os.Remove(dst); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(e.stdout, "the authproxy CA of %s is not in the %s store (%s): nothing to undo\n", stateDir, s.name, dst)
		return nil
	} else if err != nil {
		fmt.Fprintf(e.stderr, "cannot remove %s (%v). Run this instead:\n  sudo rm %s && sudo %s\n", dst, shortErr(err), dst, strings.Join(s.refresh, " "))
		return errSilent
	}
	if err := runTool(ctx, e, s.refresh...); err != nil {
		fmt.Fprintf(e.stderr, "removed %s, but %v. Run this instead:\n  sudo %s\n", dst, err, strings.Join(s.refresh, " "))
		return errSilent
	}
	fmt.Fprintf(e.stdout, "removed the authproxy CA from the %s system store (%s)\n", s.name, dst)
	return nil
}

func describeStores() string {
	var parts []string
	for _, s := range linuxStores() {
		parts = append(parts, s.dir+" + "+s.refresh[0])
	}
	return strings.Join(parts, ", ")
}

// writeAnchor writes the public CA certificate (0644: every program must
// read it) with an atomic rename.
func writeAnchor(dst string, pem []byte) error {
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, pem, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
