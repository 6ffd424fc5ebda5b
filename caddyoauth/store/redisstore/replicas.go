package redisstore

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// Redis replicates asynchronously: a write the primary has answered may
// not have reached any replica when the primary dies, and a replica
// promoted in its place (Sentinel, Cluster) then never had it. With
// replicas_ack, every write of a grant (issued tokens and codes, a refresh
// rotation, a revocation) is followed by WAIT n timeout, and counts as done
// only once n replicas have acknowledged it; otherwise it fails, and the
// gateway answers 503 rather than hand out a token that may vanish.
//
// WAIT waits for the replication offset of the connection's own last
// write, so it must travel on the connection that carried the write.
// rueidis multiplexes many callers over a few connections and, in a
// cluster, sends each command to the node of its key, so the write and its
// WAIT go out in one DoMulti on a dedicated connection (Client.Dedicate)
// to the primary of the key's slot: nobody else writes on it in between,
// and a write that meets MOVED is reported as failed instead of being
// redirected without its WAIT. Writes to several slots run as one such
// pipeline per slot, in parallel.

// DefaultReplicasAckTimeout is how long a write waits for its replicas'
// acknowledgement when replicas_ack is on and no timeout is given.
const DefaultReplicasAckTimeout = time.Second

// ErrNotReplicated reports a write that fewer replicas than replicas_ack
// acknowledged within the timeout. The primary did apply it.
var ErrNotReplicated = errors.New("redis store: write not acknowledged by enough replicas")

// replicasAck is the replicas_ack setting; n == 0 is off.
type replicasAck struct {
	n       int64
	timeout time.Duration
}

// SetReplicasAck makes every write but Incr wait until n replicas have
// acknowledged it, for at most timeout (DefaultReplicasAckTimeout when 0),
// and fail with ErrNotReplicated when fewer did. n == 0 turns it off. Call
// it before the store is used.
func (s *Store) SetReplicasAck(n int, timeout time.Duration) {
	if timeout <= 0 {
		timeout = DefaultReplicasAckTimeout
	}
	s.ack = replicasAck{n: int64(n), timeout: timeout}
}

// boundWrite is bound for a write, with the time its WAIT may take on top.
func (s *Store) boundWrite(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, callTimeout+s.ack.timeout)
}

// do runs one write; see doMulti.
func (s *Store) do(ctx context.Context, cmd rueidis.Completed) (rueidis.RedisResult, error) {
	if s.ack.n == 0 {
		return s.c.Do(ctx, cmd), nil
	}
	rs, err := s.acked(ctx, []rueidis.Completed{cmd})
	return rs[0], err
}

// doMulti runs writes in one pipeline and returns their results. With
// replicas_ack on, the second result is an error when a WAIT failed or
// fewer replicas than asked acknowledged the writes in time; callers look
// at the writes' own results first, since a write that changed nothing
// (NX refused, a missing key) needs no replica.
func (s *Store) doMulti(ctx context.Context, cmds []rueidis.Completed) ([]rueidis.RedisResult, error) {
	if s.ack.n == 0 {
		return s.c.DoMulti(ctx, cmds...), nil
	}
	return s.acked(ctx, cmds)
}

// acked sends cmds followed by WAIT, one dedicated pipeline per cluster
// slot (see the comment at the top of this file).
func (s *Store) acked(ctx context.Context, cmds []rueidis.Completed) ([]rueidis.RedisResult, error) {
	results := make([]rueidis.RedisResult, len(cmds))
	// Without a cluster the single-node clients take any mix of keys.
	groups := [][]int{make([]int, len(cmds))}
	for i := range cmds {
		groups[0][i] = i
	}
	if s.c.Mode() == rueidis.ClientModeCluster && len(cmds) > 1 {
		groups = groups[:0]
		bySlot := map[uint16]int{}
		for i := range cmds {
			slot := cmds[i].Slot()
			g, ok := bySlot[slot]
			if !ok {
				g = len(groups)
				bySlot[slot] = g
				groups = append(groups, nil)
			}
			groups[g] = append(groups[g], i)
		}
	}
	errs := make([]error, len(groups))
	run := func(g int) {
		idx := groups[g]
		multi := make([]rueidis.Completed, 0, len(idx)+1)
		for _, i := range idx {
			multi = append(multi, cmds[i])
		}
		multi = append(multi, s.c.B().Wait().Numreplicas(s.ack.n).Timeout(millis(s.ack.timeout)).Build())
		dc, release := s.c.Dedicate()
		rs := dc.DoMulti(ctx, multi...)
		release()
		for k, i := range idx {
			results[i] = rs[k]
		}
		got, err := rs[len(idx)].AsInt64()
		switch {
		case err != nil:
			errs[g] = fmt.Errorf("%w: WAIT: %w", ErrNotReplicated, err)
		case got < s.ack.n:
			errs[g] = fmt.Errorf("%w: %d of %d within %v", ErrNotReplicated, got, s.ack.n, s.ack.timeout)
		}
	}
	if len(groups) == 1 {
		run(0)
		return results, errs[0]
	}
	var wg sync.WaitGroup
	for g := range groups {
		wg.Go(func() { run(g) })
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

// script is a Lua script that writes one key. Without replicas_ack it runs
// through rueidis.Lua; with it, as EVALSHA and, when the server does not
// have it cached, EVAL, each in a pipeline with its WAIT.
type script struct {
	src, sha string
	lua      *rueidis.Lua
}

func newScript(src string) *script {
	d := sha1.Sum([]byte(src))
	return &script{src: src, sha: hex.EncodeToString(d[:]), lua: rueidis.NewLuaScript(src)}
}

// evalsha is the script's EVALSHA on key.
func (sc *script) evalsha(c rueidis.Client, key string, args ...string) rueidis.Completed {
	return c.B().Evalsha().Sha1(sc.sha).Numkeys(1).Key(key).Arg(args...).Build()
}

// run runs the script on key; the error is doMulti's.
func (s *Store) run(ctx context.Context, sc *script, key string, args ...string) (rueidis.RedisResult, error) {
	if s.ack.n == 0 {
		return sc.lua.Exec(ctx, s.c, []string{key}, args), nil
	}
	r, err := s.do(ctx, sc.evalsha(s.c, key, args...))
	if re, ok := rueidis.IsRedisErr(r.Error()); ok && re.IsNoScript() {
		r, err = s.do(ctx, s.c.B().Eval().Script(sc.src).Numkeys(1).Key(key).Arg(args...).Build())
	}
	return r, err
}
