package authz

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

var errBadRefresh = errInvalidGrant("the refresh token is invalid, expired, revoked, or was issued to another client")

// refresh runs the refresh_token grant (RFC 6749 §6). The refresh token is
// bound to its client: another client presenting it, even with valid
// credentials of its own, gets invalid_grant, and so does a client that no
// longer has the grant type the family came from. The new access token's
// scope may narrow, never widen, and never holds a scope the client has
// lost. Its resources (RFC 8707) likewise narrow to those requested, never
// beyond the grant's. With rotation on, each use returns a new refresh
// token, and a rotated one presented again revokes the whole family
// (RFC 9700 §4.14.2) unless it comes within the grace period and no token
// rotated from it has been used yet: only then can it be a retry of a lost
// response, or a second worker of the same client refreshing at once.
func (s *Service) refresh(ctx context.Context, c *Client, token, scope string, resources []string) (*tokenResponse, error) {
	if token == "" {
		return nil, errInvalidRequest("refresh_token is missing")
	}
	key := refreshKey(token)
	// Each lost compare-and-swap means another refresh of this token
	// succeeded, so a few rounds cover any realistic number of concurrent
	// refreshes of one token.
	for attempt := 0; attempt < 10; attempt++ {
		raw, err := s.store.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errBadRefresh
		} else if err != nil {
			return nil, err
		}
		rt, err := decodeRecord(raw)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		if rt.expired(now) || rt.ClientID != c.ID || c.predates(rt.IssuedAt) || !c.stillGrants(rt) {
			return nil, errBadRefresh
		}
		if err := checkRefreshBinding(ctx, rt); err != nil {
			return nil, err
		}
		// The scopes the client has lost since are gone from the grant.
		newScope := c.allowedScope(rt.Scope)
		if scope != "" {
			req, ok := ParseScope(scope)
			have, _ := ParseScope(newScope)
			if !ok || !subset(req, have) {
				return nil, errInvalidScope("a refresh may narrow the scope, never widen it")
			}
			newScope = JoinScope(req)
		}
		aud, ok := narrowResources(rt.Resource, resources)
		if !ok {
			return nil, errInvalidTarget("a refresh may narrow the resources, never widen them")
		}
		if !s.cfg.RefreshRotation {
			resp, err := s.reissueAccess(ctx, c, token, key, raw, rt, newScope, aud, now)
			if errors.Is(err, store.ErrConflict) {
				continue // refreshed concurrently: the token stays valid, so read it again
			}
			return resp, err
		}
		if rt.RotatedAt != 0 {
			// A successor that was used proves its response arrived, so
			// this is no retry, however soon it comes.
			if rt.SuccessorUsed || now.Sub(time.Unix(0, rt.RotatedAt)) > s.cfg.RefreshGrace {
				if err := s.RevokeFamily(ctx, rt.UserID, rt.Family); err != nil {
					return nil, err
				}
				s.log.Warn("rotated refresh token reused: its family is revoked",
					zap.String("client_id", c.ID), zap.String("user_id", rt.UserID),
					zap.Bool("successor_used", rt.SuccessorUsed))
				return nil, errBadRefresh
			}
			// A retry within the grace period (a lost response, two workers
			// of one integration): answer with fresh tokens of the family.
			return s.rotate(ctx, c, key, rt, newScope, aud, now)
		}
		// Presenting this token proves its parent's response arrived. The
		// parent's grace ends first, so once this token is marked rotated
		// the parent's is over, even when a step below fails.
		if err := s.markSuccessorUsed(ctx, rt.Parent); err != nil {
			return nil, err
		}
		marked := *rt
		marked.RotatedAt = now.UnixNano()
		err = s.store.Swap(ctx, key, raw, marked.encode(), rt.ttl(now))
		if errors.Is(err, store.ErrConflict) {
			continue // rotated concurrently: read again and judge it as a reuse or a retry
		} else if errors.Is(err, store.ErrNotFound) {
			return nil, errBadRefresh
		} else if err != nil {
			return nil, err
		}
		if rt.Pair != "" {
			if err := s.store.Delete(ctx, rt.Pair); err != nil {
				return nil, err
			}
		}
		return s.rotate(ctx, c, key, rt, newScope, aud, now)
	}
	return nil, ErrUnavailable
}

// markSuccessorUsed notes in the rotated refresh token under key that a
// token rotated from it has been used, which ends its grace period. A
// record that is gone (expired, revoked) or unreadable needs no note: it
// is never accepted again anyway.
func (s *Service) markSuccessorUsed(ctx context.Context, key string) error {
	if key == "" {
		return nil
	}
	for attempt := 0; attempt < 10; attempt++ {
		raw, err := s.store.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		r, err := decodeRecord(raw)
		if err != nil || r.SuccessorUsed {
			return nil
		}
		r.SuccessorUsed = true
		err = s.store.Swap(ctx, key, raw, r.encode(), r.ttl(time.Now()))
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return ErrUnavailable
}

// rotate issues a new access and refresh token in the family of rt, the
// refresh token under key. The new refresh token keeps rt's scope
// (RFC 6749 §6) and resources and names key as its parent; the access
// token gets scope and is for aud.
func (s *Service) rotate(ctx context.Context, c *Client, key string, rt *record, scope, aud string, now time.Time) (*tokenResponse, error) {
	access, err := s.newAccessToken(ctx, c.ID, rt.UserID, scope, aud, now, s.cfg.AccessTokenTTL)
	if err != nil {
		return nil, err
	}
	refresh := randomToken()
	at := &record{ClientID: c.ID, UserID: rt.UserID, Scope: scope, Family: rt.Family, Grant: rt.Grant, Resource: aud,
		IssuedAt: now.UnixNano(), ExpiresAt: expiresAt(now, s.cfg.AccessTokenTTL)}
	next := &record{ClientID: c.ID, UserID: rt.UserID, Scope: rt.Scope, Family: rt.Family, Parent: key, Grant: rt.Grant,
		Resource: rt.Resource, IssuedAt: now.UnixNano(), ExpiresAt: expiresAt(now, s.cfg.RefreshTokenTTL)}
	// The new refresh token keeps the binding of the one it replaces.
	at.Cnf, next.Cnf = accessCnf(ctx), rt.Cnf
	if err := s.saveTokens(ctx, access, at, refresh, next); err != nil {
		return nil, err
	}
	return &tokenResponse{AccessToken: access, TokenType: "Bearer", ExpiresIn: int64(s.cfg.AccessTokenTTL / time.Second),
		RefreshToken: refresh, Scope: scope, userID: rt.UserID, family: rt.Family}, nil
}

// reissueAccess is the refresh without rotation: the refresh token stays,
// its previous access token is replaced by a new one.
func (s *Service) reissueAccess(ctx context.Context, c *Client, token, key string, raw []byte, rt *record, scope, aud string, now time.Time) (*tokenResponse, error) {
	access, err := s.newAccessToken(ctx, c.ID, rt.UserID, scope, aud, now, s.cfg.AccessTokenTTL)
	if err != nil {
		return nil, err
	}
	ak := accessKey(access)
	at := &record{ClientID: c.ID, UserID: rt.UserID, Scope: scope, Family: rt.Family, Pair: key, Grant: rt.Grant,
		Resource: aud, IssuedAt: now.UnixNano(), ExpiresAt: expiresAt(now, s.cfg.AccessTokenTTL), Cnf: accessCnf(ctx)}
	at.noteJWT(access)
	// The new access token is written before the refresh record names it,
	// and the one it replaces is deleted before the record stops naming
	// it: revocation reaches an access token through its refresh record
	// (token_index.go), so neither may live unnamed. A failure below
	// leaves at worst a token no client was given.
	if err := s.store.Put(ctx, ak, at.encode(), at.ttl(now)); err != nil {
		return nil, err
	}
	if rt.Pair != "" {
		if err := s.store.Delete(ctx, rt.Pair); err != nil {
			return nil, err
		}
	}
	updated := *rt
	updated.Pair = ak
	if err := s.store.Swap(ctx, key, raw, updated.encode(), rt.ttl(now)); err != nil {
		_ = s.store.Delete(ctx, ak) // never handed out
		if errors.Is(err, store.ErrNotFound) {
			return nil, errBadRefresh
		}
		return nil, err // ErrConflict included: the caller reads again
	}
	// Late in the refresh token's life the new access token outlives it,
	// and so must be indexed itself.
	if set := tokenIndex(rt.UserID, rt.Family); set != "" && indexesAccess(at, rt) {
		if err := s.store.AddMember(ctx, set, ak, maxTTL(at.ttl(now), rt.ttl(now))); err != nil {
			return nil, err
		}
	}
	if err := s.withdrawIfRevoked(ctx, rt.Family, ak); err != nil {
		return nil, err
	}
	if err := s.withdrawIfUserRevoked(ctx, rt.UserID, at.IssuedAt, ak); err != nil {
		return nil, err
	}
	return &tokenResponse{AccessToken: access, TokenType: "Bearer", ExpiresIn: int64(s.cfg.AccessTokenTTL / time.Second),
		RefreshToken: token, Scope: scope, userID: rt.UserID, family: rt.Family}, nil
}
