package filestore

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// A file store has one writer: buntdb appends to the file from wherever it
// believes the end is, so two processes appending to one file interleave
// records and the next start finds the file invalid. Whoever opens the file
// (the gateway, `caddy oauth store check` or `repair`) first takes an
// exclusive advisory lock on a file beside it, which the kernel releases
// when the holder exits, however it exits. The lock is on its own file, not
// the database, because compaction replaces the database file.

// LockPath is the lock file of the store at path.
func LockPath(path string) string { return path + ".lock" }

// LockedError reports a store file whose lock another holder has.
type LockedError struct {
	// Lock is the lock file.
	Lock string
	// PID is the holder's process ID, as it wrote it in the lock file; 0
	// when unknown.
	PID int
}

func (e *LockedError) Error() string {
	var who string
	switch {
	case e.PID == os.Getpid():
		who = fmt.Sprintf("already open in this process (PID %d), under another name or through another store,", e.PID)
	case e.PID > 0:
		who = fmt.Sprintf("in use by another process (PID %d), which", e.PID)
	default:
		who = "in use by another process, which"
	}
	return fmt.Sprintf("%s holds its lock %s; a file store serves one gateway at a time: stop the other one, or give each its own file (store file <path>)", who, e.Lock)
}

// ErrLocked matches a *LockedError with errors.Is.
var ErrLocked = errors.New("store file in use")

// Is reports target == ErrLocked.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// fileLock is a held lock; release lets it go.
type fileLock struct{ f *os.File }

// lockStore takes the lock of the store at path without waiting, creating
// the lock file (0600, owned like the store file) when missing, and writes
// this process's ID into it.
func lockStore(path string) (*fileLock, error) {
	name := LockPath(path)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	matchOwner(f, path)
	switch held, err := tryLock(f); {
	case err != nil:
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", name, err)
	case held:
		pid := readPID(f)
		f.Close()
		return nil, &LockedError{Lock: name, PID: pid}
	}
	// The ID is for the message another process prints; the lock itself is
	// the kernel's.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &fileLock{f: f}, nil
}

// readPID reads the holder's process ID from the lock file; 0 when it has
// not written it (yet).
func readPID(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// release lets the lock go. The lock file stays: removing it could let a
// process that opened it just before lock a file nobody else sees.
func (l *fileLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor releases the lock
	l.f = nil
	return err
}
