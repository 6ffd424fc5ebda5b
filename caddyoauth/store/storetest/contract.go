// Package storetest is the contract test every store backend runs, so the
// memory, file and Redis stores are held to one behaviour.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
	"github.com/caddyoauth/gateway/internal/poll"
)

// Run runs the whole contract against stores made by open. Each call of open
// must return an empty store (or one whose keys do not collide between
// calls).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	runLifecycle(t, open)
	runExport(t, open)
	t.Run("PutGetDelete", func(t *testing.T) {
		s := open(t)
		if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get of a missing key: err = %v, want ErrNotFound", err)
		}
		mustPut(t, s, "k", "v1", 0)
		mustGet(t, s, "k", "v1")
		mustPut(t, s, "k", "v2", 0)
		mustGet(t, s, "k", "v2")
		if got, err := s.Lookup(ctx, "k"); err != nil || string(got) != "v2" {
			t.Fatalf("Lookup = %q, %v; want v2", got, err)
		}
		if err := s.Delete(ctx, "k", "missing"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get after Delete: err = %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx); err != nil {
			t.Fatalf("Delete of no keys: %v", err)
		}
	})
	t.Run("BinaryValues", func(t *testing.T) {
		s := open(t)
		v := []byte{0, 1, 2, 255, '\n', '"', 0}
		if err := s.Put(ctx, "bin", v, 0); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, "bin")
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("Get = %v, %v; want %v", got, err, v)
		}
	})
	t.Run("CreateRefusesExisting", func(t *testing.T) {
		s := open(t)
		if err := s.Create(ctx, "c", []byte("a"), 0); err != nil {
			t.Fatalf("first Create: %v", err)
		}
		if err := s.Create(ctx, "c", []byte("b"), 0); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second Create: err = %v, want ErrConflict", err)
		}
		mustGet(t, s, "c", "a")
	})
	t.Run("TakeOnce", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, "code", "grant", 0)
		got, err := s.Take(ctx, "code")
		if err != nil || string(got) != "grant" {
			t.Fatalf("Take = %q, %v", got, err)
		}
		if _, err := s.Take(ctx, "code"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second Take: err = %v, want ErrNotFound", err)
		}
		if _, err := s.Get(ctx, "code"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get after Take: err = %v, want ErrNotFound", err)
		}
	})
	t.Run("TakeRaceHasOneWinner", func(t *testing.T) {
		s := open(t)
		for round := 0; round < 50; round++ {
			key := fmt.Sprintf("race-%d", round)
			mustPut(t, s, key, "x", time.Minute)
			var wins atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := 0; i < 16; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					if _, err := s.Take(ctx, key); err == nil {
						wins.Add(1)
					} else if !errors.Is(err, store.ErrNotFound) {
						t.Errorf("Take: %v", err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if n := wins.Load(); n != 1 {
				t.Fatalf("round %d: %d winners, want exactly 1", round, n)
			}
		}
	})
	t.Run("SwapIsCompareAndSwap", func(t *testing.T) {
		s := open(t)
		if err := s.Swap(ctx, "rt", []byte("a"), []byte("b"), 0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Swap of missing key: err = %v, want ErrNotFound", err)
		}
		mustPut(t, s, "rt", "a", 0)
		if err := s.Swap(ctx, "rt", []byte("zzz"), []byte("b"), 0); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Swap with stale prev: err = %v, want ErrConflict", err)
		}
		if err := s.Swap(ctx, "rt", []byte("a"), []byte("b"), 0); err != nil {
			t.Fatalf("Swap: %v", err)
		}
		mustGet(t, s, "rt", "b")
	})
	t.Run("SwapRaceHasOneWinner", func(t *testing.T) {
		s := open(t)
		for round := 0; round < 30; round++ {
			key := fmt.Sprintf("swap-%d", round)
			mustPut(t, s, key, "old", time.Minute)
			var wins atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					<-start
					err := s.Swap(ctx, key, []byte("old"), []byte(fmt.Sprint("new", i)), time.Minute)
					if err == nil {
						wins.Add(1)
					} else if !errors.Is(err, store.ErrConflict) {
						t.Errorf("Swap: %v", err)
					}
				}(i)
			}
			close(start)
			wg.Wait()
			if n := wins.Load(); n != 1 {
				t.Fatalf("round %d: %d winners, want exactly 1", round, n)
			}
		}
	})
	t.Run("Sets", func(t *testing.T) {
		s := open(t)
		if m, err := s.Members(ctx, "fam"); err != nil || len(m) != 0 {
			t.Fatalf("Members of unknown set = %v, %v", m, err)
		}
		for _, m := range []string{"a", "b", "c", "b"} {
			if err := s.AddMember(ctx, "fam", m, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AddMember(ctx, "other", "z", 0); err != nil {
			t.Fatal(err)
		}
		assertMembers(t, s, "fam", "a", "b", "c")
		if err := s.RemoveMember(ctx, "fam", "b"); err != nil {
			t.Fatal(err)
		}
		assertMembers(t, s, "fam", "a", "c")
		if err := s.DeleteSet(ctx, "fam"); err != nil {
			t.Fatal(err)
		}
		assertMembers(t, s, "fam")
		assertMembers(t, s, "other", "z")
		// A set and a plain key of one name do not disturb each other.
		mustPut(t, s, "fam", "plain", 0)
		if err := s.AddMember(ctx, "fam", "m", 0); err != nil {
			t.Fatal(err)
		}
		mustGet(t, s, "fam", "plain")
		assertMembers(t, s, "fam", "m")
	})
	t.Run("Expiry", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, "short", "v", 50*time.Millisecond)
		mustPut(t, s, "long", "v", time.Hour)
		mustPut(t, s, "forever", "v", 0)
		if err := s.AddMember(ctx, "shortset", "m", 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 5*time.Second, "records with a 50ms ttl gone", func() bool {
			_, err := s.Get(ctx, "short")
			members, merr := s.Members(ctx, "shortset")
			return errors.Is(err, store.ErrNotFound) && merr == nil && len(members) == 0
		})
		mustGet(t, s, "long", "v")
		mustGet(t, s, "forever", "v")
	})
	t.Run("IncrCounts", func(t *testing.T) {
		s := open(t)
		for want := int64(1); want <= 3; want++ {
			n, err := s.Incr(ctx, "ctr", time.Hour)
			if err != nil || n != want {
				t.Fatalf("Incr = %d, %v; want %d", n, err, want)
			}
		}
		mustGet(t, s, "ctr", "3")
		if n, err := s.Incr(ctx, "other", 0); err != nil || n != 1 {
			t.Fatalf("Incr of another key = %d, %v; want 1", n, err)
		}
		mustPut(t, s, "text", "not a number", 0)
		if _, err := s.Incr(ctx, "text", 0); err == nil {
			t.Fatal("Incr of a key holding text succeeded")
		}
	})
	t.Run("IncrWindowIsFixed", func(t *testing.T) {
		s := open(t)
		// The first Incr sets the expiry; later ones must not push it back,
		// or a steady caller would keep its window open forever.
		start := time.Now()
		if _, err := s.Incr(ctx, "win", 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		deadline := start.Add(5 * time.Second)
		for {
			n, err := s.Incr(ctx, "win", 300*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if n == 1 { // the window ended and a new one began
				if el := time.Since(start); el < 250*time.Millisecond {
					t.Fatalf("window ended after %v, want about 300ms", el)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a 300ms counter incremented steadily still counts (%d) after 5s: its expiry is being extended", n)
			}
			time.Sleep(20 * time.Millisecond) // pacing the increments, not synchronising
		}
	})
	t.Run("IncrRaceCountsEveryCall", func(t *testing.T) {
		s := open(t)
		var wg sync.WaitGroup
		seen := make([]atomic.Bool, 201)
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 25; i++ {
					n, err := s.Incr(ctx, "race", time.Minute)
					if err != nil || n < 1 || n > 200 {
						t.Errorf("Incr = %d, %v", n, err)
						return
					}
					if seen[n].Swap(true) {
						t.Errorf("count %d returned twice", n)
					}
				}
			}()
		}
		wg.Wait()
		mustGet(t, s, "race", "200")
	})
	t.Run("WriteBatch", func(t *testing.T) {
		s := open(t)
		if err := s.AddMember(ctx, "bs", "old", 0); err != nil {
			t.Fatal(err)
		}
		err := store.WriteBatch(ctx, s, []store.Write{
			{Key: "b1", Value: []byte("v1"), TTL: time.Hour},
			{Key: "b2", Value: []byte("v2")},
			{Key: "bshort", Value: []byte("v"), TTL: 50 * time.Millisecond},
			{Set: "bs", Key: "b1", TTL: time.Hour},
			{Set: "bs", Key: "old", TTL: 50 * time.Millisecond}, // must not shorten "old"
		})
		if err != nil {
			t.Fatalf("WriteBatch: %v", err)
		}
		mustGet(t, s, "b1", "v1")
		mustGet(t, s, "b2", "v2")
		assertMembers(t, s, "bs", "b1", "old")
		if err := store.WriteBatch(ctx, s, nil); err != nil {
			t.Fatalf("WriteBatch of nothing: %v", err)
		}
		poll.Until(t, 5*time.Second, "a batch-written record with a 50ms ttl gone", func() bool {
			_, err := s.Get(ctx, "bshort")
			return errors.Is(err, store.ErrNotFound)
		})
		// The 50ms member ttl has passed too: "old" must still be there.
		assertMembers(t, s, "bs", "b1", "old")
	})
	t.Run("ConcurrentWriters", func(t *testing.T) {
		s := open(t)
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					k := fmt.Sprintf("w%d-%d", w, i)
					if err := s.Put(ctx, k, []byte(k), time.Minute); err != nil {
						t.Error(err)
						return
					}
					if err := s.AddMember(ctx, "all", k, time.Minute); err != nil {
						t.Error(err)
						return
					}
				}
			}(w)
		}
		wg.Wait()
		m, err := s.Members(ctx, "all")
		if err != nil || len(m) != 400 {
			t.Fatalf("Members after 400 concurrent adds: %d, %v", len(m), err)
		}
		for _, k := range m {
			mustGet(t, s, k, k)
		}
	})
}

func mustPut(t *testing.T, s store.Store, k, v string, ttl time.Duration) {
	t.Helper()
	if err := s.Put(context.Background(), k, []byte(v), ttl); err != nil {
		t.Fatalf("Put(%q): %v", k, err)
	}
}

func mustGet(t *testing.T, s store.Store, k, want string) {
	t.Helper()
	got, err := s.Get(context.Background(), k)
	if err != nil || string(got) != want {
		t.Fatalf("Get(%q) = %q, %v; want %q", k, got, err, want)
	}
}

func assertMembers(t *testing.T, s store.Store, set string, want ...string) {
	t.Helper()
	got, err := s.Members(context.Background(), set)
	if err != nil {
		t.Fatalf("Members(%q): %v", set, err)
	}
	sort.Strings(got)
	sort.Strings(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Members(%q) = %v, want %v", set, got, want)
	}
}
