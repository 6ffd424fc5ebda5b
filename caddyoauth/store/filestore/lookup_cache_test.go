package filestore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// lookupNow asserts that Lookup returns want ("" for ErrNotFound) at once:
// the file store's cache is exact within the process, so it needs none of
// the second the contract allows.
func lookupNow(t *testing.T, db *DB, key, want string) {
	t.Helper()
	v, err := db.Lookup(context.Background(), key)
	if want == "" {
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Lookup(%q) = %q, %v; want ErrNotFound", key, v, err)
		}
		return
	}
	if err != nil || string(v) != want {
		t.Fatalf("Lookup(%q) = %q, %v; want %q", key, v, err, want)
	}
}

// openDB opens the store at path (":memory:" for the memory store) for
// one test.
func openDB(t testing.TB, path string) *DB {
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openMemory(t testing.TB) *DB { return openDB(t, ":memory:") }

// TestLookupCacheFollowsEveryWrite reads a key through Lookup (which caches
// it) before each kind of write and checks the next Lookup sees the write
// immediately.
func TestLookupCacheFollowsEveryWrite(t *testing.T) {
	ctx := context.Background()
	db := openMemory(t)
	steps := []struct {
		name  string
		write func() error
		want  string
	}{
		{"Put", func() error { return db.Put(ctx, "k", []byte("v1"), time.Hour) }, "v1"},
		{"Put again", func() error { return db.Put(ctx, "k", []byte("v2"), 0) }, "v2"},
		{"Swap", func() error { return db.Swap(ctx, "k", []byte("v2"), []byte("v3"), time.Hour) }, "v3"},
		{"Take", func() error { _, err := db.Take(ctx, "k"); return err }, ""},
		{"Create", func() error { return db.Create(ctx, "k", []byte("v4"), time.Hour) }, "v4"},
		{"Delete", func() error { return db.Delete(ctx, "x", "k") }, ""},
		{"WriteBatch", func() error {
			return db.WriteBatch(ctx, []store.Write{{Key: "k", Value: []byte("v5"), TTL: time.Hour}, {Set: "s", Key: "k"}})
		}, "v5"},
		{"Incr", func() error { _ = db.Delete(ctx, "k"); _, err := db.Incr(ctx, "k", time.Hour); return err }, "1"},
		{"Incr again", func() error { _, err := db.Incr(ctx, "k", time.Hour); return err }, "2"},
	}
	for _, st := range steps {
		// Twice, so the second read is the cached one.
		_, _ = db.Lookup(ctx, "k")
		_, _ = db.Lookup(ctx, "k")
		if err := st.write(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		lookupNow(t, db, "k", st.want)
	}
}

// TestLookupCacheServesRepeatedReads shows the cache answers a key read
// before, so Lookup stops walking buntdb's tree for it.
func TestLookupCacheServesRepeatedReads(t *testing.T) {
	ctx := context.Background()
	db := openMemory(t)
	if err := db.Put(ctx, "k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, ok := db.cache.get("k", time.Now().UnixNano()); ok {
		t.Fatal("a key never looked up is cached")
	}
	lookupNow(t, db, "k", "v")
	if v, ok := db.cache.get("k", time.Now().UnixNano()); !ok || v != "v" {
		t.Fatalf("after a Lookup the cache holds %q, %v; want v", v, ok)
	}
	if _, err := db.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if err := db.Put(ctx, "k", []byte("w"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, ok := db.cache.get("k", time.Now().UnixNano()); ok {
		t.Fatal("the cache still answers for a key written since")
	}
}

// TestLookupCacheKeepsExpiry checks a cached value stops being served at
// the expiry stored with it, and one without expiry does not expire.
func TestLookupCacheKeepsExpiry(t *testing.T) {
	c := newLookupCache()
	now := time.Now().UnixNano()
	c.fill("short", "v", now+int64(time.Second), c.generation("short"))
	c.fill("forever", "v", 0, c.generation("forever"))
	if _, ok := c.get("short", now+int64(999*time.Millisecond)); !ok {
		t.Fatal("a value is not served within its ttl")
	}
	if _, ok := c.get("short", now+int64(time.Second)); ok {
		t.Fatal("a value is served at its expiry")
	}
	if _, ok := c.get("forever", now+int64(1000*time.Hour)); !ok {
		t.Fatal("a value without expiry expired")
	}
}

// TestLookupCacheNeverServesAnOverwrittenValue races Lookups against a
// writer: once Put(k, n) has returned, no Lookup started later may return
// a value older than n, even one a racing Lookup read before the write and
// stored in the cache after it.
func TestLookupCacheNeverServesAnOverwrittenValue(t *testing.T) {
	ctx := context.Background()
	db := openMemory(t)
	if err := db.Put(ctx, "k", []byte("0"), 0); err != nil {
		t.Fatal(err)
	}
	const writes = 3000
	var (
		written atomic.Int64
		wg      sync.WaitGroup
		failure atomic.Value
	)
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for written.Load() < writes && failure.Load() == nil {
				floor := written.Load()
				v, err := db.Lookup(ctx, "k")
				if err != nil {
					failure.Store(err.Error())
					return
				}
				if n, _ := strconv.ParseInt(string(v), 10, 64); n < floor {
					failure.Store(fmt.Sprintf("Lookup returned %d after Put(%d) had returned", n, floor))
					return
				}
			}
		}()
	}
	for n := int64(1); n <= writes && failure.Load() == nil; n++ {
		if err := db.Put(ctx, "k", []byte(strconv.FormatInt(n, 10)), 0); err != nil {
			t.Fatal(err)
		}
		written.Store(n)
	}
	wg.Wait()
	if f := failure.Load(); f != nil {
		t.Fatal(f)
	}
	lookupNow(t, db, "k", strconv.Itoa(writes))
}

// BenchmarkLookup reads access-token-shaped keys from stores of 2,000 and
// 2,000,000 records: "hot" walks 10,000 keys (the working set of the
// benchmark's validation rows; all 2,000 in the small store), which the
// cache answers; "cold" picks any key, which misses it at 2,000,000 and
// walks buntdb's B-tree.
func BenchmarkLookup(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{2000, 2000000} {
		db := openMemory(b)
		keys := make([]string, n)
		val := make([]byte, 101)
		for i := range keys {
			r := make([]byte, 32)
			_, _ = rand.Read(r)
			keys[i] = "at:" + base64.RawURLEncoding.EncodeToString(r)
			if err := db.Put(ctx, keys[i], val, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
		for _, mode := range []string{"hot", "cold"} {
			set := keys
			if mode == "hot" && n > 10000 {
				set = keys[:10000]
			}
			b.Run(fmt.Sprintf("%d/%s", n, mode), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := db.Lookup(ctx, set[mrand.IntN(len(set))]); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		_ = db.Close()
	}
}
