package filestore

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
	"github.com/caddyoauth/gateway/caddyoauth/store/storetest"
)

// TestUnbatchedContract runs the contract on a store that hides WriteBatch,
// so store.WriteBatch's one-call-per-write fallback (the path of a backend
// without store.Batcher) is held to the same behaviour. It keeps Export,
// which the contract needs.
func TestUnbatchedContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, err := Open(":memory:")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return struct {
			store.Store
			store.Exporter
		}{db, db}
	})
}

// TestCloseCompactsLargeFile checks that Close rewrites a file past the
// compaction threshold to one record per live key, keeping every record.
func TestCloseCompactsLargeFile(t *testing.T) {
	old := compactOnCloseSize
	compactOnCloseSize = 1
	t.Cleanup(func() { compactOnCloseSize = old })

	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "oauth.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ { // 200 versions of one record in the append log
		if err := db.Put(ctx, "at:k", []byte("value-of-some-length"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	before := fileSize(t, path)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if after := fileSize(t, path); after*10 > before {
		t.Fatalf("file is %d bytes after Close, %d before: not compacted", after, before)
	}
	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.Get(ctx, "at:k"); err != nil || string(v) != "value-of-some-length" {
		t.Fatalf("after compaction Get = %q, %v", v, err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
