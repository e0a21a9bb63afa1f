//go:build !unix

package auth

import "context"

// lockFile is a no-op where flock is unavailable: writes stay atomic, but two
// processes writing at the same moment may lose one account's update.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return func() {}, nil
}
