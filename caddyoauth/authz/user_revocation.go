package authz

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// A user's revocation ends more than the tokens their sets index: a
// sign-in session at the authorization server would otherwise approve new
// codes without a password, and a code issued just before would still be
// exchanged. RevokeUser leaves a mark with its time; a session or code of
// that user issued at or before the mark is refused.
//
// The mark also covers tokens issued while the revocation runs: its value
// is "<began>" until the user's tokens are listed and deleted, then
// "<began>:<ended>" (unix nanoseconds). A grant writes its tokens before
// it reads the mark, and the revocation writes the mark before it lists
// the tokens, so one of the two sees the other: a grant that finds the
// revocation running, or finished after the grant began, withdraws what
// it wrote (withdrawIfUserRevoked), as withdrawIfRevoked does for a family.
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

// markUserRevocationDone adds the end to the mark the revocation that
// began at began wrote, unless a later revocation has marked the user
// again: that one ends it.
func (s *Service) markUserRevocationDone(ctx context.Context, userID string, began time.Time) error {
	prev := strconv.AppendInt(nil, began.UnixNano(), 10)
	next := strconv.AppendInt(append(append([]byte(nil), prev...), ':'), time.Now().UnixNano(), 10)
	err := s.store.Swap(ctx, userRevokedKey(userID), prev, next, s.markLife())
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// parseUserMark reads a mark: ended is 0 while the revocation runs.
func parseUserMark(b []byte) (began, ended int64, ok bool) {
	bs, es, done := strings.Cut(string(b), ":")
	began, err := strconv.ParseInt(bs, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	if done {
		if ended, err = strconv.ParseInt(es, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return began, ended, true
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
	began, _, ok := parseUserMark(b)
	return !ok || began >= issuedAt, nil
}

// withdrawIfUserRevoked deletes keys, just written for userID's tokens
// issued at issuedAt, when a revocation of the user was running or ended
// after issuedAt: it may have listed the user's tokens before they were
// written. An unreadable mark counts as a running revocation.
func (s *Service) withdrawIfUserRevoked(ctx context.Context, userID string, issuedAt int64, keys ...string) error {
	if userID == "" {
		return nil
	}
	b, err := s.store.Get(ctx, userRevokedKey(userID))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if _, ended, ok := parseUserMark(b); ok && ended != 0 && issuedAt > ended {
		return nil // issued after the revocation was over
	}
	s.log.Warn("tokens issued to a user revoked meanwhile are withdrawn", zap.String("user_id", userID))
	return s.store.Delete(ctx, keys...)
}

// A client whose client_credentials tokens act as a user (Client.UserID:
// a static client's user, a dynamic client's owner) is a standing way to
// get that user's tokens. A revocation of the user therefore suspends it:
// the client's identity, user and secret are kept as a fingerprint under
// "ccoff:<client_id>", and client_credentials is refused while the client
// still matches it. Giving the client a new secret or another user is the
// operator's word that it may act again; a user who returns (signs in
// again, is added back to the config) does not lift it.
const prefixClientSuspended = "ccoff:"

// ActingClientLister is implemented by a ClientSource that can list the
// clients acting as a user, so RevokeUser can suspend them.
type ActingClientLister interface {
	ClientsActingAs(ctx context.Context, userID string) ([]*Client, error)
}

// ClientsActingAs implements ActingClientLister.
func (s StaticClients) ClientsActingAs(_ context.Context, userID string) ([]*Client, error) {
	var out []*Client
	for _, c := range s {
		if c.UserID == userID {
			out = append(out, c)
		}
	}
	return out, nil
}

// actingFingerprint identifies a client together with its user and secret.
func (c *Client) actingFingerprint() []byte {
	h := sha256.New()
	writeLenPrefixed(h, []byte(c.ID))
	writeLenPrefixed(h, []byte(c.UserID))
	if c.hasDigest {
		writeLenPrefixed(h, c.secretDigest[:])
	} else {
		writeLenPrefixed(h, c.secretBcrypt)
	}
	if c.Auth != nil {
		writeLenPrefixed(h, c.Auth.Fingerprint())
	}
	return h.Sum(nil)
}

// suspendActingClients suspends the clients acting as userID.
func (s *Service) suspendActingClients(ctx context.Context, userID string) error {
	l, ok := s.clients.(ActingClientLister)
	if !ok || userID == "" {
		return nil
	}
	acting, err := l.ClientsActingAs(ctx, userID)
	if err != nil {
		return err
	}
	for _, c := range acting {
		if err := s.store.Put(ctx, prefixClientSuspended+c.ID, c.actingFingerprint(), 0); err != nil {
			return err
		}
		s.log.Warn("client acting as a revoked user suspended until it gets a new secret or another user",
			zap.String("client_id", c.ID), zap.String("user_id", userID))
	}
	return nil
}

// errActingSuspended refuses client_credentials to a suspended client.
var errActingSuspended = errUnauthorizedClient("the user this client acts as was revoked; the client acts again once it has a new secret or another user")

// checkActing refuses client_credentials to a client acting as a user
// while a revocation of that user suspends it.
func (s *Service) checkActing(ctx context.Context, c *Client) error {
	if c.UserID == "" {
		return nil
	}
	b, err := s.store.Get(ctx, prefixClientSuspended+c.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if bytes.Equal(b, c.actingFingerprint()) {
		return errActingSuspended
	}
	return nil
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
