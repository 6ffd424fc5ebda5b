//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package filestore

import (
	"errors"
	"os"
	"syscall"
)

// tryLock takes an exclusive flock on f without waiting; held reports that
// another open file (in this process or another) has it. flock belongs to
// the open file, not the process, so a second Open in the same process is
// refused too: only the store pool may share an open store.
func tryLock(f *os.File) (held bool, err error) {
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	return false, err
}

// matchOwner gives a lock file that root just created (running `caddy
// oauth store check` with sudo) the owner of the store file, so the
// gateway's user can still open it.
func matchOwner(f *os.File, path string) {
	if fi, err := os.Stat(path); err == nil {
		chownLike(f, fi)
	}
}

// chownLike gives f the owner of the file fi describes, when running as
// root; anyone else can only own what they create.
func chownLike(f *os.File, fi os.FileInfo) {
	if os.Geteuid() != 0 {
		return
	}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		_ = f.Chown(int(sys.Uid), int(sys.Gid))
	}
}
