package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DefaultFile is the config file's base name.
const DefaultFile = "rules.toml"

// Find resolves the config path: flag if non-empty, else $AUTHPROXY_CONFIG,
// else ./rules.toml if it exists, else $XDG_CONFIG_HOME/authproxy/rules.toml
// ($XDG_CONFIG_HOME defaults to ~/.config). getenv is os.Getenv in
// production. A path named by the flag or the variable is returned without
// looking at the file system; the last candidate must exist, else the error
// (wrapping fs.ErrNotExist) names the places that were tried.
func Find(flag string, getenv func(string) string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if p := getenv("AUTHPROXY_CONFIG"); p != "" {
		return p, nil
	}
	if fileExists(DefaultFile) {
		return DefaultFile, nil
	}
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := homeDir(getenv("HOME"))
		if err != nil {
			return "", fmt.Errorf("find config: no --config, $AUTHPROXY_CONFIG or ./%s, and %w", DefaultFile, err)
		}
		dir = filepath.Join(home, ".config")
	}
	p := filepath.Join(dir, "authproxy", DefaultFile)
	if !fileExists(p) {
		return "", fmt.Errorf("find config: no ./%s and no %s (pass --config FILE or set AUTHPROXY_CONFIG): %w",
			DefaultFile, p, fs.ErrNotExist)
	}
	return p, nil
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// homeDir returns home when it is set, else the user's home directory.
func homeDir(home string) (string, error) {
	if home != "" {
		return home, nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the home directory: %w", err)
	}
	if h == "" {
		return "", errors.New("cannot find the home directory")
	}
	return h, nil
}
