package redisstore

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"strconv"

	"github.com/redis/rueidis"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// addScriptSHA names addScript for EVALSHA in a pipeline.
var addScriptSHA = func() string {
	d := sha1.Sum([]byte(addScriptSrc))
	return hex.EncodeToString(d[:])
}()

// WriteBatch implements store.Batcher: the writes of one token response go
// to Redis as one pipeline, one round trip instead of one per record. The
// set additions run addScript by its SHA-1; a server that does not have
// the script cached (restarted, or a new cluster node) answers NOSCRIPT for
// those, and they are redone one by one through AddMember, which loads it.
func (s *Store) WriteBatch(ctx context.Context, writes []store.Write) error {
	if len(writes) == 0 {
		return nil
	}
	bctx, cancel := bound(ctx)
	defer cancel()
	cmds := make(rueidis.Commands, 0, len(writes))
	for _, w := range writes {
		if w.Set != "" {
			cmds = append(cmds, s.c.B().Evalsha().Sha1(addScriptSHA).Numkeys(1).Key(s.set(w.Set)).
				Arg(w.Key, strconv.FormatInt(millis(max(w.TTL, 0)), 10)).Build())
			continue
		}
		cmds = append(cmds, s.setCmd(w.Key, w.Value, w.TTL))
	}
	for i, r := range s.c.DoMulti(bctx, cmds...) {
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
	return nil
}

var _ store.Batcher = (*Store)(nil)
