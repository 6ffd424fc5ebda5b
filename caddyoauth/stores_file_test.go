package caddyoauth

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
)

// TestFileStoreLockAcrossReloads: configs that follow each other on one
// file share its open store (and lock) through the pool, as Caddy starts
// the new config before it stops the old one; a config that opens the
// file after the last one closed it takes the lock afresh; the file cannot
// be opened around the pool.
func TestFileStoreLockAcrossReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oauth.db")
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	bg := context.Background()
	provision := func() *FileStore {
		t.Helper()
		f := &FileStore{Path: path}
		if err := f.Provision(ctx); err != nil {
			t.Fatalf("Provision: %v", err)
		}
		return f
	}

	old := provision()
	if err := old.Store().Put(bg, "k", []byte("1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	next := provision() // the reloaded config, while the old one still runs
	if err := old.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if v, err := next.Store().Get(bg, "k"); err != nil || string(v) != "1" {
		t.Fatalf("after the old config stopped: %q, %v", v, err)
	}
	if _, err := filestore.Open(path); !errors.Is(err, filestore.ErrLocked) {
		t.Fatalf("an Open around the pool: %v, want ErrLocked", err)
	}
	if err := next.Cleanup(); err != nil {
		t.Fatal(err)
	}

	// A later config (after one without this file) opens it again.
	again := provision()
	defer again.Cleanup()
	if v, err := again.Store().Get(bg, "k"); err != nil || string(v) != "1" {
		t.Fatalf("reopened: %q, %v", v, err)
	}
}

// TestFileStoreRefusesALockedFile: Provision fails naming the file and the
// holder.
func TestFileStoreRefusesALockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oauth.db")
	db, err := filestore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	f := &FileStore{Path: path}
	err = f.Provision(ctx)
	if err == nil {
		f.Cleanup()
		t.Fatal("Provision opened a file another store holds")
	}
	if !errors.Is(err, filestore.ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
	for _, want := range []string{strconv.Quote(path), "PID"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("%q lacks %q", err, want)
		}
	}
	if err := f.Cleanup(); err != nil {
		t.Fatalf("Cleanup after a failed Provision: %v", err)
	}
}
