package limits

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestLockoutCountsAnIPv6Slash64AsOneAddress: rotating addresses inside
// one IPv6 /64 gives no fresh budget, for a username or for the address's
// own count; another /64 is a different address. IPv4 addresses, mapped
// or not, count one by one.
func TestLockoutCountsAnIPv6Slash64AsOneAddress(t *testing.T) {
	ctx := context.Background()
	lo := NewLockout(memStore(t), LockoutPolicy{SlowAfter: 3, LockAfter: 4, LockFor: time.Hour, AddressLockAfter: 8})
	for i := range 4 {
		if _, err := lo.Failed(ctx, "alice", fmt.Sprintf("2001:db8:1:2::%x", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if d, _ := lo.Check(ctx, "alice", "2001:db8:1:2:ffff:ffff:ffff:ffff"); d != time.Hour {
		t.Fatalf("alice from a fresh address of the same /64: wait %v, want the 1h lock", d)
	}
	if d, _ := lo.Check(ctx, "alice", "2001:db8:1:3::1"); d != 0 {
		t.Fatalf("alice from another /64: wait %v, want none", d)
	}
	// The /64 sprays usernames, one failure each from a new address.
	for i := range 4 {
		if _, err := lo.Failed(ctx, fmt.Sprint("user", i), fmt.Sprintf("2001:db8:1:2:%x::1", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if d, _ := lo.Check(ctx, "someone", "2001:db8:1:2:abcd::1"); d != time.Hour {
		t.Fatalf("a new username from the spraying /64: wait %v, want the 1h address lock", d)
	}

	v4 := NewLockout(memStore(t), LockoutPolicy{SlowAfter: 3, LockAfter: 4, LockFor: time.Hour})
	for range 4 {
		if _, err := v4.Failed(ctx, "alice", "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
	}
	if d, _ := v4.Check(ctx, "alice", "::ffff:192.0.2.1"); d != time.Hour {
		t.Fatalf("the same IPv4 address, mapped: wait %v, want 1h", d)
	}
	if d, _ := v4.Check(ctx, "alice", "192.0.2.2"); d != 0 {
		t.Fatalf("the next IPv4 address: wait %v, want none", d)
	}
}

// TestLockoutNormalisesUsernames: spellings of one username that a
// legacy system may take for the same account (case, surrounding spaces,
// Unicode compatibility forms) share one count.
func TestLockoutNormalisesUsernames(t *testing.T) {
	ctx := context.Background()
	lo := NewLockout(memStore(t), LockoutPolicy{SlowAfter: 3, LockAfter: 4, LockFor: time.Hour})
	for _, name := range []string{"alice", " Alice", "ALICE\t", "ａｌｉｃｅ"} { // the last in fullwidth letters
		if _, err := lo.Failed(ctx, name, "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
	}
	if d, _ := lo.Check(ctx, "alice", "192.0.2.1"); d != time.Hour {
		t.Fatalf("four spellings of alice: wait %v, want the 1h lock", d)
	}
	if d, _ := lo.Check(ctx, "alicia", "192.0.2.1"); d != 0 {
		t.Fatalf("another username: wait %v, want none", d)
	}
}

// TestLockoutAccountCeilingSlowsAcrossAddresses: failures for one username
// from many addresses, each too few to slow that address, slow every
// attempt on the account once AccountSlowAfter (default 20) is reached:
// increasing waits, never longer than 30s, so an attacker slows the
// account down but never locks its owner out. Other accounts are not
// touched.
func TestLockoutAccountCeilingSlowsAcrossAddresses(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	lo := NewLockout(memStore(t), LockoutPolicy{})
	lo.Now = c.now
	for i := range 19 {
		if d, err := lo.Failed(ctx, "alice", fmt.Sprintf("198.51.100.%d", i+1)); err != nil || d != 0 {
			t.Fatalf("failure %d: wait %v, %v; want none", i+1, d, err)
		}
	}
	if d, _ := lo.Check(ctx, "alice", "203.0.113.1"); d != 0 {
		t.Fatalf("after 19 failures: wait %v, want none", d)
	}
	var last time.Duration
	for i := 20; i <= 40; i++ {
		if _, err := lo.Failed(ctx, "alice", fmt.Sprintf("198.51.100.%d", i)); err != nil {
			t.Fatal(err)
		}
		d, err := lo.Check(ctx, "alice", "203.0.113.1")
		if err != nil || d <= 0 || d > 30*time.Second || d < last {
			t.Fatalf("after %d failures, from an address that never failed: wait %v, %v; want a growing wait of at most 30s", i, d, err)
		}
		last = d
		c.add(d)
		if d, _ := lo.Check(ctx, "alice", "203.0.113.1"); d != 0 {
			t.Fatalf("after %d failures, once the wait is over: wait %v, want none", i, d)
		}
	}
	if last != 30*time.Second {
		t.Fatalf("the wait reached %v, want the 30s cap", last)
	}
	if d, _ := lo.Check(ctx, "bob", "198.51.100.1"); d != 0 {
		t.Fatalf("another account: wait %v, want none", d)
	}
}

// TestClientLockoutLocksAtSlowAfter: a client's secret is never typed by
// a person, so the client lockout has no slow phase: the slow_after-th
// failure of a client from an address locks it for lock_for at once,
// and no attempt in between is let through to a costly comparison.
func TestClientLockoutLocksAtSlowAfter(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	lo := NewClientLockout(memStore(t), LockoutPolicy{SlowAfter: 3, LockAfter: 10, LockFor: time.Hour})
	lo.Now = clk.now
	for i := 1; i <= 2; i++ {
		if d, err := lo.Failed(ctx, "partner", "192.0.2.1"); err != nil || d != 0 {
			t.Fatalf("failure %d: wait %v, %v; want none", i, d, err)
		}
	}
	if d, err := lo.Failed(ctx, "partner", "192.0.2.1"); err != nil || d != time.Hour {
		t.Fatalf("failure 3 (slow_after): wait %v, %v; want the 1h lock", d, err)
	}
	clk.add(59 * time.Minute)
	if d, _ := lo.Check(ctx, "partner", "192.0.2.1"); d <= 0 {
		t.Fatal("the client is let through before lock_for ends")
	}
	if d, _ := lo.Check(ctx, "partner", "192.0.2.2"); d != 0 {
		t.Fatalf("the client from another address: wait %v, want none", d)
	}
	// The users' lockout keeps its slow phase.
	users := NewLockout(memStore(t), LockoutPolicy{SlowAfter: 3, LockAfter: 10, LockFor: time.Hour})
	for range 2 {
		if _, err := users.Failed(ctx, "alice", "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
	}
	if d, _ := users.Failed(ctx, "alice", "192.0.2.1"); d != time.Second {
		t.Fatalf("a user's third failure: wait %v, want 1s", d)
	}
}
