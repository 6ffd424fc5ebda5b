// Package redisstore is the Redis backend of the token store, shared by
// several gateway instances. It talks to a single server, a Sentinel-managed
// master or a Redis Cluster through rueidis, and answers Lookup from a
// client-side cache that Redis itself invalidates (RESP3 client tracking).
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/rueidis"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// Defaults of Open and of the oauth.stores.redis module.
const (
	DefaultKeyPrefix = "oauth:"
	DefaultCacheTTL  = 30 * time.Second
)

// Timeouts keep every call bounded while Redis is down or unreachable:
// a dial gives up after dialTimeout, a sent command whose reply does not
// come within writeTimeout closes its connection, and no call outlasts
// callTimeout even when the caller's context has no deadline.
const (
	dialTimeout  = 2 * time.Second
	writeTimeout = 3 * time.Second
	callTimeout  = 5 * time.Second
	// maxAttempts bounds rueidis' retries of read-only commands, which
	// would otherwise go on until the context ends. Two retries cover a
	// connection that broke while idle; more would only delay the error.
	maxAttempts = 3
)

// Store is a store.Store on Redis. Keys live at <prefix>k:<key> and sets
// at <prefix>s:<set> (sorted sets, see sets.go), so a set never collides
// with a plain key of the same name. Every record is a single Redis key, which keeps every operation on
// one cluster slot.
type Store struct {
	c              rueidis.Client
	prefix         string
	cacheTTL       time.Duration
	lookupDeadline lookupDeadline
	ack            replicasAck // see replicas.go
}

// Open connects to Redis as opt says (see rueidis.ParseURL) and returns a
// store whose keys start with prefix (DefaultKeyPrefix when empty) and
// whose Lookup keeps values cached for at most cacheTTL (DefaultCacheTTL
// when 0). Open fails when no server answers.
func Open(opt rueidis.ClientOption, prefix string, cacheTTL time.Duration) (*Store, error) {
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	if cacheTTL <= 0 {
		cacheTTL = DefaultCacheTTL
	}
	if opt.Dialer.Timeout == 0 {
		opt.Dialer.Timeout = dialTimeout
	}
	if opt.Sentinel.Dialer.Timeout == 0 {
		opt.Sentinel.Dialer.Timeout = dialTimeout
	}
	if opt.ConnWriteTimeout == 0 {
		opt.ConnWriteTimeout = writeTimeout
	}
	if opt.RetryDelay == nil {
		opt.RetryDelay = func(attempts int, _ rueidis.Completed, _ error) time.Duration {
			if attempts >= maxAttempts {
				return -1 // give up
			}
			return time.Duration(attempts) * 10 * time.Millisecond
		}
	}
	c, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, err
	}
	return &Store{c: c, prefix: prefix, cacheTTL: cacheTTL}, nil
}

func (s *Store) key(k string) string { return s.prefix + "k:" + k }
func (s *Store) set(n string) string { return s.prefix + "s:" + n }

// bound gives ctx a deadline of at most callTimeout.
func bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, callTimeout)
}

// millis is ttl in whole milliseconds, rounded up so that a positive ttl
// never becomes PX 0, which Redis refuses.
func millis(ttl time.Duration) int64 {
	return int64((ttl + time.Millisecond - 1) / time.Millisecond)
}

func wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("redis store: %w", err)
}

// value turns a GET-like reply into the store's answer.
func value(r rueidis.RedisResult) ([]byte, error) {
	v, err := r.AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, wrap(err)
	}
	return v, nil
}

// Put implements store.Store. A ttl of 0 drops any expiry the key had.
func (s *Store) Put(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	ctx, cancel := s.boundWrite(ctx)
	defer cancel()
	r, ackErr := s.do(ctx, s.setCmd(key, v, ttl))
	if err := r.Error(); err != nil {
		return wrap(err)
	}
	return ackErr
}

// setCmd is Put's SET. string(v) copies: rueidis may still hold the command
// after a cancelled call returns, and the caller may reuse v.
func (s *Store) setCmd(key string, v []byte, ttl time.Duration) rueidis.Completed {
	if ttl > 0 {
		return s.c.B().Set().Key(s.key(key)).Value(string(v)).PxMilliseconds(millis(ttl)).Build()
	}
	return s.c.B().Set().Key(s.key(key)).Value(string(v)).Build()
}

// Create implements store.Store with SET NX.
func (s *Store) Create(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	ctx, cancel := s.boundWrite(ctx)
	defer cancel()
	var cmd rueidis.Completed
	if ttl > 0 {
		cmd = s.c.B().Set().Key(s.key(key)).Value(string(v)).Nx().PxMilliseconds(millis(ttl)).Build()
	} else {
		cmd = s.c.B().Set().Key(s.key(key)).Value(string(v)).Nx().Build()
	}
	r, ackErr := s.do(ctx, cmd)
	err := r.Error()
	if rueidis.IsRedisNil(err) { // NX refused: the key exists
		return store.ErrConflict
	}
	if err != nil {
		return wrap(err)
	}
	return ackErr
}

// Get implements store.Store. It always asks Redis, never the cache.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	return value(s.c.Do(ctx, s.c.B().Get().Key(s.key(key)).Build()))
}

// Lookup implements store.Store from the client-side cache: a key seen in
// the last cache TTL costs no round trip, and Redis pushes an invalidation
// that evicts it as soon as any client changes or deletes it. rueidis also
// caps the entry at the key's own remaining PTTL and drops the whole cache
// when a connection breaks, since invalidations may have been missed. Its
// deadline comes from lookupDeadline rather than from ctx.
func (s *Store) Lookup(_ context.Context, key string) ([]byte, error) {
	ctx := s.lookupDeadline.context(time.Now())
	return value(s.c.DoCache(ctx, s.c.B().Get().Key(s.key(key)).Cache(), s.cacheTTL))
}

// Take implements store.Store with GETDEL: Redis runs it as one command,
// so of racing callers exactly one gets the value.
func (s *Store) Take(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := s.boundWrite(ctx)
	defer cancel()
	r, ackErr := s.do(ctx, s.c.B().Getdel().Key(s.key(key)).Build())
	v, err := value(r)
	if err != nil {
		return nil, err
	}
	if ackErr != nil {
		return nil, ackErr
	}
	return v, nil
}

// swapScript compares and sets in one step. ARGV: prev, next, ttl in ms
// (0: no expiry). Returns 0 when the key is missing, 1 on a conflict and 2
// when it swapped.
var swapScript = newScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
if cur ~= ARGV[1] then return 1 end
if ARGV[3] == '0' then
	redis.call('SET', KEYS[1], ARGV[2])
else
	redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 2
`)

// Swap implements store.Store.
func (s *Store) Swap(ctx context.Context, key string, prev, next []byte, ttl time.Duration) error {
	ctx, cancel := s.boundWrite(ctx)
	defer cancel()
	r, ackErr := s.run(ctx, swapScript, s.key(key), string(prev), string(next), fmt.Sprint(millis(max(ttl, 0))))
	n, err := r.AsInt64()
	switch {
	case err != nil:
		return wrap(err)
	case n == 0:
		return store.ErrNotFound
	case n == 1:
		return store.ErrConflict
	}
	return ackErr
}

// Delete implements store.Store with one DEL per key: the keys may sit on
// different cluster slots, where a multi-key DEL fails with CROSSSLOT.
// The DELs still go out together in one pipeline.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	ctx, cancel := s.boundWrite(ctx)
	defer cancel()
	cmds := make(rueidis.Commands, len(keys))
	for i, k := range keys {
		cmds[i] = s.c.B().Del().Key(s.key(k)).Build()
	}
	rs, ackErr := s.doMulti(ctx, cmds)
	var errs []error
	for _, r := range rs {
		errs = append(errs, r.Error())
	}
	if err := errors.Join(errs...); err != nil {
		return wrap(err)
	}
	return ackErr
}

// incrScript counts in one step and gives a new counter its expiry.
// ARGV: ttl in ms (0: none). PTTL -1 means the key has no expiry, which
// after INCR happens only when INCR just created it (or a ttl of 0 was
// asked before), so the window starts with the first count and later
// counts never extend it. Redis 7's PEXPIRE NX would do the same, but the
// script also runs on Redis 6.
var incrScript = rueidis.NewLuaScript(`
local n = redis.call('INCR', KEYS[1])
local ttl = tonumber(ARGV[1])
if ttl > 0 and redis.call('PTTL', KEYS[1]) == -1 then
	redis.call('PEXPIRE', KEYS[1], ttl)
end
return n
`)

// Incr implements store.Store.
func (s *Store) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	n, err := incrScript.Exec(ctx, s.c, []string{s.key(key)},
		[]string{fmt.Sprint(millis(max(ttl, 0)))}).AsInt64()
	return n, wrap(err)
}

// Close implements store.Store: it closes the connections and stops the
// client's goroutines.
func (s *Store) Close() error {
	s.c.Close()
	s.lookupDeadline.close()
	return nil
}

// Interface guards
var _ store.Store = (*Store)(nil)
