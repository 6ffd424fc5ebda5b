package limits

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
)

func memStore(t *testing.T) store.Store {
	t.Helper()
	db, err := filestore.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// clock is a settable clock for the limiter and the lockout.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Unix(1_700_000_000, 0)} }

func TestParseRate(t *testing.T) {
	good := map[string]Rate{
		"20/s":    {20, time.Second, 20},
		"5/m":     {5, time.Minute, 5},
		"1000/h":  {1000, time.Hour, 1000},
		"100/10s": {100, 10 * time.Second, 100},
		"3/15m":   {3, 15 * time.Minute, 3},
	}
	for in, want := range good {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if back, _ := ParseRate(got.String()); back != got {
			t.Errorf("ParseRate(%q).String() = %q does not read back", in, got.String())
		}
	}
	for _, in := range []string{"", "20", "/s", "0/s", "-1/s", "x/s", "20/", "20/d", "20/0s", "20/-1s", "20/25h", "20/s/s", "1/1ns"} {
		if r, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) = %+v, want an error", in, r)
		}
	}
}

func TestLimiterBurstThenRefuses(t *testing.T) {
	c := newClock()
	l := NewLimiter(memStore(t))
	l.Now = c.now
	ctx := context.Background()
	r := Rate{Events: 2, Per: time.Second, Burst: 4} // window 2s holding 4
	for i := 0; i < 4; i++ {
		if d, err := l.Allow(ctx, "token", r, "client:a"); err != nil || !d.Allowed {
			t.Fatalf("event %d within the burst: %+v, %v", i+1, d, err)
		}
	}
	d, err := l.Allow(ctx, "token", r, "client:a")
	if err != nil || d.Allowed {
		t.Fatalf("event past the burst: %+v, %v; want refused", d, err)
	}
	if d.RetryAfter < time.Second || d.RetryAfter > 4*time.Second {
		t.Fatalf("RetryAfter = %v, want 1s..4s", d.RetryAfter)
	}
	// Another key and another limit name count apart.
	if d, _ := l.Allow(ctx, "token", r, "client:b"); !d.Allowed {
		t.Fatal("another key was refused")
	}
	if d, _ := l.Allow(ctx, "introspect", r, "client:a"); !d.Allowed {
		t.Fatal("the same key under another limit was refused")
	}
	// Once Retry-After has passed, an event is allowed again.
	c.add(d.RetryAfter)
	if d, _ := l.Allow(ctx, "token", r, "client:a"); !d.Allowed {
		t.Fatalf("refused after waiting the Retry-After it was given")
	}
}

func TestLimiterSlidingWindowHoldsTheRate(t *testing.T) {
	c := newClock()
	l := NewLimiter(memStore(t))
	l.Now = c.now
	ctx := context.Background()
	r := Rate{Events: 10, Per: time.Second} // window 1s holding 10
	// Align to the start of a window, then send 100 events evenly over 5s
	// at twice the rate: about half must be refused, and never more than
	// the rate plus one burst may pass.
	w := int64(time.Second)
	c.t = time.Unix(0, (c.t.UnixNano()/w+1)*w)
	allowed := 0
	for i := 0; i < 100; i++ {
		if d, _ := l.Allow(ctx, "x", r, "k"); d.Allowed {
			allowed++
		}
		c.add(50 * time.Millisecond)
	}
	if allowed < 40 || allowed > 60 {
		t.Fatalf("%d of 100 events at 20/s passed a 10/s limit over 5s; want about 50", allowed)
	}
	// Across a window boundary the previous window still weighs: a burst
	// right after a full window is refused.
	c2 := newClock()
	l2 := NewLimiter(memStore(t))
	l2.Now = c2.now
	c2.t = time.Unix(0, (c2.t.UnixNano()/w+1)*w-int64(100*time.Millisecond))
	for i := 0; i < 10; i++ {
		if d, _ := l2.Allow(ctx, "x", r, "k"); !d.Allowed {
			t.Fatalf("event %d of the first burst refused", i)
		}
	}
	c2.add(200 * time.Millisecond) // 100ms into the next window
	passed := 0
	for i := 0; i < 10; i++ {
		if d, _ := l2.Allow(ctx, "x", r, "k"); d.Allowed {
			passed++
		}
	}
	if passed > 2 {
		t.Fatalf("%d events passed 200ms after a full burst, straddling a window boundary; want at most 2", passed)
	}
}

func TestLockoutSlowsThenLocks(t *testing.T) {
	c := newClock()
	lo := NewLockout(memStore(t), LockoutPolicy{SlowAfter: 3, LockAfter: 6, LockFor: time.Hour, AddressLockAfter: 1000})
	lo.Now = c.now
	ctx := context.Background()
	mustWait := func(user, addr string, want time.Duration) {
		t.Helper()
		got, err := lo.Check(ctx, user, addr)
		if err != nil || got != want {
			t.Fatalf("Check(%s, %s) = %v, %v; want %v", user, addr, got, err, want)
		}
	}
	fail := func(user, addr string) time.Duration {
		t.Helper()
		d, err := lo.Failed(ctx, user, addr)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for i := 1; i <= 2; i++ {
		if d := fail("alice", "10.0.0.1"); d != 0 {
			t.Fatalf("failure %d: wait %v, want none", i, d)
		}
	}
	mustWait("alice", "10.0.0.1", 0)
	// The third failure starts the slowdown: 1s, then 2s, then 4s.
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		if d := fail("alice", "10.0.0.1"); d != want {
			t.Fatalf("failure %d: wait %v, want %v", i+3, d, want)
		}
		mustWait("alice", "10.0.0.1", want)
		c.add(want)
		mustWait("alice", "10.0.0.1", 0)
	}
	// The sixth locks for LockFor.
	if d := fail("alice", "10.0.0.1"); d != time.Hour {
		t.Fatalf("failure 6: wait %v, want 1h", d)
	}
	mustWait("ALICE", "10.0.0.1", time.Hour) // usernames compare without case
	// The lock holds alice at the attacker's address only: from another
	// address she signs in, and other users are untouched.
	mustWait("alice", "10.0.0.2", 0)
	mustWait("bob", "10.0.0.1", 0)
	c.add(time.Hour)
	mustWait("alice", "10.0.0.1", 0)
}

func TestLockoutSuccessClears(t *testing.T) {
	c := newClock()
	lo := NewLockout(memStore(t), LockoutPolicy{SlowAfter: 2, LockAfter: 5})
	lo.Now = c.now
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := lo.Failed(ctx, "u", "a"); err != nil {
			t.Fatal(err)
		}
	}
	if d, _ := lo.Check(ctx, "u", "a"); d == 0 {
		t.Fatal("no wait after reaching SlowAfter")
	}
	if err := lo.Succeeded(ctx, "u", "a"); err != nil {
		t.Fatal(err)
	}
	if d, _ := lo.Check(ctx, "u", "a"); d != 0 {
		t.Fatalf("wait %v after a success, want none", d)
	}
	if d, _ := lo.Failed(ctx, "u", "a"); d != 0 {
		t.Fatalf("first failure after a success waits %v: the count was not reset", d)
	}
}

func TestLockoutLocksASprayingAddress(t *testing.T) {
	lo := NewLockout(memStore(t), LockoutPolicy{SlowAfter: 5, LockAfter: 10, AddressLockAfter: 20, LockFor: time.Minute})
	ctx := context.Background()
	// One failure each for many usernames never slows any one of them...
	for i := 0; i < 19; i++ {
		if d, _ := lo.Failed(ctx, fmt.Sprint("user", i), "203.0.113.9"); d != 0 {
			t.Fatalf("failure %d: wait %v, want none yet", i+1, d)
		}
	}
	// ...but the address as a whole is locked at AddressLockAfter, for
	// every username, existing or not; other addresses are not.
	if d, _ := lo.Failed(ctx, "user19", "203.0.113.9"); d != time.Minute {
		t.Fatalf("failure 20 from one address: wait %v, want 1m", d)
	}
	if d, _ := lo.Check(ctx, "never-seen", "203.0.113.9"); d != time.Minute {
		t.Fatalf("locked address, new username: wait %v, want 1m", d)
	}
	if d, _ := lo.Check(ctx, "user1", "198.51.100.1"); d != 0 {
		t.Fatalf("another address: wait %v, want none", d)
	}
}

func TestLimiterRaceNeverPassesMoreThanTheBurst(t *testing.T) {
	l := NewLimiter(memStore(t))
	r := Rate{Events: 1, Per: time.Hour, Burst: 25}
	var passed atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for j := 0; j < 10; j++ {
				if d, err := l.Allow(context.Background(), "x", r, "k"); err != nil {
					t.Error(err)
				} else if d.Allowed {
					passed.Add(1)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if n := passed.Load(); n != 25 {
		t.Fatalf("%d of 160 racing events passed a burst of 25; want exactly 25", n)
	}
}
