package dpop

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// ReplayCache remembers the proofs accepted during their acceptance window.
type ReplayCache interface {
	// FirstUse records key for ttl and reports whether it was not recorded
	// yet. It is atomic: of callers racing with one key, on any instance
	// sharing the cache, exactly one gets true.
	FirstUse(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// StoreReplayCache keeps the records in s, with Create as the atomic
// "record if absent": over a Redis store, a proof is accepted once across
// every instance sharing it. Records are short-lived, so a file store's
// in-memory Counters store suits them better than its file.
func StoreReplayCache(s store.Store) ReplayCache { return storeReplay{s} }

// replayPrefix starts the key of every replay record.
const replayPrefix = "dpop:"

// IsReplayRecord reports whether key is a replay record: short-lived, it
// comes and goes with requests, like a rate-limit counter.
func IsReplayRecord(key string) bool { return strings.HasPrefix(key, replayPrefix) }

type storeReplay struct{ s store.Store }

func (r storeReplay) FirstUse(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	err := r.s.Create(ctx, key, []byte{'1'}, ttl)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrConflict):
		return false, nil
	}
	return false, err
}
