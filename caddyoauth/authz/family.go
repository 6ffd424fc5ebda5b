package authz

import (
	"context"
	"errors"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// A revoked family leaves a tombstone at revokedFamilyKey for
// familyTombstoneTTL. RevokeFamily deletes the members its family set holds
// when it reads it, but a refresh or code exchange of the same family may be
// saving new tokens at that very moment, on this instance or another one
// sharing the store: a refresh racing its own reuse, or a code redeemed
// while its replay revokes it. Such a save adds its keys to the family set
// first and checks for the tombstone afterwards; the revocation writes the
// tombstone first, then reads the set and removes only the members it read.
// On a linearizable store one of the two always sees the other, so no token
// of a revoked family survives (RFC 9700 §4.14.2 requires the active
// refresh token revoked).
const (
	prefixRevokedFamily = "revfam:"
	// familyTombstoneTTL only has to outlast a save already under way,
	// whose store calls are bounded (the Redis store gives up after 5 s).
	familyTombstoneTTL = time.Minute
)

func revokedFamilyKey(family string) string { return prefixRevokedFamily + family }

// markFamilyRevoked writes the tombstone of family.
func (s *Service) markFamilyRevoked(ctx context.Context, family string) error {
	return s.store.Put(ctx, revokedFamilyKey(family), []byte("1"), familyTombstoneTTL)
}

// checkFamilyAlive runs after new tokens of family joined its set, and
// revokes them when the family was revoked meanwhile. The request that
// saved them still succeeds: it is answered as if the revocation had come
// just after it, so of a refresh racing its own reuse exactly one rotates
// and gets tokens, which the reuse then revokes with the rest.
func (s *Service) checkFamilyAlive(ctx context.Context, family string) error {
	if family == "" {
		return nil
	}
	_, err := s.store.Get(ctx, revokedFamilyKey(family))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	return s.RevokeFamily(ctx, family)
}
