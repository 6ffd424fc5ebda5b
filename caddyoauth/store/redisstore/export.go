package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// exportBatch is how many keys one SCAN asks for and one pipeline reads.
const exportBatch = 500

// readValueScript reads a value and its remaining life in one step, so
// the two agree. It returns nil for a missing key, else {value, pttl}.
var readValueScript = rueidis.NewLuaScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('PTTL', KEYS[1])}
`)

// readSetScript lists a set's live members with their expiry scores, and
// the server's time they are relative to: {now, {member, score, ...}}.
var readSetScript = rueidis.NewLuaScript(setNow + `
return {string.format('%.0f', now), redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%.0f', now), '+inf', 'WITHSCORES')}
`)

// Export implements store.Exporter by walking the prefix's keys with SCAN
// on every master and reading each key as it comes (a value and its PTTL,
// or a set's live members, each in one script). It is consistent per key,
// not across keys: a record written while it runs may or may not be in
// it, and a token issued during it may be there without its entry in its
// user's set. Every key that exists from the start to the end of the walk
// is listed (SCAN's guarantee), which holds a token issued before Export
// began unless it is revoked or expires meanwhile. For a copy of one
// instant, use Redis' own BGSAVE.
func (s *Store) Export(ctx context.Context, fn func(store.Record) error) error {
	nodes, err := s.masters(ctx)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		for _, kind := range []string{"k:", "s:"} {
			if err := s.scan(ctx, n, s.prefix+kind, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// masters returns a client per node holding data: each master of a
// cluster (a replica holds the same keys), else the one server.
func (s *Store) masters(ctx context.Context) ([]rueidis.Client, error) {
	nodes := s.c.Nodes()
	if s.c.Mode() != rueidis.ClientModeCluster {
		out := make([]rueidis.Client, 0, len(nodes))
		for _, n := range nodes {
			out = append(out, n)
		}
		return out, nil
	}
	var out []rueidis.Client
	for _, n := range nodes {
		cctx, cancel := bound(ctx)
		role, err := n.Do(cctx, n.B().Role().Build()).ToArray()
		cancel()
		if err != nil {
			return nil, wrap(err)
		}
		if len(role) > 0 {
			if r, _ := role[0].ToString(); r == "master" {
				out = append(out, n)
			}
		}
	}
	if len(out) == 0 {
		return nil, wrap(errors.New("no cluster master answered"))
	}
	return out, nil
}

// scan lists the keys of node starting with prefix and hands their records
// to fn.
func (s *Store) scan(ctx context.Context, node rueidis.Client, prefix string, fn func(store.Record) error) error {
	match := globEscape(prefix) + "*"
	var cursor uint64
	for {
		cctx, cancel := bound(ctx)
		e, err := node.Do(cctx, node.B().Scan().Cursor(cursor).Match(match).Count(exportBatch).Build()).AsScanEntry()
		cancel()
		if err != nil {
			return wrap(err)
		}
		if len(e.Elements) > 0 {
			var read func(context.Context, []string, string, func(store.Record) error) error = s.readValues
			if strings.HasSuffix(prefix, "s:") {
				read = s.readSets
			}
			if err := read(ctx, e.Elements, prefix, fn); err != nil {
				return err
			}
		}
		if cursor = e.Cursor; cursor == 0 {
			return nil
		}
	}
}

// readValues reads plain records; a key deleted since SCAN saw it is
// skipped.
func (s *Store) readValues(ctx context.Context, keys []string, prefix string, fn func(store.Record) error) error {
	execs := make([]rueidis.LuaExec, len(keys))
	for i, k := range keys {
		execs[i] = rueidis.LuaExec{Keys: []string{k}}
	}
	sent := time.Now()
	cctx, cancel := bound(ctx)
	results := readValueScript.ExecMulti(cctx, s.c, execs...)
	cancel()
	for i, r := range results {
		a, err := r.ToArray()
		if rueidis.IsRedisNil(err) {
			continue
		}
		if err != nil {
			return wrap(fmt.Errorf("reading %q: %w", keys[i], err))
		}
		if len(a) != 2 {
			return wrap(fmt.Errorf("reading %q: unexpected reply", keys[i]))
		}
		v, err := a[0].AsBytes()
		if err != nil {
			return wrap(err)
		}
		pttl, err := a[1].AsInt64()
		if err != nil {
			return wrap(err)
		}
		rec := store.Record{Key: strings.TrimPrefix(keys[i], prefix), Value: v}
		if pttl != -1 { // -1: no expiry
			if rec.TTL = left(pttl, sent); rec.TTL <= 0 {
				continue
			}
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return nil
}

// readSets reads sets with their live members; a set emptied since SCAN
// saw it is skipped.
func (s *Store) readSets(ctx context.Context, keys []string, prefix string, fn func(store.Record) error) error {
	execs := make([]rueidis.LuaExec, len(keys))
	for i, k := range keys {
		execs[i] = rueidis.LuaExec{Keys: []string{k}}
	}
	sent := time.Now()
	cctx, cancel := bound(ctx)
	results := readSetScript.ExecMulti(cctx, s.c, execs...)
	cancel()
	for i, r := range results {
		a, err := r.ToArray()
		if err != nil {
			return wrap(fmt.Errorf("reading set %q: %w", keys[i], err))
		}
		if len(a) != 2 {
			return wrap(fmt.Errorf("reading set %q: unexpected reply", keys[i]))
		}
		nowStr, err := a[0].ToString()
		if err != nil {
			return wrap(err)
		}
		now, err := strconv.ParseInt(nowStr, 10, 64)
		if err != nil {
			return wrap(err)
		}
		pairs, err := a[1].AsStrSlice()
		if err != nil || len(pairs)%2 != 0 {
			return wrap(fmt.Errorf("reading set %q: unexpected reply", keys[i]))
		}
		rec := store.Record{Key: strings.TrimPrefix(keys[i], prefix), Set: true}
		for j := 0; j < len(pairs); j += 2 {
			m := store.Member{Name: pairs[j]}
			if score := pairs[j+1]; score != "inf" {
				exp, err := strconv.ParseFloat(score, 64)
				if err != nil {
					return wrap(fmt.Errorf("reading set %q: score %q", keys[i], score))
				}
				if m.TTL = left(int64(exp)-now, sent); m.TTL <= 0 {
					continue
				}
			}
			rec.Members = append(rec.Members, m)
		}
		if len(rec.Members) == 0 {
			continue
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return nil
}

// left is what remains of ms milliseconds read from a reply to a request
// sent at sent: the time since is taken off, so a lifetime handed on
// later is never longer than the record's.
func left(ms int64, sent time.Time) time.Duration {
	return time.Duration(ms)*time.Millisecond - time.Since(sent)
}

// globEscape escapes the characters SCAN's MATCH treats as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Interface guard
var _ store.Exporter = (*Store)(nil)
