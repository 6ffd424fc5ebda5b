package filestore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// Export implements store.Exporter with a snapshot of one instant: the
// keys and values are read in one read transaction, during which writers
// wait, and only then handed to fn, so a slow fn (a backup streamed to a
// slow client) never holds up the store. Reading costs a string header
// per item, not a copy of the values (buntdb's strings do not change).
func (d *DB) Export(ctx context.Context, fn func(store.Record) error) error {
	type item struct{ key, stored string }
	var (
		items []item
		now   time.Time
	)
	err := d.db.View(func(tx *buntdb.Tx) error {
		now = time.Now()
		n, err := tx.Len()
		if err != nil {
			return err
		}
		items = make([]item, 0, n)
		return tx.Ascend("", func(key, stored string) bool {
			items = append(items, item{key, stored})
			return true
		})
	})
	if err != nil {
		return mapErr(err)
	}
	nowNano := now.UnixNano()
	// Lifetimes are taken when fn gets the record, so a slow fn never
	// makes one look longer than it is; a record that expired meanwhile
	// is left out.
	left := func(expires int64) (time.Duration, bool) {
		if expires == 0 {
			return 0, true
		}
		ttl := time.Duration(expires - time.Now().UnixNano())
		return ttl, ttl > 0
	}
	// Set members are kept in key order under setPrefix+set+NUL, so the
	// members of one set come together.
	type member struct {
		name    string
		expires int64
	}
	var (
		setName string
		members []member
	)
	flush := func() error {
		if len(members) == 0 {
			return nil
		}
		rec := store.Record{Key: setName, Set: true}
		for _, m := range members {
			if ttl, ok := left(m.expires); ok {
				rec.Members = append(rec.Members, store.Member{Name: m.name, TTL: ttl})
			}
		}
		members = members[:0]
		if len(rec.Members) == 0 {
			return nil
		}
		return fn(rec)
	}
	for i, it := range items {
		if i%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		value, expires, err := unwrap(it.stored)
		if err != nil {
			return fmt.Errorf("store: key %q: %w", it.key, err)
		}
		if expired(expires, nowNano) {
			continue
		}
		if rest, ok := strings.CutPrefix(it.key, setPrefix); ok {
			name, m, ok := strings.Cut(rest, "\x00")
			if !ok {
				return fmt.Errorf("store: malformed set member key %q", it.key)
			}
			if len(members) > 0 && setName != name {
				if err := flush(); err != nil {
					return err
				}
			}
			setName = name
			members = append(members, member{name: m, expires: expires})
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		if strings.HasPrefix(it.key, "\x00") {
			continue // the store's own bookkeeping (formatKey)
		}
		ttl, ok := left(expires)
		if !ok {
			continue
		}
		if err := fn(store.Record{Key: it.key, Value: []byte(value), TTL: ttl}); err != nil {
			return err
		}
	}
	return flush()
}

// Interface guard
var _ store.Exporter = (*DB)(nil)
