package caddyoauth

import (
	"context"
	"slices"
	"time"

	"go.uber.org/zap"
)

// rosterTimeout bounds the revocation of removed users at start-up.
const rosterTimeout = 30 * time.Second

// configuredUserIDs returns the sorted IDs of the users the config names
// (users and users_file).
func (a *App) configuredUserIDs() []string {
	ids := make([]string, 0, len(a.staticUsers))
	for _, u := range a.staticUsers {
		ids = append(ids, u.UserID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// revokeRemovedUsers ends everything a user holds once the config no
// longer names them: removing a user from users or users_file is how an
// operator takes their access away, and their tokens and sign-in sessions
// would otherwise live on. The users of the last start are kept in the
// store, so a removal made while the gateway was down counts as well as
// one made by a reload. The roster is saved only after every removed user
// is revoked, so a start that fails in between revokes them again.
func (a *App) revokeRemovedUsers() error {
	ctx, cancel := context.WithTimeout(context.Background(), rosterTimeout)
	defer cancel()
	current := a.configuredUserIDs()
	removed, err := a.service.RemovedUsers(ctx, current)
	if err != nil {
		return err
	}
	for _, id := range removed {
		if err := a.revokeUser(ctx, id); err != nil {
			return err
		}
		a.logger.Info("user removed from the config: tokens, sessions and consents revoked", zap.String("user_id", id))
	}
	return a.service.SaveUserRoster(ctx, current)
}

// revokeUser ends a user's tokens, sessions and codes, and forgets the
// consents they gave, so a returning user is asked again.
func (a *App) revokeUser(ctx context.Context, userID string) error {
	if err := a.service.RevokeUser(ctx, userID); err != nil {
		return err
	}
	ids := a.registry.StaticIDs()
	dyn, err := a.registry.List(ctx)
	if err != nil {
		return err
	}
	for _, c := range dyn {
		ids = append(ids, c.ID)
	}
	return a.service.RevokeConsents(ctx, userID, ids)
}
