// Package filestore holds the embedded stores of the gateway, both built on
// buntdb: the file store (the default, persisted to an append-only file) and
// the memory store (the same engine with nothing on disk).
package filestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// DB is a store.Store on a buntdb database.
type DB struct {
	db    *buntdb.DB
	path  string // "" in memory
	cache *lookupCache
}

// Open opens (or creates) the buntdb database at path; ":memory:" keeps
// everything in memory.
func Open(path string) (*DB, error) {
	db, err := buntdb.Open(path)
	if err != nil {
		return nil, err
	}
	var cfg buntdb.Config
	if err := db.ReadConfig(&cfg); err != nil {
		db.Close()
		return nil, err
	}
	// Flush to disk once a second, as Redis' appendfsync everysec does: an
	// fsync per token would cap issuance at the disk's sync rate.
	cfg.SyncPolicy = buntdb.EverySecond
	if err := db.SetConfig(cfg); err != nil {
		db.Close()
		return nil, err
	}
	d := &DB{db: db, cache: newLookupCache()}
	if path != ":memory:" {
		d.path = path
	}
	return d, nil
}

// Set members are kept as keys of their own under a prefix that no plain
// key can share, because plain keys never start with the NUL byte.
const setPrefix = "\x00s\x00"

func memberKey(set, member string) string {
	return setPrefix + set + "\x00" + member
}

func setOpts(ttl time.Duration) *buntdb.SetOptions {
	if ttl <= 0 {
		return nil
	}
	return &buntdb.SetOptions{Expires: true, TTL: ttl}
}

func mapErr(err error) error {
	if errors.Is(err, buntdb.ErrNotFound) {
		return store.ErrNotFound
	}
	return err
}

// Put implements store.Store.
func (d *DB) Put(_ context.Context, key string, value []byte, ttl time.Duration) error {
	defer d.cache.forget(key)
	return d.db.Update(func(tx *buntdb.Tx) error {
		_, _, err := tx.Set(key, string(value), setOpts(ttl))
		return err
	})
}

// Create implements store.Store.
func (d *DB) Create(_ context.Context, key string, value []byte, ttl time.Duration) error {
	defer d.cache.forget(key)
	return d.db.Update(func(tx *buntdb.Tx) error {
		if _, err := tx.Get(key); err == nil {
			return store.ErrConflict
		} else if !errors.Is(err, buntdb.ErrNotFound) {
			return err
		}
		_, _, err := tx.Set(key, string(value), setOpts(ttl))
		return err
	})
}

// Get implements store.Store.
func (d *DB) Get(_ context.Context, key string) ([]byte, error) {
	var v string
	err := d.db.View(func(tx *buntdb.Tx) error {
		var err error
		v, err = tx.Get(key)
		return err
	})
	if err != nil {
		return nil, mapErr(err)
	}
	return []byte(v), nil
}

// Lookup implements store.Store: Get, answered from the lookup cache when
// the key was read recently and not written since.
func (d *DB) Lookup(_ context.Context, key string) ([]byte, error) {
	now := time.Now()
	if v, ok := d.cache.get(key, now); ok {
		return []byte(v), nil
	}
	gen := d.cache.generation(key)
	var (
		v   string
		ttl time.Duration
	)
	err := d.db.View(func(tx *buntdb.Tx) error {
		var err error
		if v, err = tx.Get(key); err != nil {
			return err
		}
		ttl, err = tx.TTL(key)
		return err
	})
	if err != nil {
		return nil, mapErr(err)
	}
	d.cache.fill(key, v, ttl, gen, now)
	return []byte(v), nil
}

// Take implements store.Store.
func (d *DB) Take(_ context.Context, key string) ([]byte, error) {
	defer d.cache.forget(key)
	var v string
	err := d.db.Update(func(tx *buntdb.Tx) error {
		var err error
		v, err = tx.Delete(key)
		return err
	})
	if err != nil {
		return nil, mapErr(err)
	}
	return []byte(v), nil
}

// Swap implements store.Store.
func (d *DB) Swap(_ context.Context, key string, prev, next []byte, ttl time.Duration) error {
	defer d.cache.forget(key)
	return mapErr(d.db.Update(func(tx *buntdb.Tx) error {
		cur, err := tx.Get(key)
		if err != nil {
			return err
		}
		if !bytes.Equal([]byte(cur), prev) {
			return store.ErrConflict
		}
		_, _, err = tx.Set(key, string(next), setOpts(ttl))
		return err
	}))
}

// Delete implements store.Store.
func (d *DB) Delete(_ context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	defer d.cache.forget(keys...)
	return d.db.Update(func(tx *buntdb.Tx) error {
		for _, k := range keys {
			if _, err := tx.Delete(k); err != nil && !errors.Is(err, buntdb.ErrNotFound) {
				return err
			}
		}
		return nil
	})
}

// Incr implements store.Store. buntdb runs one Update at a time, so the
// read and the write cannot interleave with another caller's.
func (d *DB) Incr(_ context.Context, key string, ttl time.Duration) (int64, error) {
	defer d.cache.forget(key)
	var n int64
	err := d.db.Update(func(tx *buntdb.Tx) error {
		opts := setOpts(ttl)
		cur, err := tx.Get(key)
		switch {
		case errors.Is(err, buntdb.ErrNotFound):
		case err != nil:
			return err
		default:
			if n, err = strconv.ParseInt(cur, 10, 64); err != nil {
				return fmt.Errorf("store: key does not hold a counter")
			}
			// Keep the window's end: carry the remaining lifetime over.
			switch left, err := tx.TTL(key); {
			case err != nil || left == 0: // expired just now: a new window
				n = 0
			case left > 0:
				opts = &buntdb.SetOptions{Expires: true, TTL: left}
			default: // no expiry
				opts = nil
			}
		}
		n++
		_, _, err = tx.Set(key, strconv.FormatInt(n, 10), opts)
		return err
	})
	return n, err
}

// AddMember implements store.Store.
func (d *DB) AddMember(_ context.Context, set, member string, ttl time.Duration) error {
	var key string
	defer func() { d.cache.forget(key) }()
	return d.db.Update(func(tx *buntdb.Tx) (err error) {
		key, err = addMember(tx, set, member, ttl)
		return err
	})
}

// addMember writes member into set and returns the key it is kept under.
func addMember(tx *buntdb.Tx, set, member string, ttl time.Duration) (string, error) {
	key := memberKey(set, member)
	if ttl > 0 {
		// Never shorten the life of a member already there.
		if left, err := tx.TTL(key); err == nil && (left < 0 || left > ttl) {
			return key, nil
		}
	}
	_, _, err := tx.Set(key, "", setOpts(ttl))
	return key, err
}

// WriteBatch implements store.Batcher in one transaction, which buntdb
// appends to the file in one write.
func (d *DB) WriteBatch(_ context.Context, writes []store.Write) error {
	keys := make([]string, 0, len(writes))
	defer func() { d.cache.forget(keys...) }()
	return d.db.Update(func(tx *buntdb.Tx) error {
		for _, w := range writes {
			key := w.Key
			var err error
			if w.Set != "" {
				key, err = addMember(tx, w.Set, w.Key, w.TTL)
			} else {
				_, _, err = tx.Set(w.Key, string(w.Value), setOpts(w.TTL))
			}
			keys = append(keys, key)
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// RemoveMember implements store.Store.
func (d *DB) RemoveMember(ctx context.Context, set, member string) error {
	return d.Delete(ctx, memberKey(set, member))
}

// Members implements store.Store.
func (d *DB) Members(_ context.Context, set string) ([]string, error) {
	var out []string
	err := d.db.View(func(tx *buntdb.Tx) error {
		return d.eachMember(tx, set, func(key string) {
			out = append(out, key[len(setPrefix)+len(set)+1:])
		})
	})
	return out, err
}

// DeleteSet implements store.Store.
func (d *DB) DeleteSet(_ context.Context, set string) error {
	var keys []string
	defer func() { d.cache.forget(keys...) }()
	return d.db.Update(func(tx *buntdb.Tx) error {
		if err := d.eachMember(tx, set, func(key string) { keys = append(keys, key) }); err != nil {
			return err
		}
		for _, k := range keys {
			if _, err := tx.Delete(k); err != nil && !errors.Is(err, buntdb.ErrNotFound) {
				return err
			}
		}
		return nil
	})
}

// eachMember calls fn with the key of every live member of set.
func (d *DB) eachMember(tx *buntdb.Tx, set string, fn func(key string)) error {
	prefix := setPrefix + set + "\x00"
	var iterErr error
	err := tx.AscendGreaterOrEqual("", prefix, func(key, _ string) bool {
		if !strings.HasPrefix(key, prefix) {
			return false
		}
		// Iteration also yields members that expired within the last
		// second and wait for the background sweep; Get skips those.
		if _, err := tx.Get(key); err == nil {
			fn(key)
		} else if !errors.Is(err, buntdb.ErrNotFound) {
			iterErr = err
			return false
		}
		return true
	})
	if err != nil {
		return err
	}
	return iterErr
}

// compactOnCloseSize is the file size from which Close compacts the file:
// below it, loading is fast either way and compaction's fixed pause of a
// quarter second is not worth it.
var compactOnCloseSize int64 = 32 << 20

// Close implements store.Store. It compacts a large file first: buntdb
// rewrites it with one record per live key in key order, which it loads
// two to three times faster than an append log of the same records (sorted
// inserts into its B-trees), so a cleanly stopped gateway holding a million
// tokens starts again within seconds.
func (d *DB) Close() error {
	if d.path != "" {
		if fi, err := os.Stat(d.path); err == nil && fi.Size() >= compactOnCloseSize {
			_ = d.db.Shrink() // a failed compaction leaves the log as it was
		}
	}
	return d.db.Close()
}

// Interface guards
var (
	_ store.Store   = (*DB)(nil)
	_ store.Batcher = (*DB)(nil)
)
