package filestore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
	"github.com/caddyoauth/gateway/caddyoauth/store/storetest"
)

func TestMemoryContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openMemory(t) })
}

func TestFileContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openDB(t, filepath.Join(t.TempDir(), "oauth.db")) })
}

func TestFileSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "oauth.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Put(ctx, "at:abc", []byte("grant"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := db.AddMember(ctx, "fam:1", "at:abc", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.Get(ctx, "at:abc"); err != nil || string(v) != "grant" {
		t.Fatalf("after reopen Get = %q, %v", v, err)
	}
	if m, err := db.Members(ctx, "fam:1"); err != nil || len(m) != 1 || m[0] != "at:abc" {
		t.Fatalf("after reopen Members = %v, %v", m, err)
	}
}
