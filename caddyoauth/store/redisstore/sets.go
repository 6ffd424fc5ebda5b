package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/rueidis"
)

// A set is a Redis sorted set whose scores are the members' expiry times in
// Unix milliseconds (+inf: until deleted), read from the server's clock.
// Members reads only the members still alive, and every AddMember drops the
// dead ones and sets the key's expiry to its longest-lived member's. So a
// set that keeps growing, such as the tokens of a user who signs in every
// day, holds no dead members and never outlives its last live one.

// setNow is the Lua prelude that reads the server's time in milliseconds.
// The scripts are replicated by effects (the default since Redis 5), so
// reading TIME in them is allowed.
const setNow = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// addScript adds a member, never shortening its expiry, prunes the dead
// ones and sets the key's expiry. ARGV: member, ttl in ms (0: until
// deleted). Scores are formatted with %.0f: Lua's default number format
// would round them.
var addScript = newScript(setNow + `
local ttl = tonumber(ARGV[2])
local score = '+inf'
if ttl > 0 then
	score = string.format('%.0f', now + ttl)
	local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
	if cur and (cur == 'inf' or tonumber(cur) > now + ttl) then
		score = cur
	end
end
redis.call('ZADD', KEYS[1], score, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] == 'inf' then
	redis.call('PERSIST', KEYS[1])
else
	redis.call('PEXPIRE', KEYS[1], string.format('%.0f', math.max(1, tonumber(top[2]) - now)))
end
return 0
`)

// membersScript lists the members that have not expired.
var membersScript = rueidis.NewLuaScript(setNow + `
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%.0f', now), '+inf')
`)

// AddMember implements store.Store. The member lives ttl from now (0:
// until removed), and the set as long as its longest-lived member.
func (s *Store) AddMember(ctx context.Context, set, member string, ttl time.Duration) error {
	ctx, cancel := s.boundWrite(ctx)
	defer cancel()
	r, ackErr := s.run(ctx, addScript, s.set(set), member, fmt.Sprint(millis(max(ttl, 0))))
	if err := r.Error(); err != nil {
		return wrap(err)
	}
	return ackErr
}

// RemoveMember implements store.Store.
func (s *Store) RemoveMember(ctx context.Context, set, member string) error {
	ctx, cancel := s.boundWrite(ctx)
	defer cancel()
	r, ackErr := s.do(ctx, s.c.B().Zrem().Key(s.set(set)).Member(member).Build())
	if err := r.Error(); err != nil {
		return wrap(err)
	}
	return ackErr
}

// Members implements store.Store: only the members still alive.
func (s *Store) Members(ctx context.Context, set string) ([]string, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	m, err := membersScript.Exec(ctx, s.c, []string{s.set(set)}, nil).AsStrSlice()
	return m, wrap(err)
}

// DeleteSet implements store.Store.
func (s *Store) DeleteSet(ctx context.Context, set string) error {
	ctx, cancel := s.boundWrite(ctx)
	defer cancel()
	r, ackErr := s.do(ctx, s.c.B().Del().Key(s.set(set)).Build())
	if err := r.Error(); err != nil {
		return wrap(err)
	}
	return ackErr
}
