package filestore

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// rawItem is a key as buntdb itself holds it: the stored value and
// buntdb's TTL for it (negative: none).
type rawItem struct {
	stored string
	ttl    time.Duration
}

// rawItems returns every live key of the buntdb file at path, read by
// buntdb alone.
func rawItems(t *testing.T, path string) map[string]rawItem {
	t.Helper()
	db, err := buntdb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]rawItem{}
	err = db.View(func(tx *buntdb.Tx) error {
		return tx.Ascend("", func(k, v string) bool {
			if ttl, err := tx.TTL(k); err == nil {
				out[k] = rawItem{v, ttl}
			}
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUpgradesFileWithBuntdbExpiry opens a file as the versions before
// stored it (raw values, expiry kept by buntdb): every live record, member
// and counter reads back with its expiry, an expired one is gone, and the
// file no longer holds a buntdb expiry.
func TestUpgradesFileWithBuntdbExpiry(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := buntdb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	hour := &buntdb.SetOptions{Expires: true, TTL: time.Hour}
	err = old.Update(func(tx *buntdb.Tx) error {
		for k, v := range map[string]string{"at:live": "rec-1", "\x00s\x00user:u1\x00rt:x": "", "ctr": "7"} {
			if _, _, err := tx.Set(k, v, hour); err != nil {
				return err
			}
		}
		if _, _, err := tx.Set("client:c1", "forever", nil); err != nil {
			return err
		}
		_, _, err := tx.Set("at:gone", "rec-2", &buntdb.SetOptions{Expires: true, TTL: time.Nanosecond})
		return err
	})
	if cerr := old.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"at:live": "rec-1", "client:c1": "forever", "ctr": "7"} {
		if v, err := db.Get(ctx, k); err != nil || string(v) != want {
			t.Errorf("Get(%q) after the upgrade = %q, %v; want %q", k, v, err, want)
		}
	}
	if m, err := db.Members(ctx, "user:u1"); err != nil || !slices.Equal(m, []string{"rt:x"}) {
		t.Errorf("Members after the upgrade = %v, %v", m, err)
	}
	if n, err := db.Incr(ctx, "ctr", time.Minute); err != nil || n != 8 {
		t.Errorf("Incr after the upgrade = %d, %v; want 8", n, err)
	}
	if _, err := db.Get(ctx, "at:gone"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an expired record reads back after the upgrade: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	items := rawItems(t, path)
	if _, ok := items["at:gone"]; ok {
		t.Error("the upgrade kept an expired record")
	}
	for k, it := range items {
		if it.ttl >= 0 {
			t.Errorf("%q still has a buntdb expiry (%v)", k, it.ttl)
		}
		_, expires, err := unwrap(it.stored)
		if err != nil {
			t.Fatalf("%q: %v", k, err)
		}
		left := time.Until(time.Unix(0, expires))
		switch {
		case k == "client:c1" || k == formatKey:
			if expires != 0 {
				t.Errorf("%q gained an expiry: %v", k, left)
			}
		case left < 59*time.Minute || left > time.Hour:
			// The counter's window is kept too: Incr does not extend it.
			t.Errorf("%q expires in %v, want the hour it had", k, left)
		}
	}
	if len(items) != 5 { // four records and the format mark
		t.Errorf("the upgraded file holds %d keys, want 5", len(items))
	}
}

// TestRefusesNewerFormat checks a file whose format this version does not
// know is refused at open, with the file named, rather than misread.
func TestRefusesNewerFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	db, err := buntdb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *buntdb.Tx) error {
		_, _, err := tx.Set(formatKey, wrap("3", 0), nil)
		return err
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if d, err := Open(path); err == nil {
		d.Close()
		t.Fatal("a store of an unknown format opened")
	} else if !strings.Contains(err.Error(), path) {
		t.Fatalf("the error does not name the file: %v", err)
	}
}

// TestStoresNoBuntdbExpiry checks every write keeps its expiry in the value
// and none in buntdb, which would cost a second B-tree entry per record.
func TestStoresNoBuntdbExpiry(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "oauth.db")
	db := openDB(t, path)
	steps := []error{
		db.Put(ctx, "put", []byte("v"), time.Hour),
		db.Create(ctx, "create", []byte("v"), time.Hour),
		db.AddMember(ctx, "set", "m", time.Hour),
		db.WriteBatch(ctx, []store.Write{{Key: "batch", Value: []byte("v"), TTL: time.Hour}, {Set: "set", Key: "b", TTL: time.Hour}}),
		db.Put(ctx, "swap", []byte("a"), 0),
		db.Swap(ctx, "swap", []byte("a"), []byte("b"), time.Hour),
	}
	if _, err := db.Incr(ctx, "incr", time.Hour); err != nil {
		steps = append(steps, err)
	}
	for _, err := range steps {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	items := rawItems(t, path)
	if len(items) != 8 {
		t.Fatalf("the file holds %d keys, want 8", len(items))
	}
	for k, it := range items {
		_, expires, err := unwrap(it.stored)
		if it.ttl >= 0 || err != nil || (k != formatKey && expires == 0) {
			t.Errorf("%q: buntdb ttl %v, stored expiry %d, %v", k, it.ttl, expires, err)
		}
	}
}
