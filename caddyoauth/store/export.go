package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Record is one record of a store as Export yields it and Import writes
// it: a plain value or a set. Its key carries none of the backend's own
// naming (the Redis key prefix, the file store's set keys), so a record
// moves between backends and prefixes as it is.
type Record struct {
	// Key is the record's key, or the set's name.
	Key string
	// Set marks a set; Value is then unused.
	Set bool
	// Value of a plain record.
	Value []byte
	// TTL is what is left of a plain record's life; 0: none.
	TTL time.Duration
	// Members of a set, each with what is left of its own life. A set
	// without live members is not exported.
	Members []Member
}

// Member is a member of a set and what is left of its life (0: none).
type Member struct {
	Name string
	TTL  time.Duration
}

// Exporter is implemented by stores that can list their records, for
// backups and for moving the records to another store. Every backend of
// the gateway implements it, and so does every wrapper of a store.
type Exporter interface {
	// Export calls fn with every live record, in no particular order, and
	// stops at fn's first error, which it returns. Expired records, and
	// the backend's own bookkeeping, are left out. A record's lifetimes
	// are what is left of them when fn gets it, never more. Each backend
	// documents how consistent the listing is: the file and memory stores
	// list one instant; Redis lists each key as it was when read.
	Export(ctx context.Context, fn func(Record) error) error
}

// ErrNoExport is returned by Export for a store that cannot list its
// records.
var ErrNoExport = errors.New("store: this store cannot list its records")

// Export lists the records of s through its Exporter.
func Export(ctx context.Context, s Store, fn func(Record) error) error {
	e, ok := s.(Exporter)
	if !ok {
		return ErrNoExport
	}
	return e.Export(ctx, fn)
}

// Import writes records into s: a plain record as Put does, replacing a
// record of the same key, and a set's members as AddMember does, adding
// to a set of the same name and never shortening a member's life. The
// writes go to the store in batches (WriteBatch). A record that CheckRecord
// refuses fails the import before anything is written.
func Import(ctx context.Context, s Store, records []Record) error {
	writes := make([]Write, 0, len(records))
	for i := range records {
		r := &records[i]
		if err := CheckRecord(r); err != nil {
			return err
		}
		if !r.Set {
			writes = append(writes, Write{Key: r.Key, Value: r.Value, TTL: r.TTL})
			continue
		}
		for _, m := range r.Members {
			writes = append(writes, Write{Set: r.Key, Key: m.Name, TTL: m.TTL})
		}
	}
	return WriteBatch(ctx, s, writes)
}

// ErrBadRecord marks a record that CheckRecord refuses.
var ErrBadRecord = errors.New("store: invalid record")

// CheckRecord refuses a record no store operation could have written: an
// empty key or member, a key starting with the NUL byte (the file store
// keeps its own bookkeeping there), a set name holding one (the file store
// separates a set's name from its members with it), a negative lifetime,
// or a set without members.
func CheckRecord(r *Record) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadRecord, fmt.Sprintf(format, args...))
	}
	switch {
	case r.Key == "":
		return bad("empty key")
	case r.Key[0] == 0:
		return bad("key %q starts with a NUL byte", r.Key)
	case r.TTL < 0:
		return bad("%q has a negative lifetime", r.Key)
	case !r.Set:
		return nil
	case strings.IndexByte(r.Key, 0) >= 0:
		return bad("set name %q holds a NUL byte", r.Key)
	case len(r.Members) == 0:
		return bad("set %q has no members", r.Key)
	}
	for _, m := range r.Members {
		if m.Name == "" {
			return bad("set %q has an empty member", r.Key)
		}
		if m.TTL < 0 {
			return bad("a member of set %q has a negative lifetime", r.Key)
		}
	}
	return nil
}

// Importer writes records into a store in batches (Import), each with
// what is left of its lifetimes when its batch is written: the time a
// record waited in its batch is taken off, and what ran out meanwhile is
// dropped. So a record moved from one store to another never lives longer
// than it would have where it was.
type Importer struct {
	// Written counts the records written, Expired those (and the set
	// members) dropped because their life ran out before their batch was
	// written.
	Written, Expired int64

	s     Store
	size  int
	batch []Record
	added []time.Time
}

// NewImporter returns an Importer into s that writes size records at a
// time.
func NewImporter(s Store, size int) *Importer {
	return &Importer{s: s, size: max(size, 1)}
}

// Add checks rec (CheckRecord) and queues it, writing the batch once it is
// full.
func (im *Importer) Add(ctx context.Context, rec Record) error {
	if err := CheckRecord(&rec); err != nil {
		return err
	}
	im.batch = append(im.batch, rec)
	im.added = append(im.added, time.Now())
	if len(im.batch) >= im.size {
		return im.Flush(ctx)
	}
	return nil
}

// Flush writes the queued records.
func (im *Importer) Flush(ctx context.Context) error {
	if len(im.batch) == 0 {
		return nil
	}
	out := im.batch[:0]
	for i, rec := range im.batch {
		waited := time.Since(im.added[i])
		if !rec.Set {
			if rec.TTL > 0 {
				if rec.TTL -= waited; rec.TTL <= 0 {
					im.Expired++
					continue
				}
			}
			out = append(out, rec)
			continue
		}
		members := make([]Member, 0, len(rec.Members))
		for _, m := range rec.Members {
			if m.TTL > 0 {
				if m.TTL -= waited; m.TTL <= 0 {
					im.Expired++
					continue
				}
			}
			members = append(members, m)
		}
		if len(members) > 0 {
			rec.Members = members
			out = append(out, rec)
		}
	}
	im.batch, im.added = im.batch[:0], im.added[:0]
	if err := Import(ctx, im.s, out); err != nil {
		return err
	}
	im.Written += int64(len(out))
	return nil
}
