package filestore

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/internal/poll"
)

// withUmask sets the process's umask for the test. 022 is the common
// default, under which a file created with mode 0666 is readable by all.
func withUmask(t *testing.T, mask int) {
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

func wantMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Fatalf("%s has mode %#o, want %#o", filepath.Base(path), got, want)
	}
}

func wantNoTemp(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the compaction's temporary file is left behind: %v", err)
	}
}

// putVersions writes n versions of one record, so the append log has
// something to compact.
func putVersions(t *testing.T, db *DB, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := db.Put(context.Background(), "at:k", []byte("value-of-some-length"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStoreFileIsPrivate: the store creates its file readable and
// writable by its owner only, whatever the umask, and the compaction at
// Close (which rewrites the file) keeps it so.
func TestStoreFileIsPrivate(t *testing.T) {
	withUmask(t, 0o022)
	old := compactOnCloseSize
	compactOnCloseSize = 1
	t.Cleanup(func() { compactOnCloseSize = old })

	path := filepath.Join(t.TempDir(), "oauth.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	wantMode(t, path, 0o600)
	putVersions(t, db, 200)
	before := fileSize(t, path)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if after := fileSize(t, path); after*10 > before {
		t.Fatalf("file is %d bytes after Close, %d before: not compacted", after, before)
	}
	wantMode(t, path, 0o600)
	wantNoTemp(t, path)
}

// TestCompactionKeepsTheFileMode: a mode the operator gave an existing
// file survives compaction, rather than becoming 0666 less the umask.
func TestCompactionKeepsTheFileMode(t *testing.T) {
	withUmask(t, 0o002)
	old := compactOnCloseSize
	compactOnCloseSize = 1
	t.Cleanup(func() { compactOnCloseSize = old })

	path := filepath.Join(t.TempDir(), "oauth.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	putVersions(t, db, 200)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wantMode(t, path, 0o640)
	wantNoTemp(t, path)
}

// TestBackgroundCompactionKeepsTheFileMode: a file that has grown is
// compacted while the store runs, and the compacted file stays private.
func TestBackgroundCompactionKeepsTheFileMode(t *testing.T) {
	withUmask(t, 0o022)
	oldMin, oldInterval := autoCompactMinSize, sweepInterval
	autoCompactMinSize, sweepInterval = 1, 10*time.Millisecond
	t.Cleanup(func() { autoCompactMinSize, sweepInterval = oldMin, oldInterval })

	path := filepath.Join(t.TempDir(), "oauth.db")
	db := openDB(t, path)
	putVersions(t, db, 200)
	grown := fileSize(t, path)
	poll.Until(t, 10*time.Second, "the grown file is compacted while the store runs", func() bool {
		return fileSize(t, path) < grown
	})
	wantMode(t, path, 0o600)
}
