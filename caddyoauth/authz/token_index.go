package authz

import (
	"context"
	"errors"
	"strings"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// A grant's tokens are indexed in one set (tokenIndex: its user's), and
// only the tokens nothing else reaches. A refresh token is always a
// member; its access token is reached through the refresh record's Pair
// whenever that record lives at least as long as the access token, and is
// then left out of the set: a grant costs one member instead of two. An
// access token without a refresh token, or whose refresh token expires
// first, is a member itself.
//
// So every reader of the set follows Pair (matchingTokens), and whatever
// changes a refresh record's Pair writes the new access token before the
// record names it and deletes the one it replaces before the record stops
// naming it (reissueAccess): an access token a client holds is reachable
// from its set until it is deleted or expires.

// indexesAccess reports whether the access token at must be a member of its
// grant's set itself: when it has no refresh record rt, or rt
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

// tokenIndex is the set that indexes a grant's tokens: its user's set. A
// family needs no set of its own, since revoking it lists the user's set
// and keeps the tokens of that family (revokeMatching); only a family
// without a user (a refresh token issued to a client for itself) is
// indexed by a family set. One set per grant fewer is one store item per
// grant fewer, which is a fifth of what a grant weighs in the file store.
func tokenIndex(userID, family string) string {
	switch {
	case userID != "":
		return userSet(userID)
	case family != "":
		return familySet(family)
	}
	return ""
}

// markFamilyRevoked writes the mark that withdrawIfRevoked checks.
func (s *Service) markFamilyRevoked(ctx context.Context, family string) error {
	return s.store.Put(ctx, familyRevokedKey(family), []byte{1}, s.usedCodeTTL())
}

// matchingTokens lists the members of set whose record match accepts (a
// nil match accepts all, undecodable records included), each with the
// access token its refresh record reaches, and the families of those
// records. A member that is gone (expired, revoked, replaced) is skipped.
func (s *Service) matchingTokens(ctx context.Context, set string, match func(*record) bool) (keys, members, families []string, err error) {
	all, err := s.store.Members(ctx, set)
	if err != nil {
		return nil, nil, nil, err
	}
	seen := make(map[string]bool, 2*len(all))
	seenFam := map[string]bool{}
	add := func(k string) {
		if k != "" && !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for _, m := range all {
		b, err := s.store.Get(ctx, m)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, nil, nil, err
		}
		r, err := decodeRecord(b)
		if err != nil {
			if match == nil { // one bad record must not block a revocation
				add(m)
				members = append(members, m)
			}
			continue
		}
		if match != nil && !match(r) {
			continue
		}
		add(m)
		members = append(members, m)
		if isRefreshKey(m) {
			add(r.Pair)
		}
		if r.Family != "" && !seenFam[r.Family] {
			seenFam[r.Family] = true
			families = append(families, r.Family)
		}
	}
	return keys, members, families, nil
}

// revokeMatching deletes the tokens indexed in set that match accepts and
// marks their families revoked; it returns how many tokens it deleted and
// the members of set it ended, for the caller to drop from the set (or to
// drop the whole set). The families given are marked before the
// set is listed; families found in the listing are marked and the set is
// listed again. A grant adds its tokens to the set before it checks its
// family's mark (withdrawIfRevoked), so either the grant sees the mark or
// one of the listings sees its tokens: no token outlives its family's
// revocation, however the two race.
func (s *Service) revokeMatching(ctx context.Context, set string, match func(*record) bool, families ...string) (int, []string, error) {
	marked := map[string]bool{}
	mark := func(fams []string) (bool, error) {
		fresh := false
		for _, f := range fams {
			if marked[f] {
				continue
			}
			if err := s.markFamilyRevoked(ctx, f); err != nil {
				return false, err
			}
			marked[f], fresh = true, true
		}
		return fresh, nil
	}
	if _, err := mark(families); err != nil {
		return 0, nil, err
	}
	keys, members, found, err := s.matchingTokens(ctx, set, match)
	if err != nil {
		return 0, nil, err
	}
	if fresh, err := mark(found); err != nil {
		return 0, nil, err
	} else if fresh {
		again, more, _, err := s.matchingTokens(ctx, set, match)
		if err != nil {
			return 0, nil, err
		}
		keys = union(keys, again)
		members = union(members, more)
	}
	if err := s.store.Delete(ctx, keys...); err != nil {
		return 0, nil, err
	}
	return len(keys), members, nil
}

// removeMembers drops members from set.
func (s *Service) removeMembers(ctx context.Context, set string, members []string) error {
	for _, m := range members {
		if err := s.store.RemoveMember(ctx, set, m); err != nil {
			return err
		}
	}
	return nil
}

// union returns a with the elements of b it lacks appended.
func union(a, b []string) []string {
	have := make(map[string]bool, len(a))
	for _, k := range a {
		have[k] = true
	}
	for _, k := range b {
		if !have[k] {
			a = append(a, k)
		}
	}
	return a
}

// revokeFamily is RevokeFamily without the log line: it returns how many
// tokens it deleted.
func (s *Service) revokeFamily(ctx context.Context, userID, family string) (int, error) {
	set := tokenIndex(userID, family)
	n, ended, err := s.revokeMatching(ctx, set, func(r *record) bool { return r.Family == family }, family)
	if err != nil {
		return 0, err
	}
	if err := s.removeMembers(ctx, set, ended); err != nil {
		return 0, err
	}
	if set != familySet(family) {
		// A family set written before families were indexed by their
		// user's set: gone with the family.
		return n, s.store.DeleteSet(ctx, familySet(family))
	}
	return n, nil
}
