package authz

import (
	"context"
	"errors"
	"strings"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// The family and user sets index only the tokens nothing else reaches. A
// refresh token is always a member; its access token is reached through
// the refresh record's Pair whenever that record lives at least as long as
// the access token, and is then left out of the sets: a grant costs two
// members per set fewer, which is most of what a token weighs in the file
// store. An access token without a refresh token, or whose refresh token
// expires first, is a member itself.
//
// So every reader of the sets follows Pair (pairedTokens), and whatever
// changes a refresh record's Pair writes the new access token before the
// record names it and deletes the one it replaces before the record stops
// naming it (reissueAccess): an access token a client holds is reachable
// from the sets until it is deleted or expires.

// indexesAccess reports whether the access token at must be a member of its
// family and user sets itself: when it has no refresh record rt, or rt
// expires before it.
func indexesAccess(at, rt *record) bool {
	if rt == nil {
		return true
	}
	if rt.ExpiresAt == 0 {
		return false
	}
	return at.ExpiresAt == 0 || at.ExpiresAt > rt.ExpiresAt
}

// isRefreshKey reports whether key is a refresh token's.
func isRefreshKey(key string) bool { return strings.HasPrefix(key, prefixRefresh) }

// withPair returns key and, for a refresh token, the access token its
// record r reaches: the keys that die together.
func withPair(key string, r *record) []string {
	if isRefreshKey(key) && r.Pair != "" {
		return []string{key, r.Pair}
	}
	return []string{key}
}

// pairedTokens returns the keys that members, the members of a family or
// user set, reach: the members themselves and the access token every
// refresh record among them names as its Pair, without duplicates. It also
// returns the families of those refresh records. A member or a Pair that is
// gone (expired, revoked, replaced) is no error: deleting it again is
// harmless. A refresh record that does not decode is kept as a key to
// delete, without its Pair, so one bad record cannot block a revocation.
func (s *Service) pairedTokens(ctx context.Context, members []string) (keys, families []string, err error) {
	seen := make(map[string]bool, 2*len(members))
	seenFam := map[string]bool{}
	add := func(k string) {
		if k != "" && !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for _, m := range members {
		add(m)
		if !isRefreshKey(m) {
			continue
		}
		b, err := s.store.Get(ctx, m)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, nil, err
		}
		r, err := decodeRecord(b)
		if err != nil {
			continue
		}
		add(r.Pair)
		if r.Family != "" && !seenFam[r.Family] {
			seenFam[r.Family] = true
			families = append(families, r.Family)
		}
	}
	return keys, families, nil
}

// revokeFamily is RevokeFamily without the log line: it returns how many
// tokens it deleted.
func (s *Service) revokeFamily(ctx context.Context, family string) (int, error) {
	// The mark comes before the listing: a grant adds its members (or
	// names its access token in a refresh record) before it checks the
	// mark, so one of the two always sees the other (withdrawIfRevoked).
	if err := s.store.Put(ctx, familyRevokedKey(family), []byte{1}, s.usedCodeTTL()); err != nil {
		return 0, err
	}
	members, err := s.store.Members(ctx, familySet(family))
	if err != nil {
		return 0, err
	}
	keys, _, err := s.pairedTokens(ctx, members)
	if err != nil {
		return 0, err
	}
	if err := s.store.Delete(ctx, keys...); err != nil {
		return 0, err
	}
	return len(keys), s.store.DeleteSet(ctx, familySet(family))
}
