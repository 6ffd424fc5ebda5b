package filestore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/caddyoauth/gateway/internal/poll"
)

// TestSweeperDeletesExpiredRecords writes expired and live records across
// several sweep chunks and checks the running store deletes every expired
// one, and only those, without a restart.
func TestSweeperDeletesExpiredRecords(t *testing.T) {
	// Restored in a cleanup registered before the store's, so after the
	// store's sweeper, which reads them, has stopped.
	i, c, n := sweepInterval, sweepChunk, sweepChunksPerTick
	t.Cleanup(func() { sweepInterval, sweepChunk, sweepChunksPerTick = i, c, n })
	sweepInterval, sweepChunk, sweepChunksPerTick = 10*time.Millisecond, 7, 2 // a pass spans several ticks

	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "oauth.db"))
	var short, long []string
	for i := range 50 {
		k := fmt.Sprintf("at:%02d", i)
		if i%3 == 0 {
			long = append(long, k)
			if err := db.Put(ctx, k, []byte("v"), time.Hour); err != nil {
				t.Fatal(err)
			}
			continue
		}
		short = append(short, k)
		if err := db.Put(ctx, k, []byte("v"), time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.AddMember(ctx, "user:u", "m", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	short = append(short, memberKey("user:u", "m"))

	present := func(k string) bool {
		err := db.db.View(func(tx *buntdb.Tx) error { _, err := tx.Get(k); return err })
		if err != nil && !errors.Is(err, buntdb.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	for _, k := range short {
		poll.Until(t, 5*time.Second, fmt.Sprintf("expired %q swept", k), func() bool { return !present(k) })
	}
	for _, k := range long {
		if v, err := db.Get(ctx, k); err != nil || string(v) != "v" {
			t.Fatalf("the sweeper took live %q: %q, %v", k, v, err)
		}
	}
}

// TestSweeperSparesRewrittenRecord checks a key that expired and was
// written again before the sweeper's delete is kept.
func TestSweeperSparesRewrittenRecord(t *testing.T) {
	ctx := context.Background()
	db := openMemory(t)
	if err := db.Put(ctx, "k", []byte("old"), time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixNano()
	if err := db.Put(ctx, "k", []byte("new"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := db.deleteExpired([]string{"k"}, now); err != nil {
		t.Fatal(err)
	}
	lookupNow(t, db, "k", "new")
}

// TestCloseTwice checks a second Close reports buntdb's error instead of
// panicking on the stopped sweeper.
func TestCloseTwice(t *testing.T) {
	db, err := Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err == nil {
		t.Fatal("a second Close reported no error")
	}
}
