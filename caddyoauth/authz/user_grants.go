package authz

import (
	"context"
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
	keys, err := s.store.Members(ctx, userSet(userID))
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

// RevokeUserClient ends every token a client holds for a user, together
// with the families they belong to, and leaves the user's other clients
// alone.
func (s *Service) RevokeUserClient(ctx context.Context, userID, clientID string) error {
	keys, err := s.store.Members(ctx, userSet(userID))
	if err != nil {
		return err
	}
	for _, k := range keys {
		r, err := s.load(ctx, k)
		if errors.Is(err, store.ErrNotFound) {
			_ = s.store.RemoveMember(ctx, userSet(userID), k)
			continue
		} else if err != nil {
			return err
		}
		if r.ClientID != clientID {
			continue
		}
		if err := s.RevokeFamily(ctx, r.Family); err != nil {
			return err
		}
		if err := s.store.Delete(ctx, k); err != nil {
			return err
		}
		if err := s.store.RemoveMember(ctx, userSet(userID), k); err != nil {
			return err
		}
	}
	return nil
}

// Users returns the service's authenticator of people, or nil.
func (s *Service) Users() Authenticator { return s.users }
