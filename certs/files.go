package certs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// writeFileAtomic replaces dir/name with data: a temporary file in dir is
// written, given mode perm, synced and renamed over the target, so readers
// see either the old content or the new, never a mix.
func writeFileAtomic(dir, name string, data []byte, perm fs.FileMode) error {
	tmp, err := stageFile(dir, name, data, perm)
	if err != nil {
		return err
	}
	return commitFile(tmp, filepath.Join(dir, name))
}

// stageFile writes data to a synced temporary file next to dir/name and
// returns its path. On error nothing is left behind.
func stageFile(dir, name string, data []byte, perm fs.FileMode) (path string, err error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("create temporary file for %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return "", fmt.Errorf("set mode of %s: %w", f.Name(), err)
	}
	if _, err := f.Write(data); err != nil {
		return "", fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("close %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}

// commitFile renames a staged file over target and syncs the directory so
// the rename survives a crash. On a failed rename the staged file is removed.
func commitFile(tmp, target string) error {
	if err := os.Rename(tmp, target); err != nil {
		return errors.Join(fmt.Errorf("replace %s: %w", target, err), removeIfExists(tmp))
	}
	return syncDir(filepath.Dir(target))
}

// commitNewFile moves a staged file to target unless target exists, in
// which case it fails with an error wrapping fs.ErrExist. The staged file is
// gone afterwards either way. A hard link makes the check and the creation
// one atomic step; where links are unsupported it falls back to a checked
// rename.
func commitNewFile(tmp, target string) error {
	linkErr := os.Link(tmp, target)
	if linkErr == nil {
		if err := os.Remove(tmp); err != nil {
			return fmt.Errorf("remove temporary file: %w", err)
		}
		return syncDir(filepath.Dir(target))
	}
	if errors.Is(linkErr, fs.ErrExist) {
		return errors.Join(fmt.Errorf("create %s: %w", target, linkErr), removeIfExists(tmp))
	}
	if _, err := os.Lstat(target); err == nil {
		return errors.Join(fmt.Errorf("create %s: %w", target, fs.ErrExist), removeIfExists(tmp))
	}
	return commitFile(tmp, target)
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove temporary file: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for syncing there
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s for sync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
