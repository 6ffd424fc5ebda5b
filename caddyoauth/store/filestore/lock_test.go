package filestore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestOpenLocksTheFile: a second Open of one file from another DB (in this
// process, as from another process: flock belongs to the open file) is
// refused naming the holder, and the file opens again once closed.
func TestOpenLocksTheFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "oauth.db")
	first, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Put(ctx, "k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}

	second, err := Open(path)
	var locked *LockedError
	if err == nil {
		second.Close()
		t.Fatal("a second Open of the same file succeeded")
	}
	if !errors.As(err, &locked) || !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want a *LockedError", err)
	}
	if locked.PID != os.Getpid() || locked.Lock != path+".lock" {
		t.Fatalf("LockedError = %+v, want PID %d and lock %s.lock", locked, os.Getpid(), path)
	}
	if msg := err.Error(); !strings.Contains(msg, strconv.Itoa(os.Getpid())) || !strings.Contains(msg, path+".lock") {
		t.Fatalf("message %q names neither the holder nor the lock", msg)
	}
	if _, err := Check(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("Check while open: %v, want ErrLocked", err)
	}
	if _, err := Repair(path, time.Now()); !errors.Is(err, ErrLocked) {
		t.Fatalf("Repair while open: %v, want ErrLocked", err)
	}
	// The refused Opens changed nothing.
	if v, err := first.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("the first store after refused opens: %q, %v", v, err)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(path)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	defer again.Close()
	if v, err := again.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("after reopen: %q, %v", v, err)
	}
}

// TestLockFile: the lock file is private and names its holder.
func TestLockFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oauth.db")
	openDB(t, path)
	fi, err := os.Stat(path + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file mode %v, want 0600", fi.Mode().Perm())
	}
	b, err := os.ReadFile(path + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("lock file holds %q, want this process's ID", b)
	}
}

// TestMemoryStoresTakeNoLock: memory stores share nothing and lock nothing.
func TestMemoryStoresTakeNoLock(t *testing.T) {
	a := openMemory(t)
	b := openMemory(t)
	ctx := context.Background()
	if err := a.Put(ctx, "k", []byte("a"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "k"); err == nil {
		t.Fatal("two memory stores share a record")
	}
}

// TestWritesReachTheFileOnCommit: each write is in the file (the OS's
// cache) when it returns, before any fsync, so a crash of the process
// loses none.
func TestWritesReachTheFileOnCommit(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "oauth.db")
	db := openDB(t, path)
	for i := range 50 {
		key := "at:" + strconv.Itoa(i)
		if err := db.Put(ctx, key, []byte("grant"), time.Hour); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), key+"\r\n") {
			t.Fatalf("%s is not in the file after Put returned", key)
		}
	}
}
