package authz

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// UserGrant summarises the live tokens one client holds for a user: what
// the "authorized apps" page lists.
type UserGrant struct {
	ClientID string
	Scope    string    // the widest scope among the tokens
	IssuedAt time.Time // the most recent token
}

// UserGrants lists the clients holding live tokens of a user, sorted by
// client_id. It reads the user's token index, so its cost grows with the
// user's token count, not the store's size.
func (s *Service) UserGrants(ctx context.Context, userID string) ([]UserGrant, error) {
	if userID == "" {
		return nil, nil
	}
	// The user's tokens: the members and the access tokens their refresh
	// records reach (token_index.go).
	keys, _, _, err := s.matchingTokens(ctx, userSet(userID), nil)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	by := map[string]*UserGrant{}
	for _, k := range keys {
		r, err := s.load(ctx, k)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		if r.UserID != userID || r.expired(now) {
			continue
		}
		g := by[r.ClientID]
		if g == nil {
			g = &UserGrant{ClientID: r.ClientID}
			by[r.ClientID] = g
		}
		if iat := time.Unix(0, r.IssuedAt); iat.After(g.IssuedAt) {
			g.IssuedAt = iat
		}
		if len(r.Scope) > len(g.Scope) {
			g.Scope = r.Scope
		}
	}
	out := make([]UserGrant, 0, len(by))
	for _, g := range by {
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClientID < out[j].ClientID })
	return out, nil
}

// consentSet names the set of the client_ids a user consented to; the
// consent records themselves are under consentKey.
func consentSet(userID string) string { return "consents:" + userID }

// UserConsents lists the clients a user consented to, sorted.
func (s *Service) UserConsents(ctx context.Context, userID string) ([]string, error) {
	ids, err := s.store.Members(ctx, consentSet(userID))
	sort.Strings(ids)
	return ids, err
}

// UserConsent returns the scope a user approved for a client and when;
// an empty scope and a zero time when there is no consent.
func (s *Service) UserConsent(ctx context.Context, userID, clientID string) (string, time.Time, error) {
	b, err := s.store.Get(ctx, consentKey(userID, clientID))
	if errors.Is(err, store.ErrNotFound) {
		return "", time.Time{}, nil
	} else if err != nil {
		return "", time.Time{}, err
	}
	var rec consentRecord
	if json.Unmarshal(b, &rec) != nil || rec.At == 0 {
		return rec.Scope, time.Time{}, nil
	}
	return rec.Scope, time.Unix(rec.At, 0), nil
}

// RevokeConsents forgets every consent of a user: those indexed, and
// those of the given clients, which covers consents recorded before the
// index existed.
func (s *Service) RevokeConsents(ctx context.Context, userID string, clientIDs []string) error {
	ids, err := s.store.Members(ctx, consentSet(userID))
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(ids)+len(clientIDs))
	for _, id := range append(ids, clientIDs...) {
		keys = append(keys, consentKey(userID, id))
	}
	if err := s.store.Delete(ctx, keys...); err != nil {
		return err
	}
	return s.store.DeleteSet(ctx, consentSet(userID))
}

// RevokeUserClient ends every token a client holds for a user, together
// with the families they belong to, and the user's consent to it; the
// user's other clients are left alone.
func (s *Service) RevokeUserClient(ctx context.Context, userID, clientID string) error {
	if err := s.store.Delete(ctx, consentKey(userID, clientID)); err != nil {
		return err
	}
	if err := s.store.RemoveMember(ctx, consentSet(userID), clientID); err != nil {
		return err
	}
	_, ended, err := s.revokeMatching(ctx, userSet(userID), func(r *record) bool { return r.ClientID == clientID })
	if err != nil {
		return err
	}
	return s.removeMembers(ctx, userSet(userID), ended)
}
