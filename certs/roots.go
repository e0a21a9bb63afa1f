package certs

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// ErrNoSystemRoots is returned (wrapped) by [SystemRootsPEM] when no root
// certificate bundle is found in the system's usual locations.
var ErrNoSystemRoots = errors.New("no system root certificates found")

// maxRootsFileSize bounds what SystemRootsPEM reads from one file.
const maxRootsFileSize = 16 << 20

// SystemRootsPEM returns the system's root certificates in PEM form: the
// contents of the first bundle file found in the places Go's crypto/x509
// looks on this OS, or else the certificates gathered from its certificate
// directories. SSL_CERT_FILE and SSL_CERT_DIR are deliberately ignored:
// users point them at authproxy's own bundle.pem, which is built from this.
// It returns an error wrapping [ErrNoSystemRoots] when nothing is found
// (always so on Windows, whose roots live in the registry).
func SystemRootsPEM() ([]byte, error) {
	files, dirs := rootLocations(runtime.GOOS)
	return systemRootsPEM(files, dirs)
}

// rootLocations mirrors crypto/x509's certFiles and certDirectories.
func rootLocations(goos string) (files, dirs []string) {
	linuxFiles := []string{
		"/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu, Gentoo, Arch
		"/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora, RHEL 6
		"/etc/ssl/ca-bundle.pem",                            // openSUSE
		"/etc/pki/tls/cacert.pem",                           // OpenELEC
		"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7
		"/etc/ssl/cert.pem",                                 // Alpine
	}
	linuxDirs := []string{"/etc/ssl/certs", "/etc/pki/tls/certs"}
	bsdFiles := []string{
		"/usr/local/etc/ssl/cert.pem",            // FreeBSD
		"/etc/ssl/cert.pem",                      // OpenBSD
		"/usr/local/share/certs/ca-root-nss.crt", // DragonFly
		"/etc/openssl/certs/ca-certificates.crt", // NetBSD
	}
	bsdDirs := []string{"/etc/ssl/certs", "/usr/local/share/certs", "/etc/openssl/certs"}
	switch goos {
	case "linux":
		return linuxFiles, linuxDirs
	case "android":
		return linuxFiles, append(linuxDirs, "/system/etc/security/cacerts", "/data/misc/keychain/certs-added")
	case "freebsd", "openbsd", "netbsd", "dragonfly":
		return bsdFiles, bsdDirs
	case "darwin", "ios":
		// Go asks the Security framework; this file is the same roots as
		// shipped for LibreSSL.
		return []string{"/etc/ssl/cert.pem", "/private/etc/ssl/cert.pem"}, nil
	case "solaris", "illumos":
		return []string{
			"/etc/certs/ca-certificates.crt",     // Solaris 11.2+
			"/etc/ssl/certs/ca-certificates.crt", // Joyent SmartOS
			"/etc/ssl/cacert.pem",                // OmniOS
		}, []string{"/etc/certs/CA"}
	case "aix":
		return []string{"/var/ssl/certs/ca-bundle.crt"}, []string{"/var/ssl/certs"}
	case "windows", "plan9", "js", "wasip1":
		return nil, nil
	default:
		return slices.Concat(linuxFiles, bsdFiles), slices.Concat(linuxDirs, bsdDirs)
	}
}

func systemRootsPEM(files, dirs []string) ([]byte, error) {
	var firstErr error // the first failure other than a missing file
	for _, f := range files {
		data, err := readLimited(f)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) && firstErr == nil {
				firstErr = err
			}
			continue
		}
		if countCerts(data) > 0 {
			return data, nil
		}
	}
	var (
		out  bytes.Buffer
		seen = make(map[string]bool)
	)
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue // missing or unreadable: like crypto/x509, try the next
		}
		for _, e := range entries {
			path := filepath.Join(dir, e.Name())
			if e.Type()&fs.ModeSymlink != 0 && linksWithin(path, dir) {
				continue // hash links (c_rehash) to files read anyway
			}
			data, err := readLimited(path)
			if err != nil {
				continue
			}
			appendCertBlocks(&out, data, seen)
		}
	}
	if out.Len() == 0 {
		err := fmt.Errorf("looked in %s: %w", strings.Join(slices.Concat(files, dirs), ", "), ErrNoSystemRoots)
		if firstErr != nil {
			err = fmt.Errorf("%w (%w)", err, firstErr)
		}
		return nil, err
	}
	return out.Bytes(), nil
}

func readLimited(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if fi.Size() > maxRootsFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxRootsFileSize)
	}
	return os.ReadFile(path)
}

// linksWithin reports whether the symlink at path points to a file in dir.
func linksWithin(path, dir string) bool {
	target, err := os.Readlink(path)
	if err != nil {
		return false
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(dir, target)
	}
	return filepath.Dir(target) == filepath.Clean(dir)
}

// countCerts returns how many parseable CERTIFICATE blocks data holds.
func countCerts(data []byte) int {
	n := 0
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return n
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err == nil {
			n++
		}
	}
}

// appendCertBlocks re-encodes each parseable certificate in data that is not
// in seen yet.
func appendCertBlocks(out *bytes.Buffer, data []byte, seen map[string]bool) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return
		}
		if block.Type != "CERTIFICATE" || seen[string(block.Bytes)] {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			continue
		}
		seen[string(block.Bytes)] = true
		// Encoding to a bytes.Buffer cannot fail.
		_ = pem.Encode(out, &pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes})
	}
}
