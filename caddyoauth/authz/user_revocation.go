package authz

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// A user's revocation ends more than the tokens their sets index: a
// sign-in session at the authorization server would otherwise approve new
// codes without a password, and a code issued just before would still be
// exchanged. RevokeUser leaves a mark with its time; a session or code of
// that user issued at or before the mark is refused.
const prefixUserRevoked = "userrev:"

func userRevokedKey(userID string) string { return prefixUserRevoked + userID }

// markLife is how long a revocation mark must stay: the longest life of
// anything it refuses (a session or a code), and a minute of clock skew
// between instances on top.
func (s *Service) markLife() time.Duration {
	return max(s.cfg.SessionTTL, s.cfg.CodeTTL) + time.Minute
}

func (s *Service) markUserRevoked(ctx context.Context, userID string, at time.Time) error {
	return s.store.Put(ctx, userRevokedKey(userID), strconv.AppendInt(nil, at.UnixNano(), 10), s.markLife())
}

// revokedSince reports whether userID was revoked at or after issuedAt
// (unix nanoseconds). An unreadable mark counts as a revocation.
func (s *Service) revokedSince(ctx context.Context, userID string, issuedAt int64) (bool, error) {
	if userID == "" {
		return false, nil
	}
	b, err := s.store.Get(ctx, userRevokedKey(userID))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	at, err := strconv.ParseInt(string(b), 10, 64)
	return err != nil || at >= issuedAt, nil
}

// userRosterKey holds the IDs of the users the config named when the
// gateway last started, so the next start can tell which were removed.
const userRosterKey = "roster:users"

// RemovedUsers returns the users of the stored roster that are not in
// current, for the caller to revoke before it calls SaveUserRoster: a
// start that fails in between finds them removed again. Without a stored
// roster (a new store) none are removed.
func (s *Service) RemovedUsers(ctx context.Context, current []string) ([]string, error) {
	b, err := s.store.Get(ctx, userRosterKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	keep := make(map[string]bool, len(current))
	for _, id := range current {
		keep[id] = true
	}
	var removed []string
	for _, id := range strings.Split(string(b), "\n") {
		if id != "" && !keep[id] {
			removed = append(removed, id)
		}
	}
	return removed, nil
}

// SaveUserRoster stores current as the configured users. User IDs hold no
// newline (the config refuses one), so they are stored one per line.
func (s *Service) SaveUserRoster(ctx context.Context, current []string) error {
	return s.store.Put(ctx, userRosterKey, []byte(strings.Join(current, "\n")), 0)
}
