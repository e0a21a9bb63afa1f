package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// checkConstraints requires a loaded CA to carry critical DNS name
// constraints naming exactly the wanted domains (after normalisation), so
// that a CA planted in the state dir, or one issued for other brokers,
// cannot vouch for any other name. With no wanted domains nothing is
// required.
func checkConstraints(cert *x509.Certificate, wanted []string) error {
	want, err := normalizeDomains(wanted)
	if err != nil || len(want) == 0 {
		return err
	}
	if len(cert.PermittedDNSDomains) == 0 {
		return errors.New("the local CA has no name constraints: it could vouch for any site")
	}
	if !cert.PermittedDNSDomainsCritical {
		return errors.New("the local CA's name constraints are not marked critical")
	}
	if len(cert.ExcludedDNSDomains) > 0 || len(cert.PermittedEmailAddresses) > 0 || len(cert.PermittedURIDomains) > 0 {
		// Nothing authproxy issues; a CA that has them was made elsewhere.
		return errors.New("the local CA carries name constraints authproxy does not issue")
	}
	for _, r := range cert.PermittedIPRanges {
		if !r.IP.IsLoopback() {
			return fmt.Errorf("the local CA permits IP range %s beyond loopback", r)
		}
	}
	have, err := normalizeDomains(cert.PermittedDNSDomains)
	if err != nil {
		return fmt.Errorf("the local CA's name constraints: %w", err)
	}
	slices.Sort(have)
	slices.Sort(want)
	if !slices.Equal(have, want) {
		return fmt.Errorf("the local CA's name constraints (%s) are not the configured broker domains (%s)",
			strings.Join(have, ", "), strings.Join(want, ", "))
	}
	return nil
}

// CheckDir refuses a state directory that other users could write to (a
// planted CA, token file or lock-file symlink would follow) or that belongs
// to another user.
func CheckDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		// A symlinked state dir is fine if its target passes.
		if fi, err = os.Stat(dir); err != nil {
			return fmt.Errorf("state dir: %w", err)
		}
	}
	if !fi.IsDir() {
		return fmt.Errorf("state dir %s is not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("state dir %s is writable by group or others (mode %04o): anyone who can write there could plant a CA or tokens; run `chmod 700 %s` (and check what is in it)", dir, perm, dir)
	}
	return checkOwner(dir, fi)
}
