package redisstore

import (
	"context"
	"strconv"

	"github.com/redis/rueidis"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// WriteBatch implements store.Batcher: the writes of one token response go
// to Redis as one pipeline, one round trip instead of one per record. The
// set additions run addScript by its SHA-1; a server that does not have
// the script cached (restarted, or a new cluster node) answers NOSCRIPT for
// those, and they are redone one by one through AddMember, which loads it.
// With replicas_ack the pipeline ends with WAIT (see replicas.go).
func (s *Store) WriteBatch(ctx context.Context, writes []store.Write) error {
	if len(writes) == 0 {
		return nil
	}
	bctx, cancel := s.boundWrite(ctx)
	defer cancel()
	cmds := make(rueidis.Commands, 0, len(writes))
	for _, w := range writes {
		if w.Set != "" {
			cmds = append(cmds, addScript.evalsha(s.c, s.set(w.Set), w.Key, strconv.FormatInt(millis(max(w.TTL, 0)), 10)))
			continue
		}
		cmds = append(cmds, s.setCmd(w.Key, w.Value, w.TTL))
	}
	rs, ackErr := s.doMulti(bctx, cmds)
	for i, r := range rs {
		err := r.Error()
		if re, ok := rueidis.IsRedisErr(err); ok && re.IsNoScript() {
			if err := s.AddMember(ctx, writes[i].Set, writes[i].Key, writes[i].TTL); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return wrap(err)
		}
	}
	return ackErr
}

var _ store.Batcher = (*Store)(nil)
