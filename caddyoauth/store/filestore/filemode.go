package filestore

import (
	"errors"
	"io/fs"
	"os"
	"sync"
)

// The file holds sessions, consents and, unless they are encrypted, the
// JWT signing keys, so only its owner may read it. buntdb creates its file,
// and the compacted copy that replaces it, with mode 0666 less the umask
// (0644 under the usual 022): the store creates the file itself first, and
// compacts it itself (buntdb's automatic compaction is off) so that the
// copy keeps the file's mode.

// fileMode is the mode of a store file the gateway creates.
const fileMode fs.FileMode = 0o600

// autoCompactMinSize and the doubling rule of maybeCompact are those of
// buntdb's automatic compaction, which this one replaces.
var autoCompactMinSize int64 = 32 << 20

// createPrivate creates the file at path with fileMode, unless it exists:
// the mode of an existing file is the operator's (a file open to others is
// warned about when the gateway starts).
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	} else if err != nil {
		return err
	}
	return f.Close()
}

// compaction serialises a file's compactions and remembers its size after
// the last one, or when it was opened.
type compaction struct {
	mu   sync.Mutex
	size int64
}

// measure notes the size of the file at path as opened.
func (c *compaction) measure(path string) {
	if fi, err := os.Stat(path); err == nil {
		c.size = fi.Size()
	}
}

// compact rewrites the file with one record per live key. buntdb writes
// the copy to path.tmp with os.Create, which keeps the mode of a file that
// exists, then renames it over the file: so path.tmp is made first, with
// the file's mode, and the result has it whatever the umask.
func (d *DB) compact() error {
	d.compaction.mu.Lock()
	defer d.compaction.mu.Unlock()
	fi, err := os.Stat(d.path)
	if err != nil {
		return err
	}
	tmp, err := os.OpenFile(d.path+".tmp", os.O_RDWR|os.O_CREATE|os.O_TRUNC, fileMode)
	if err != nil {
		return err
	}
	err = tmp.Chmod(fi.Mode().Perm()) // also when it was left by a crash
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = d.db.Shrink()
	}
	if err != nil {
		_ = os.Remove(d.path + ".tmp") // Shrink removes it itself once it started
		return err
	}
	if fi, err := os.Stat(d.path); err == nil {
		d.compaction.size = fi.Size()
	}
	return nil
}

// Compact implements store.Compactor; in memory it does nothing.
func (d *DB) Compact() error {
	if d.path == "" {
		return nil
	}
	return d.compact()
}

// maybeCompact compacts the file once it is past autoCompactMinSize and
// twice its size after the last compaction (or when opened).
func (d *DB) maybeCompact() {
	if d.path == "" {
		return
	}
	fi, err := os.Stat(d.path)
	if err != nil {
		return
	}
	d.compaction.mu.Lock()
	last := d.compaction.size
	d.compaction.mu.Unlock()
	if fi.Size() > autoCompactMinSize && fi.Size() > 2*last {
		_ = d.compact() // a failed compaction leaves the log as it was
	}
}
