package redisstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/caddyoauth/gateway/caddyoauth/store"
	"github.com/caddyoauth/gateway/caddyoauth/store/storetest"
	"github.com/caddyoauth/gateway/internal/testredis"
)

// ackTimeout is the replicas_ack timeout of the writes these tests expect
// to fail: short, since they wait all of it. The writes expected to succeed
// get patientTimeout, which a loaded test machine cannot run out.
const (
	ackTimeout     = 300 * time.Millisecond
	patientTimeout = 5 * time.Second
)

// direct is a plain client of one node (no cache, no cluster discovery),
// for reading a replica or a node's own keys.
func direct(t testing.TB, addr string) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true, ForceSingleClient: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// writes are one of each kind of write the store waits on, in an order
// where each leaves something for the next one: name, the call, and the
// key or set whose value on a replica shows it arrived.
func writes(s *Store) []struct {
	name  string
	do    func(context.Context) error
	check func(context.Context, rueidis.Client) error
} {
	key := func(k, want string) func(context.Context, rueidis.Client) error {
		return func(ctx context.Context, c rueidis.Client) error {
			v, err := c.Do(ctx, c.B().Get().Key(s.key(k)).Build()).ToString()
			if rueidis.IsRedisNil(err) {
				v, err = "", nil
			}
			if err != nil || v != want {
				return fmt.Errorf("GET %s on the replica = %q, %v; want %q", k, v, err, want)
			}
			return nil
		}
	}
	members := func(set string, want int64) func(context.Context, rueidis.Client) error {
		return func(ctx context.Context, c rueidis.Client) error {
			n, err := c.Do(ctx, c.B().Zcard().Key(s.set(set)).Build()).AsInt64()
			if err != nil || n != want {
				return fmt.Errorf("ZCARD %s on the replica = %d, %v; want %d", set, n, err, want)
			}
			return nil
		}
	}
	type w = struct {
		name  string
		do    func(context.Context) error
		check func(context.Context, rueidis.Client) error
	}
	return []w{
		{"Put", func(ctx context.Context) error { return s.Put(ctx, "a", []byte("1"), time.Minute) }, key("a", "1")},
		{"Create", func(ctx context.Context) error { return s.Create(ctx, "b", []byte("1"), time.Minute) }, key("b", "1")},
		{"Swap", func(ctx context.Context) error { return s.Swap(ctx, "a", []byte("1"), []byte("2"), time.Minute) }, key("a", "2")},
		{"Take", func(ctx context.Context) error { _, err := s.Take(ctx, "b"); return err }, key("b", "")},
		{"Delete", func(ctx context.Context) error { return s.Delete(ctx, "a") }, key("a", "")},
		{"AddMember", func(ctx context.Context) error { return s.AddMember(ctx, "set", "m1", time.Minute) }, members("set", 1)},
		{"WriteBatch", func(ctx context.Context) error {
			return s.WriteBatch(ctx, []store.Write{{Key: "c", Value: []byte("3"), TTL: time.Minute}, {Set: "set", Key: "m2", TTL: time.Minute}})
		}, members("set", 2)},
		{"RemoveMember", func(ctx context.Context) error { return s.RemoveMember(ctx, "set", "m1") }, members("set", 1)},
		{"DeleteSet", func(ctx context.Context) error { return s.DeleteSet(ctx, "set") }, members("set", 0)},
	}
}

// TestReplicasAck: with replicas_ack 1 and no replica, every write of a
// grant fails with ErrNotReplicated once the timeout has passed, not
// later; with a replica attached, every write succeeds, and the replica
// has it the moment the call returns.
func TestReplicasAck(t *testing.T) {
	primary := testredis.Start(t)
	prefix := uniquePrefix()
	s := openURL(t, primary.URL(), prefix)
	s.SetReplicasAck(1, ackTimeout)
	ctx := context.Background()

	for _, w := range writes(s) {
		start := time.Now()
		err := w.do(ctx)
		took := time.Since(start)
		if !errors.Is(err, ErrNotReplicated) {
			t.Fatalf("%s without a replica: err = %v, want ErrNotReplicated", w.name, err)
		}
		if took < ackTimeout || took > ackTimeout+callTimeout {
			t.Fatalf("%s without a replica failed after %v, want the ack timeout %v", w.name, took, ackTimeout)
		}
	}
	// Counters are not grants: they never wait.
	if _, err := s.Incr(ctx, "counter", time.Minute); err != nil {
		t.Fatalf("Incr without a replica: %v", err)
	}

	replica := testredis.StartReplica(t, primary)
	rc := direct(t, replica.Addr())
	s = openURL(t, primary.URL(), prefix)
	s.SetReplicasAck(1, patientTimeout)
	if err := s.Delete(ctx, "a", "b", "c"); err != nil { // left by the failed writes
		t.Fatalf("Delete with a replica: %v", err)
	}
	for _, w := range writes(s) {
		if err := w.do(ctx); err != nil {
			t.Fatalf("%s with a replica: %v", w.name, err)
		}
		if err := w.check(ctx, rc); err != nil {
			t.Fatalf("after %s: %v", w.name, err)
		}
	}
	// A write that changed nothing reports what happened, not the ack.
	if err := s.Create(ctx, "c", []byte("x"), time.Minute); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Create of an existing key: %v, want ErrConflict", err)
	}
	if _, err := s.Take(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Take of a missing key: %v, want ErrNotFound", err)
	}
}

// TestContractWithReplicasAck runs the store contract with replicas_ack 1
// and a replica, so every write goes through the WAIT pipelines.
func TestContractWithReplicasAck(t *testing.T) {
	primary := testredis.Start(t)
	testredis.StartReplica(t, primary)
	storetest.Run(t, func(t *testing.T) store.Store {
		s := openURL(t, primary.URL(), uniquePrefix())
		s.SetReplicasAck(1, patientTimeout)
		return s
	})
}

// TestReplicasAckClusterShard: in a cluster where only one master has a
// replica, a write waits on the shard of its key: it succeeds exactly when
// its key lives on that master, so WAIT never went to another node. A
// batch across shards fails when one of them lacks its replica.
func TestReplicasAckClusterShard(t *testing.T) {
	c := testredis.StartCluster(t)
	c.AddReplica(t, 0)
	prefix := uniquePrefix()
	open := func(timeout time.Duration) *Store {
		s, err := Open(rueidis.ClientOption{InitAddress: c.Addrs()}, prefix, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		s.SetReplicasAck(1, timeout)
		return s
	}
	// fast for the writes expected to fail, s for the others.
	s, fast := open(patientTimeout), open(ackTimeout)
	node0 := direct(t, c.Addrs()[0])
	ctx := context.Background()

	// onNode0 tells whether node 0 serves key's slot: other masters answer
	// MOVED.
	onNode0 := func(k string) bool {
		err := node0.Do(ctx, node0.B().Get().Key(s.key(k)).Build()).Error()
		if re, ok := rueidis.IsRedisErr(err); ok {
			if _, moved := re.IsMoved(); moved {
				return false
			}
		}
		if err != nil && !rueidis.IsRedisNil(err) {
			t.Fatalf("GET on node 0: %v", err)
		}
		return true
	}
	var with, without []string
	for i := 0; len(with) < 3 || len(without) < 3; i++ {
		k := fmt.Sprint("key", i)
		if onNode0(k) {
			with = append(with, k)
		} else {
			without = append(without, k)
		}
	}
	for _, k := range with {
		if err := s.Put(ctx, k, []byte("v"), time.Minute); err != nil {
			t.Fatalf("Put of %s, on the master with a replica: %v", k, err)
		}
	}
	for _, k := range without {
		if err := fast.Put(ctx, k, []byte("v"), time.Minute); !errors.Is(err, ErrNotReplicated) {
			t.Fatalf("Put of %s, on a master without a replica: %v, want ErrNotReplicated", k, err)
		}
	}
	batch := func(s *Store, keys ...string) error {
		var ws []store.Write
		for _, k := range keys {
			ws = append(ws, store.Write{Key: k, Value: []byte("w"), TTL: time.Minute})
		}
		return s.WriteBatch(ctx, ws)
	}
	if err := batch(s, with...); err != nil {
		t.Fatalf("batch on the master with a replica: %v", err)
	}
	if err := batch(fast, with[0], without[0], with[1]); !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("batch across shards, one without a replica: %v, want ErrNotReplicated", err)
	}
	if err := s.Delete(ctx, with...); err != nil {
		t.Fatalf("Delete on the master with a replica: %v", err)
	}
}
