package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
	"github.com/caddyoauth/gateway/internal/poll"
)

// runLifecycle holds every backend to what the token logic relies on
// beyond single operations: Lookup (which a backend may cache) follows the
// changes made through the same store, and every write that takes a ttl
// applies it, including a ttl of 0 removing an earlier expiry.
func runLifecycle(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	t.Run("LookupFollowsChanges", func(t *testing.T) {
		s := open(t)
		if _, err := s.Lookup(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Lookup of a missing key: err = %v, want ErrNotFound", err)
		}
		mustPut(t, s, "k", "v1", time.Minute)
		lookupBecomes(t, s, "k", "v1") // a missing key that appeared
		if err := s.Swap(ctx, "k", []byte("v1"), []byte("v2"), time.Minute); err != nil {
			t.Fatal(err)
		}
		lookupBecomes(t, s, "k", "v2")
		mustPut(t, s, "k", "v3", time.Minute)
		lookupBecomes(t, s, "k", "v3")
		if _, err := s.Take(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		lookupBecomes(t, s, "k", "")
		mustPut(t, s, "k", "v4", time.Minute)
		lookupBecomes(t, s, "k", "v4")
		if err := s.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		lookupBecomes(t, s, "k", "")
	})
	t.Run("EveryWriteAppliesItsTTL", func(t *testing.T) {
		s := open(t)
		const short = 50 * time.Millisecond
		mustPut(t, s, "put", "v", short)
		if err := s.Create(ctx, "create", []byte("v"), short); err != nil {
			t.Fatal(err)
		}
		mustPut(t, s, "swap", "a", time.Hour)
		if err := s.Swap(ctx, "swap", []byte("a"), []byte("b"), short); err != nil {
			t.Fatal(err)
		}
		// A ttl of 0 keeps the record until deleted, even over one that
		// had an expiry.
		mustPut(t, s, "put0", "v", short)
		mustPut(t, s, "put0", "v", 0)
		mustPut(t, s, "swap0", "a", short)
		if err := s.Swap(ctx, "swap0", []byte("a"), []byte("b"), 0); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"put", "create", "swap"} {
			poll.Until(t, 5*time.Second, fmt.Sprintf("%s with a %v ttl gone", k, short), func() bool {
				_, err := s.Get(ctx, k)
				return errors.Is(err, store.ErrNotFound)
			})
		}
		// Expired records are gone for every operation.
		if _, err := s.Lookup(ctx, "put"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Lookup of an expired key: %v", err)
		}
		if _, err := s.Take(ctx, "create"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Take of an expired key: %v", err)
		}
		if err := s.Swap(ctx, "swap", []byte("b"), []byte("c"), 0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Swap of an expired key: %v", err)
		}
		if err := s.Create(ctx, "create", []byte("again"), 0); err != nil {
			t.Fatalf("Create over an expired key: %v", err)
		}
		// The records written with ttl 0 outlived the short ones.
		mustGet(t, s, "put0", "v")
		mustGet(t, s, "swap0", "b")
	})
}

// lookupBecomes polls Lookup until it returns want ("" for ErrNotFound),
// within the one second the contract allows a cache.
func lookupBecomes(t *testing.T, s store.Store, key, want string) {
	t.Helper()
	var v []byte
	var err error
	if !poll.Wait(time.Second, func() bool {
		v, err = s.Lookup(context.Background(), key)
		return want == "" && errors.Is(err, store.ErrNotFound) || want != "" && err == nil && string(v) == want
	}) {
		t.Fatalf("Lookup(%q) = %q, %v; want %q within 1s", key, v, err, want)
	}
}
