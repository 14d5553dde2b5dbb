//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package ledger

import (
	"errors"
	"os"
)

// acquireLock is not implemented on this platform: writing a ledger without
// an exclusive lock could interleave two writers.
func acquireLock(string) (*os.File, error) {
	return nil, errors.New("ledger locking is not supported on this platform")
}
