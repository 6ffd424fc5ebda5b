// Package filestore holds the embedded stores of the gateway, both built on
// buntdb: the file store (the default, persisted to an append-only file) and
// the memory store (the same engine with nothing on disk).
package filestore

import (
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
	db         *buntdb.DB
	path       string // "" in memory
	lock       *fileLock
	cut        *Tail // the record cut short that Open cut off the file
	cache      *lookupCache
	sweep      *sweeper
	compaction compaction // filemode.go
}

// Open opens (or creates) the buntdb database at path; ":memory:" keeps
// everything in memory. A file holds one open store at a time: Open takes
// its lock (lock.go) and fails with a *LockedError when another process,
// or another DB in this process, has it. It reads the file through before
// buntdb loads it (scan.go): a record that an interrupted write cut short
// at the end is cut off (CutTail reports it), and a damaged file is refused
// with a *DamagedError that names the damage and the repair command, where
// buntdb would fail without saying where, or cut everything after a broken
// length prefix. A file written before values carried their own expiry is
// upgraded first (stored_value.go).
func Open(path string) (*DB, error) {
	if path == ":memory:" {
		return open(path)
	}
	lock, err := lockStore(path)
	if err != nil {
		return nil, err
	}
	if err := createPrivate(path); err != nil {
		lock.release()
		return nil, err
	}
	cut, err := prepareFile(path)
	if err != nil {
		lock.release()
		return nil, err
	}
	d, err := open(path)
	if err != nil {
		lock.release()
		return nil, err
	}
	d.lock, d.cut = lock, cut
	return d, nil
}

// prepareFile scans the file at path, if there is one, refuses it when
// damaged, and cuts off a record cut short at its end.
func prepareFile(path string) (*Tail, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rep, err := scanFile(f, path)
	if err != nil {
		return nil, fmt.Errorf("reading the file: %w", err)
	}
	if rep.Damaged() {
		return nil, &DamagedError{Path: path, Report: rep}
	}
	if rep.PartialTail != nil {
		if err := f.Truncate(rep.PartialTail.Offset); err != nil {
			return nil, err
		}
		if err := f.Sync(); err != nil {
			return nil, err
		}
	}
	return rep.PartialTail, nil
}

func open(path string) (*DB, error) {
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
	// fsync per token would cap issuance at the disk's sync rate. Each
	// commit is written to the file before it returns, so a crash of the
	// process loses nothing; a crash of the machine, at most the last
	// second.
	cfg.SyncPolicy = buntdb.EverySecond
	// The store compacts the file itself, keeping its mode (filemode.go).
	cfg.AutoShrinkDisabled = true
	if err := db.SetConfig(cfg); err != nil {
		db.Close()
		return nil, err
	}
	if err := upgradeFormat(db, path); err != nil {
		db.Close()
		return nil, err
	}
	d := &DB{db: db, cache: newLookupCache()}
	if path != ":memory:" {
		d.path = path
		d.compaction.measure(path)
	}
	d.sweep = startSweeper(d)
	return d, nil
}

// CutTail reports the record cut short at the end of the file that Open
// cut off (a write the process or the machine did not finish), or nil.
func (d *DB) CutTail() *Tail { return d.cut }

// Set members are kept as keys of their own under a prefix that no plain
// key can share, because plain keys never start with the NUL byte.
const setPrefix = "\x00s\x00"

func memberKey(set, member string) string {
	return setPrefix + set + "\x00" + member
}

func mapErr(err error) error {
	if errors.Is(err, buntdb.ErrNotFound) {
		return store.ErrNotFound
	}
	return err
}

// get returns the live value of key and when it expires; an expired value
// is buntdb.ErrNotFound.
func get(tx *buntdb.Tx, key string, now int64) (string, int64, error) {
	stored, err := tx.Get(key)
	if err != nil {
		return "", 0, err
	}
	v, expires, err := unwrap(stored)
	if err != nil {
		return "", 0, err
	}
	if expired(expires, now) {
		return "", 0, buntdb.ErrNotFound
	}
	return v, expires, nil
}

// Put implements store.Store.
func (d *DB) Put(_ context.Context, key string, value []byte, ttl time.Duration) error {
	defer d.cache.forget(key)
	stored := wrap(value, expiryAt(time.Now(), ttl))
	return d.db.Update(func(tx *buntdb.Tx) error {
		_, _, err := tx.Set(key, stored, nil)
		return err
	})
}

// Create implements store.Store.
func (d *DB) Create(_ context.Context, key string, value []byte, ttl time.Duration) error {
	defer d.cache.forget(key)
	now := time.Now()
	stored := wrap(value, expiryAt(now, ttl))
	return d.db.Update(func(tx *buntdb.Tx) error {
		if _, _, err := get(tx, key, now.UnixNano()); err == nil {
			return store.ErrConflict
		} else if !errors.Is(err, buntdb.ErrNotFound) {
			return err
		}
		_, _, err := tx.Set(key, stored, nil)
		return err
	})
}

// Get implements store.Store.
func (d *DB) Get(_ context.Context, key string) ([]byte, error) {
	now := time.Now().UnixNano()
	var v string
	err := d.db.View(func(tx *buntdb.Tx) error {
		var err error
		v, _, err = get(tx, key, now)
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
	now := time.Now().UnixNano()
	if v, ok := d.cache.get(key, now); ok {
		return []byte(v), nil
	}
	gen := d.cache.generation(key)
	var (
		v       string
		expires int64
	)
	err := d.db.View(func(tx *buntdb.Tx) error {
		var err error
		v, expires, err = get(tx, key, now)
		return err
	})
	if err != nil {
		return nil, mapErr(err)
	}
	d.cache.fill(key, v, expires, gen)
	return []byte(v), nil
}

// Take implements store.Store.
func (d *DB) Take(_ context.Context, key string) ([]byte, error) {
	defer d.cache.forget(key)
	now := time.Now().UnixNano()
	var v string
	err := d.db.Update(func(tx *buntdb.Tx) error {
		var err error
		if v, _, err = get(tx, key, now); err != nil {
			return err
		}
		_, err = tx.Delete(key)
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
	now := time.Now()
	stored := wrap(next, expiryAt(now, ttl))
	return mapErr(d.db.Update(func(tx *buntdb.Tx) error {
		cur, _, err := get(tx, key, now.UnixNano())
		if err != nil {
			return err
		}
		if cur != string(prev) {
			return store.ErrConflict
		}
		_, _, err = tx.Set(key, stored, nil)
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
		return deleteKeys(tx, keys)
	})
}

// deleteKeys deletes keys; missing ones are not an error.
func deleteKeys(tx *buntdb.Tx, keys []string) error {
	for _, k := range keys {
		if _, err := tx.Delete(k); err != nil && !errors.Is(err, buntdb.ErrNotFound) {
			return err
		}
	}
	return nil
}

// Incr implements store.Store. buntdb runs one Update at a time, so the
// read and the write cannot interleave with another caller's.
func (d *DB) Incr(_ context.Context, key string, ttl time.Duration) (int64, error) {
	defer d.cache.forget(key)
	now := time.Now()
	var n int64
	err := d.db.Update(func(tx *buntdb.Tx) error {
		expires := expiryAt(now, ttl)
		cur, curExpires, err := get(tx, key, now.UnixNano())
		switch {
		case errors.Is(err, buntdb.ErrNotFound): // a new window
		case err != nil:
			return err
		default:
			if n, err = strconv.ParseInt(cur, 10, 64); err != nil {
				return fmt.Errorf("store: key does not hold a counter")
			}
			expires = curExpires // keep the window's end
		}
		n++
		_, _, err = tx.Set(key, wrap(strconv.FormatInt(n, 10), expires), nil)
		return err
	})
	return n, err
}

// AddMember implements store.Store.
func (d *DB) AddMember(_ context.Context, set, member string, ttl time.Duration) error {
	var key string
	defer func() { d.cache.forget(key) }()
	now := time.Now()
	return d.db.Update(func(tx *buntdb.Tx) (err error) {
		key, err = addMember(tx, set, member, ttl, now)
		return err
	})
}

// addMember writes member into set and returns the key it is kept under.
func addMember(tx *buntdb.Tx, set, member string, ttl time.Duration, now time.Time) (string, error) {
	key := memberKey(set, member)
	expires := expiryAt(now, ttl)
	if expires != 0 {
		// Never shorten the life of a member already there.
		if _, cur, err := get(tx, key, now.UnixNano()); err == nil && (cur == 0 || cur > expires) {
			return key, nil
		}
	}
	_, _, err := tx.Set(key, wrap("", expires), nil)
	return key, err
}

// WriteBatch implements store.Batcher in one transaction, which buntdb
// appends to the file in one write.
func (d *DB) WriteBatch(_ context.Context, writes []store.Write) error {
	keys := make([]string, 0, len(writes))
	defer func() { d.cache.forget(keys...) }()
	now := time.Now()
	return d.db.Update(func(tx *buntdb.Tx) error {
		for _, w := range writes {
			key := w.Key
			var err error
			if w.Set != "" {
				key, err = addMember(tx, w.Set, w.Key, w.TTL, now)
			} else {
				_, _, err = tx.Set(w.Key, wrap(w.Value, expiryAt(now, w.TTL)), nil)
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
		return eachMember(tx, set, func(key string) {
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
		if err := eachMember(tx, set, func(key string) { keys = append(keys, key) }); err != nil {
			return err
		}
		return deleteKeys(tx, keys)
	})
}

// eachMember calls fn with the key of every live member of set.
func eachMember(tx *buntdb.Tx, set string, fn func(key string)) error {
	prefix := setPrefix + set + "\x00"
	now := time.Now().UnixNano()
	var iterErr error
	err := tx.AscendGreaterOrEqual("", prefix, func(key, stored string) bool {
		if !strings.HasPrefix(key, prefix) {
			return false
		}
		_, expires, err := unwrap(stored)
		if err != nil {
			iterErr = err
			return false
		}
		if !expired(expires, now) { // expired ones wait for the sweeper
			fn(key)
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
	d.sweep.stop()
	if d.path != "" {
		if fi, err := os.Stat(d.path); err == nil && fi.Size() >= compactOnCloseSize {
			_ = d.compact() // a failed compaction leaves the log as it was
		}
	}
	err := d.db.Close()
	// The lock goes last, once nothing more is written to the file.
	return errors.Join(err, d.lock.release())
}

// Interface guards
var (
	_ store.Store     = (*DB)(nil)
	_ store.Batcher   = (*DB)(nil)
	_ store.Compactor = (*DB)(nil)
)
