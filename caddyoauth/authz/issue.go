package authz

import (
	"context"
	"time"
)

// IssueTokens issues tokens for client c outside the token endpoint, through
// the same records and store writes as a password grant: an access token
// and, when withRefresh is set, a refresh token in a new grant family. It
// exists so tools (the benchmark's store seeder) can fill a store with
// records identical to real ones without an HTTP round trip per token; it
// checks neither the client's grants nor its scopes.
func (s *Service) IssueTokens(ctx context.Context, c *Client, userID, scope string, withRefresh bool) (access, refresh string, err error) {
	now := time.Now()
	access, err = s.newAccessToken(ctx, c.ID, userID, scope, "", now, s.cfg.AccessTokenTTL)
	if err != nil {
		return "", "", err
	}
	at := &record{ClientID: c.ID, UserID: userID, Scope: scope,
		IssuedAt: now.UnixNano(), ExpiresAt: expiresAt(now, s.cfg.AccessTokenTTL)}
	var rt *record
	if withRefresh {
		refresh = randomToken()
		at.Family = newFamily()
		rt = &record{ClientID: c.ID, UserID: userID, Scope: scope, Family: at.Family,
			IssuedAt: now.UnixNano(), ExpiresAt: expiresAt(now, s.cfg.RefreshTokenTTL)}
	}
	if err := s.saveTokens(ctx, access, at, refresh, rt); err != nil {
		return "", "", err
	}
	return access, refresh, nil
}
