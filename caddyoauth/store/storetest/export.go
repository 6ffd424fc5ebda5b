package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
	"github.com/caddyoauth/gateway/internal/poll"
)

// runExport holds every backend to the Exporter contract: Export lists
// every live record, plain and set, with what is left of its life, and
// nothing expired or foreign to the store; Import writes them back so that
// the values, the members and the lifetimes survive a round trip.
func runExport(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	t.Run("ExportListsLiveRecords", func(t *testing.T) {
		s := open(t)
		fill(t, s)
		got := exportAll(t, s)
		want := map[string]bool{"hour": true, "forever": true, "bin": true, "set:tokens": true, "set:clients": true}
		if keys := sortedKeys(got); fmt.Sprint(keys) != fmt.Sprint(sortedKeys(want)) {
			t.Fatalf("Export listed %v, want %v", keys, sortedKeys(want))
		}
		if r := got["hour"]; string(r.Value) != "v1" || r.TTL <= 59*time.Minute || r.TTL > time.Hour {
			t.Fatalf("hour: value %q ttl %v, want v1 with a ttl just under 1h", r.Value, r.TTL)
		}
		if r := got["forever"]; string(r.Value) != "v2" || r.TTL != 0 {
			t.Fatalf("forever: value %q ttl %v, want v2 without ttl", r.Value, r.TTL)
		}
		if r := got["bin"]; !bytes.Equal(r.Value, binValue) {
			t.Fatalf("bin: value %v, want %v", r.Value, binValue)
		}
		members := memberTTLs(got["set:tokens"])
		if len(members) != 2 || members["a"] <= 59*time.Minute || members["a"] > time.Hour || members["b"] <= 119*time.Minute || members["b"] > 2*time.Hour {
			t.Fatalf("tokens set: %v, want a (just under 1h) and b (just under 2h), not the expired c", members)
		}
		if members := memberTTLs(got["set:clients"]); len(members) != 1 || members["x"] != 0 {
			t.Fatalf("clients set: %v, want x without ttl", members)
		}
	})
	t.Run("ImportRoundTrip", func(t *testing.T) {
		src, dst := open(t), open(t)
		fill(t, src)
		before := exportAll(t, src)
		var recs []store.Record
		for _, r := range before {
			recs = append(recs, r)
		}
		if err := store.Import(ctx, dst, recs); err != nil {
			t.Fatalf("Import: %v", err)
		}
		mustGet(t, dst, "hour", "v1")
		mustGet(t, dst, "forever", "v2")
		if v, err := dst.Get(ctx, "bin"); err != nil || !bytes.Equal(v, binValue) {
			t.Fatalf("bin after import: %v, %v", v, err)
		}
		assertMembers(t, dst, "tokens", "a", "b")
		assertMembers(t, dst, "clients", "x")
		after := exportAll(t, dst)
		for k, b := range before {
			a := after[k]
			if !b.Set {
				if !closeTTL(a.TTL, b.TTL) {
					t.Errorf("%s: ttl %v after import, %v before", k, a.TTL, b.TTL)
				}
				continue
			}
			bm, am := memberTTLs(b), memberTTLs(a)
			for m, ttl := range bm {
				if !closeTTL(am[m], ttl) {
					t.Errorf("%s member %s: ttl %v after import, %v before", k, m, am[m], ttl)
				}
			}
		}
	})
	t.Run("ImportAppliesTTL", func(t *testing.T) {
		s := open(t)
		err := store.Import(ctx, s, []store.Record{
			{Key: "short", Value: []byte("v"), TTL: 50 * time.Millisecond},
			{Key: "shortset", Set: true, Members: []store.Member{{Name: "m", TTL: 50 * time.Millisecond}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 5*time.Second, "imported records with a 50ms ttl gone", func() bool {
			_, err := s.Get(ctx, "short")
			m, merr := s.Members(ctx, "shortset")
			return errors.Is(err, store.ErrNotFound) && merr == nil && len(m) == 0
		})
		if got := exportAll(t, s); len(got) != 0 {
			t.Fatalf("Export after expiry listed %v", sortedKeys(got))
		}
	})
	t.Run("ImportRefusesBadRecords", func(t *testing.T) {
		s := open(t)
		for _, bad := range []store.Record{
			{Key: "", Value: []byte("v")},
			{Key: "\x00format", Value: []byte("v")},
			{Key: "neg", Value: []byte("v"), TTL: -time.Second},
			{Key: "set\x00x", Set: true, Members: []store.Member{{Name: "m"}}},
			{Key: "empty", Set: true},
			{Key: "noname", Set: true, Members: []store.Member{{Name: ""}}},
		} {
			err := store.Import(ctx, s, []store.Record{{Key: "good", Value: []byte("v")}, bad})
			if err == nil {
				t.Fatalf("Import of %+v succeeded", bad)
			}
		}
		if got := exportAll(t, s); len(got) != 0 {
			t.Fatalf("a refused import wrote %v", sortedKeys(got))
		}
	})
	t.Run("ExportStopsAtError", func(t *testing.T) {
		s := open(t)
		fill(t, s)
		stop := errors.New("stop")
		calls := 0
		err := store.Export(ctx, s, func(store.Record) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("Export = %v after %d calls, want the callback's error after 1", err, calls)
		}
	})
}

var binValue = []byte{0, 1, 2, 255, '\n', '"', 0}

// fill writes plain records and sets, some of them expired by the time it
// returns.
func fill(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	mustPut(t, s, "hour", "v1", time.Hour)
	mustPut(t, s, "forever", "v2", 0)
	if err := s.Put(ctx, "bin", binValue, 0); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "gone", "v", 50*time.Millisecond)
	for _, m := range []struct {
		set, name string
		ttl       time.Duration
	}{{"tokens", "a", time.Hour}, {"tokens", "b", 2 * time.Hour}, {"tokens", "c", 50 * time.Millisecond},
		{"clients", "x", 0}, {"goneset", "y", 50 * time.Millisecond}} {
		if err := s.AddMember(ctx, m.set, m.name, m.ttl); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 5*time.Second, "records with a 50ms ttl gone", func() bool {
		_, err := s.Get(ctx, "gone")
		m, merr := s.Members(ctx, "goneset")
		return errors.Is(err, store.ErrNotFound) && merr == nil && len(m) == 0
	})
}

// exportAll returns the exported records by key, sets as "set:<name>".
func exportAll(t *testing.T, s store.Store) map[string]store.Record {
	t.Helper()
	out := map[string]store.Record{}
	err := store.Export(context.Background(), s, func(r store.Record) error {
		k := r.Key
		if r.Set {
			k = "set:" + k
		}
		if _, dup := out[k]; dup {
			return fmt.Errorf("%s exported twice", k)
		}
		out[k] = r
		return nil
	})
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	return out
}

func memberTTLs(r store.Record) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, m := range r.Members {
		out[m.Name] = m.TTL
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// closeTTL reports whether a lifetime read after an import matches the
// one exported: none stays none, and a ttl never grows and loses no more
// than the test's own running time.
func closeTTL(after, before time.Duration) bool {
	if before == 0 {
		return after == 0
	}
	return after > 0 && after <= before+time.Millisecond && after > before-time.Minute
}
