package redisstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/caddyoauth/gateway/caddyoauth/store"
	"github.com/caddyoauth/gateway/caddyoauth/store/storetest"
	"github.com/caddyoauth/gateway/internal/poll"
	"github.com/caddyoauth/gateway/internal/testredis"
)

// prefixes gives every store of a test binary its own key prefix, so
// contract subtests sharing one server start empty.
var prefixes atomic.Int64

func uniquePrefix() string { return fmt.Sprintf("t%d:", prefixes.Add(1)) }

func openURL(t testing.TB, url, prefix string) *Store {
	t.Helper()
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(opt, prefix, 0)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContractStandalone(t *testing.T) {
	srv := testredis.Start(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return openURL(t, srv.URL(), uniquePrefix())
	})
}

// TestCluster runs the contract and the cluster-specific checks on one
// three-master cluster, which takes a few seconds to form.
func TestCluster(t *testing.T) {
	c := testredis.StartCluster(t)
	open := func(t *testing.T, prefix string) *Store {
		s, err := Open(rueidis.ClientOption{InitAddress: c.Addrs()}, prefix, 0)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	t.Run("Contract", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return open(t, uniquePrefix()) })
	})
	// Delete takes keys that hash to different slots, where one
	// multi-key DEL would fail with CROSSSLOT.
	t.Run("DeleteAcrossSlots", func(t *testing.T) {
		s := open(t, uniquePrefix())
		ctx := context.Background()
		var keys []string
		for i := range 20 {
			k := fmt.Sprint("key", i)
			keys = append(keys, k)
			if err := s.Put(ctx, k, []byte("v"), time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Delete(ctx, keys...); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		for _, k := range keys {
			if _, err := s.Get(ctx, k); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("Get(%s) after Delete: %v", k, err)
			}
		}
	})
	t.Run("LookupSeesOtherClient", func(t *testing.T) {
		prefix := uniquePrefix()
		a, b := open(t, prefix), open(t, prefix)
		ctx := context.Background()
		if err := b.Put(ctx, "k", []byte("v1"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if v, err := a.Lookup(ctx, "k"); err != nil || string(v) != "v1" {
			t.Fatalf("Lookup = %q, %v", v, err)
		}
		if err := b.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, time.Second, "Lookup sees Delete", func() bool {
			_, err := a.Lookup(ctx, "k")
			return errors.Is(err, store.ErrNotFound)
		})
	})
	// Options with cluster addresses and no URL reach the cluster.
	t.Run("Options", func(t *testing.T) {
		o := Options{Cluster: c.Addrs()}
		if err := o.Check(); err != nil {
			t.Fatal(err)
		}
		opt, err := o.ClientOption()
		if err != nil {
			t.Fatal(err)
		}
		s, err := Open(opt, uniquePrefix(), 0)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		ctx := context.Background()
		if err := s.Put(ctx, "k", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Lookup(ctx, "k"); err != nil || string(v) != "v" {
			t.Fatalf("Lookup = %q, %v", v, err)
		}
	})
}

// TestLookupSeesOtherClients checks the one-second promise of Lookup: a
// value cached by instance A goes away once instance B changes it.
func TestLookupSeesOtherClients(t *testing.T) {
	srv := testredis.Start(t)
	prefix := uniquePrefix()
	a := openURL(t, srv.URL(), prefix)
	b := openURL(t, srv.URL(), prefix)
	ctx := context.Background()

	lookup := func(key, want string) func() bool {
		return func() bool {
			v, err := a.Lookup(ctx, key)
			if want == "" {
				return errors.Is(err, store.ErrNotFound)
			}
			return err == nil && string(v) == want
		}
	}
	for _, k := range []string{"del", "swap", "take", "put"} {
		if err := b.Put(ctx, k, []byte("v1"), time.Minute); err != nil {
			t.Fatal(err)
		}
		// Cache it in A.
		if v, err := a.Lookup(ctx, k); err != nil || string(v) != "v1" {
			t.Fatalf("Lookup(%s) = %q, %v", k, v, err)
		}
	}

	if err := b.Delete(ctx, "del"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Second, "Lookup sees Delete", lookup("del", ""))

	if err := b.Swap(ctx, "swap", []byte("v1"), []byte("v2"), time.Minute); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Second, "Lookup sees Swap", lookup("swap", "v2"))

	if _, err := b.Take(ctx, "take"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Second, "Lookup sees Take", lookup("take", ""))

	if err := b.Put(ctx, "put", []byte("v3"), time.Minute); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Second, "Lookup sees Put", lookup("put", "v3"))

	// A key that was missing when A looked it up appears once B creates it.
	if _, err := a.Lookup(ctx, "late"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Lookup of missing key: %v", err)
	}
	if err := b.Create(ctx, "late", []byte("here"), time.Minute); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Second, "Lookup sees Create", lookup("late", "here"))
}

// TestLookupIsCached checks that repeated Lookups of a key are served
// locally: after the first, Redis sees no further GET.
func TestLookupIsCached(t *testing.T) {
	srv := testredis.Start(t)
	s := openURL(t, srv.URL(), uniquePrefix())
	admin := openURL(t, srv.URL(), "admin:")
	ctx := context.Background()
	if err := s.Put(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if err := admin.c.Do(ctx, admin.c.B().ConfigResetstat().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if v, err := s.Lookup(ctx, "k"); err != nil || string(v) != "v" {
			t.Fatalf("Lookup = %q, %v", v, err)
		}
	}
	stats, err := admin.c.Do(ctx, admin.c.B().Info().Section("commandstats").Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stats, "cmdstat_get:") {
		t.Fatalf("cached Lookups reached Redis:\n%s", stats)
	}
	// Get, by contrast, always asks Redis.
	if _, err := s.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	stats, _ = admin.c.Do(ctx, admin.c.B().Info().Section("commandstats").Build()).ToString()
	if !strings.Contains(stats, "cmdstat_get:calls=1,") {
		t.Fatalf("Get did not reach Redis once:\n%s", stats)
	}
}

// TestRecovery stops Redis under an open store: calls fail fast with an
// error, and succeed again once Redis is back on the same port, without
// reopening the store.
func TestRecovery(t *testing.T) {
	srv := testredis.Start(t, "--requirepass", "s3cret-pw")
	url := "redis://:s3cret-pw@" + srv.Addr() + "/0"
	s := openURL(t, url, uniquePrefix())
	ctx := context.Background()
	if err := s.Put(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx, "k"); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	// A Lookup served from the client-side cache does not touch the
	// connection, so until rueidis notices the connection is gone it may
	// still answer; once it does, the cache goes with the connection.
	// Wait for that on an uncached read of the same key (same connection).
	poll.Until(t, 5*time.Second, "Get to fail with Redis down", func() bool {
		_, err := s.Get(ctx, "k")
		return err != nil
	})
	calls := map[string]func() error{
		"Put":    func() error { return s.Put(ctx, "k", []byte("v"), 0) },
		"Get":    func() error { _, err := s.Get(ctx, "k"); return err },
		"Lookup": func() error { _, err := s.Lookup(ctx, "k"); return err },
		"Take":   func() error { _, err := s.Take(ctx, "k"); return err },
		"Swap":   func() error { return s.Swap(ctx, "k", []byte("v"), []byte("w"), 0) },
		"Add":    func() error { return s.AddMember(ctx, "set", "m", 0) },
		"Members": func() error {
			_, err := s.Members(ctx, "set")
			return err
		},
		"Delete": func() error { return s.Delete(ctx, "a", "b") },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		if d := time.Since(start); d > callTimeout+time.Second {
			t.Errorf("%s with Redis down took %v", name, d)
		}
		// All must fail; none may report a missing key as if Redis
		// answered, and Lookup may not answer from a dropped cache.
		t.Logf("%s with Redis down: %v", name, err)
		if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
			t.Errorf("%s with Redis down: err = %v, want a connection error", name, err)
		} else if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("%s error contains the password: %v", name, err)
		}
	}

	srv.Restart()
	poll.Until(t, 5*time.Second, "Put after restart", func() bool {
		return s.Put(ctx, "k", []byte("back"), 0) == nil
	})
	if v, err := s.Get(ctx, "k"); err != nil || string(v) != "back" {
		t.Fatalf("Get after restart = %q, %v", v, err)
	}
	if v, err := s.Lookup(ctx, "k"); err != nil || string(v) != "back" {
		t.Fatalf("Lookup after restart = %q, %v (a stale cache entry?)", v, err)
	}
}

// TestFailsFastWhenDown checks that Open against a port nobody listens on
// fails quickly and without the password in the error.
func TestFailsFastWhenDown(t *testing.T) {
	srv := testredis.Start(t)
	addr := srv.Addr()
	srv.Stop()
	opt, err := rueidis.ParseURL("redis://user:s3cret-pw@" + addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s, err := Open(opt, "", 0)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded with Redis down")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Open took %v", d)
	}
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("error contains the password: %v", err)
	}
}

// TestCloseLeavesNoGoroutines opens, uses and closes stores and waits for
// the goroutine count to come back to where it was.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	srv := testredis.Start(t)
	ctx := context.Background()
	before := runtime.NumGoroutine()
	for range 3 {
		opt, _ := rueidis.ParseURL(srv.URL())
		s, err := Open(opt, uniquePrefix(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, "k", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Lookup(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	poll.Until(t, 5*time.Second, "goroutines back to the count before Open", func() bool {
		return runtime.NumGoroutine() <= before
	})
}

func TestExpiryIsRedis(t *testing.T) {
	srv := testredis.Start(t)
	s := openURL(t, srv.URL(), uniquePrefix())
	ctx := context.Background()
	pttl := func(key string) int64 {
		t.Helper()
		n, err := s.c.Do(ctx, s.c.B().Pttl().Key(key).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := s.Put(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := pttl(s.key("k")); n <= 0 || n > 60000 {
		t.Fatalf("PTTL after Put with 1m = %d", n)
	}
	// A Swap with ttl 0 makes the key permanent.
	if err := s.Swap(ctx, "k", []byte("v"), []byte("w"), 0); err != nil {
		t.Fatal(err)
	}
	if n := pttl(s.key("k")); n != -1 {
		t.Fatalf("PTTL after Swap with no ttl = %d, want -1", n)
	}
	// Set expiry grows and never shrinks; ttl 0 makes the set permanent.
	steps := []struct {
		ttl      time.Duration
		min, max int64
	}{
		{time.Minute, 50000, 60000},
		{time.Second, 50000, 60000}, // shorter: unchanged
		{time.Hour, 3500000, 3600000},
		{0, -1, -1},
		{time.Minute, -1, -1}, // stays permanent
	}
	for i, st := range steps {
		if err := s.AddMember(ctx, "fam", fmt.Sprint("m", i), st.ttl); err != nil {
			t.Fatal(err)
		}
		if n := pttl(s.set("fam")); n < st.min || n > st.max {
			t.Fatalf("step %d: PTTL of set = %d, want [%d, %d]", i, n, st.min, st.max)
		}
	}
}

// TestHungRedisIsBounded checks that a Redis that accepts connections but
// does not answer (here: CLIENT PAUSE) cannot hang a caller without a
// deadline of its own.
func TestHungRedisIsBounded(t *testing.T) {
	srv := testredis.Start(t)
	s := openURL(t, srv.URL(), uniquePrefix())
	admin := openURL(t, srv.URL(), "admin:")
	ctx := context.Background()
	if err := admin.c.Do(ctx, admin.c.B().ClientPause().Timeout(int64(callTimeout/time.Millisecond)+2000).All().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := s.Get(ctx, "k")
	if err == nil {
		t.Fatal("Get on a paused Redis succeeded")
	}
	if d := time.Since(start); d > callTimeout+time.Second {
		t.Fatalf("Get on a paused Redis took %v", d)
	}
	t.Logf("after %v: %v", time.Since(start), err)
}

// TestSetsDropDeadMembers checks that a set keeps no dead member: Members
// leaves out the expired ones at once, and the next AddMember removes them
// from Redis, so a set that keeps growing stays as small as its live
// members.
func TestSetsDropDeadMembers(t *testing.T) {
	srv := testredis.Start(t)
	s := openURL(t, srv.URL(), uniquePrefix())
	ctx := context.Background()
	for i := range 50 {
		if err := s.AddMember(ctx, "user", fmt.Sprint("dead", i), 20*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddMember(ctx, "user", "live", time.Hour); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "expired members left out of Members", func() bool {
		m, err := s.Members(ctx, "user")
		return err == nil && len(m) == 1 && m[0] == "live"
	})
	if err := s.AddMember(ctx, "user", "new", time.Hour); err != nil {
		t.Fatal(err)
	}
	n, err := s.c.Do(ctx, s.c.B().Zcard().Key(s.set("user")).Build()).AsInt64()
	if err != nil || n != 2 {
		t.Fatalf("members kept in Redis = %d, %v; want 2 (the dead ones removed)", n, err)
	}
	// A member added again keeps the later of its two expiries.
	if err := s.AddMember(ctx, "user", "live", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	pttl, err := s.c.Do(ctx, s.c.B().Pttl().Key(s.set("user")).Build()).AsInt64()
	if err != nil || pttl < 3500000 {
		t.Fatalf("set PTTL = %d, %v; want about an hour", pttl, err)
	}
	if m, err := s.Members(ctx, "user"); err != nil || len(m) != 2 {
		t.Fatalf("Members = %v, %v; want live and new", m, err)
	}
}
