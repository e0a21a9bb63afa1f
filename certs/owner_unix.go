//go:build unix

package certs

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkOwner refuses a state dir owned by a user other than this process's
// (root's directories are accepted: root can write anywhere anyway).
func checkOwner(dir string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := int(st.Uid); uid != os.Getuid() && uid != 0 {
		return fmt.Errorf("state dir %s belongs to uid %d, not to this user (uid %d): use your own --state-dir", dir, uid, os.Getuid())
	}
	return nil
}
