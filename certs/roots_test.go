package certs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func writeTestFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSystemRootsPEMFiles(t *testing.T) {
	root := t.TempDir()
	missing := filepath.Join(root, "missing.crt")
	empty := filepath.Join(root, "empty.crt")
	noCerts := filepath.Join(root, "nocerts.crt")
	bundle := filepath.Join(root, "bundle.crt")
	later := filepath.Join(root, "later.crt")
	writeTestFile(t, empty, nil)
	writeTestFile(t, noCerts, []byte("# nothing here\n"))
	want := append(fakeRootsPEM(t), '\n')
	writeTestFile(t, bundle, want)
	writeTestFile(t, later, fakeRootsPEM(t))

	got, err := systemRootsPEM([]string{missing, empty, noCerts, bundle, later}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("did not return the first bundle file holding certificates, verbatim")
	}
}

func TestSystemRootsPEMDirectories(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "certs")
	a, b := fakeRootsPEM(t), fakeRootsPEM(t)
	writeTestFile(t, filepath.Join(dir, "a.pem"), a)
	writeTestFile(t, filepath.Join(dir, "b.pem"), append(append(slices.Clone(b), '\n'), a...)) // a twice
	writeTestFile(t, filepath.Join(dir, "README"), []byte("not a certificate"))
	// A c_rehash style link inside the directory is skipped; the file it
	// points to is read anyway.
	if err := os.Symlink("a.pem", filepath.Join(dir, "1234abcd.0")); err != nil {
		t.Fatal(err)
	}

	got, err := systemRootsPEM([]string{filepath.Join(root, "missing.crt")}, []string{filepath.Join(root, "nodir"), dir})
	if err != nil {
		t.Fatal(err)
	}
	if n := countCerts(got); n != 2 {
		t.Errorf("got %d certificates, want 2 (deduplicated)", n)
	}
	for _, want := range [][]byte{a, b} {
		if !bytes.Contains(got, want) {
			t.Error("a certificate from the directory is missing")
		}
	}
}

func TestSystemRootsPEMNone(t *testing.T) {
	root := t.TempDir()
	_, err := systemRootsPEM([]string{filepath.Join(root, "missing.crt")}, []string{root})
	if !errors.Is(err, ErrNoSystemRoots) {
		t.Errorf("err = %v, want ErrNoSystemRoots", err)
	}
	if _, err := systemRootsPEM(nil, nil); !errors.Is(err, ErrNoSystemRoots) {
		t.Errorf("no locations: err = %v, want ErrNoSystemRoots", err)
	}
}

func TestSystemRootsPEMIgnoresSSLCertFile(t *testing.T) {
	fake := fakeRootsPEM(t)
	path := filepath.Join(t.TempDir(), "bundle.pem")
	writeTestFile(t, path, fake)
	t.Setenv("SSL_CERT_FILE", path)
	t.Setenv("SSL_CERT_DIR", filepath.Dir(path))

	got, err := SystemRootsPEM()
	if err != nil && !errors.Is(err, ErrNoSystemRoots) {
		t.Fatal(err)
	}
	if bytes.Contains(got, bytes.TrimSpace(fake)) {
		t.Error("SystemRootsPEM read SSL_CERT_FILE / SSL_CERT_DIR")
	}
}

func TestRootLocations(t *testing.T) {
	files, dirs := rootLocations("linux")
	if files[0] != "/etc/ssl/certs/ca-certificates.crt" || !slices.Contains(dirs, "/etc/ssl/certs") {
		t.Errorf("linux locations = %q %q", files, dirs)
	}
	if files, _ := rootLocations("darwin"); !slices.Contains(files, "/etc/ssl/cert.pem") {
		t.Errorf("darwin files = %q", files)
	}
	if files, _ := rootLocations("freebsd"); !slices.Contains(files, "/usr/local/etc/ssl/cert.pem") {
		t.Errorf("freebsd files = %q", files)
	}
	if files, dirs := rootLocations("windows"); len(files)+len(dirs) != 0 {
		t.Errorf("windows locations = %q %q", files, dirs)
	}
}
