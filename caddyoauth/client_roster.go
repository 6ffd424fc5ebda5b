package caddyoauth

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/clients"
)

// A client removed from the config must not hand what its users granted
// it to whoever takes its client_id next. The store keeps the static
// clients of the last config started, with when each appeared
// (clients.Roster, as roster:users does for users): a client_id the last
// config did not name starts afresh, its earlier tokens and consents
// refused (authz.Client.Since), and a removed one is retired like a
// deleted dynamic client, so the admin API never registers it again.

// provisionClientRoster dates the static clients against the stored
// roster and notes the ones removed, which Start retires.
func (a *App) provisionClientRoster(static authz.StaticClients) error {
	ctx, cancel := context.WithTimeout(context.Background(), rosterTimeout)
	defer cancel()
	prev, err := a.registry.LoadRoster(ctx)
	if err != nil {
		return fmt.Errorf("oauth: %v", err)
	}
	now := time.Now().UnixNano()
	a.clientRoster = make(clients.Roster, len(static))
	for id, c := range static {
		since, known := prev[id]
		if !known {
			// Without a roster (a new store, or one of a version that
			// kept none) a client is new only if its ID was retired.
			retired, err := a.registry.Retired(ctx, id)
			if err != nil {
				return fmt.Errorf("oauth: reading the clients' tombstones: %v", err)
			}
			if prev != nil || retired {
				since = now
			}
		}
		a.clientRoster[id] = since
		if since > 0 {
			c.Since = time.Unix(0, since)
		}
	}
	a.removedClients = nil
	for id := range prev {
		if _, ok := static[id]; !ok {
			a.removedClients = append(a.removedClients, id)
		}
	}
	slices.Sort(a.removedClients)
	return nil
}

// retireRemovedClients retires the static clients the config no longer
// names and saves its roster, only after all are retired, so a start that
// fails in between retires them again.
func (a *App) retireRemovedClients() error {
	ctx, cancel := context.WithTimeout(context.Background(), rosterTimeout)
	defer cancel()
	for _, id := range a.removedClients {
		if err := a.registry.Retire(ctx, id); err != nil {
			return err
		}
		a.logger.Info("client removed from the config: its tokens and consents end, and its client_id cannot be registered again",
			zap.String("client_id", id))
	}
	return a.registry.SaveRoster(ctx, a.clientRoster)
}
