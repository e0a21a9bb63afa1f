package tradovate

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// deviceIDFile holds the Tradovate device id generated for this machine
// when an account configures none: Tradovate ties live orders to a stable
// deviceId, so it is made once and kept.
const deviceIDFile = "tradovate-device-id"

// stableDeviceID returns the device id kept in stateDir, generating and
// saving one (a random UUID, file mode 0600) the first time. Two processes
// racing here end with the same id: the file is published with a hard link,
// which never replaces an existing one.
func stableDeviceID(stateDir string) (string, error) {
	path := filepath.Join(stateDir, deviceIDFile)
	if id, err := readDeviceID(path); err == nil {
		return id, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return "", fmt.Errorf("device id: %w", err)
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("device id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	id := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	tmp, err := os.CreateTemp(stateDir, deviceIDFile+".tmp*")
	if err != nil {
		return "", fmt.Errorf("device id: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.WriteString(id + "\n")
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("device id: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("device id: %w", err)
	}
	return readDeviceID(path)
}

func readDeviceID(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(data))
	if id == "" || len(id) > 128 {
		return "", fmt.Errorf("device id file %s is empty or damaged: delete it to make a new one", path)
	}
	return id, nil
}
