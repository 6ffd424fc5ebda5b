package clients

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// rosterKey holds the static clients of the config last started, so the
// next start can tell which were removed and which are new.
const rosterKey = "roster:clients"

// Roster maps each static client_id of a config to when (unix nanoseconds) it
// first appeared in a started config: since then the ID is that client's
// (authz.Client.Since). 0 stands for a client already there when the
// gateway began keeping a roster, whose earlier grants are kept.
type Roster map[string]int64

// LoadRoster returns the stored roster, or nil when none is stored yet (a
// new store, or one of a version that kept none).
func (r *Registry) LoadRoster(ctx context.Context) (Roster, error) {
	b, err := r.store.Get(ctx, rosterKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	out := Roster{}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("the stored roster of clients is unreadable: %v", err)
	}
	return out, nil
}

// SaveRoster stores the roster of the config starting.
func (r *Registry) SaveRoster(ctx context.Context, roster Roster) error {
	b, err := json.Marshal(roster)
	if err != nil {
		return err
	}
	return r.store.Put(ctx, rosterKey, b, 0)
}

// Retired reports whether id was deleted or retired.
func (r *Registry) Retired(ctx context.Context, id string) (bool, error) {
	_, err := r.store.Get(ctx, prefixGone+id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Retire leaves the tombstone of a deleted client for a static client_id
// removed from the config, so it is never registered at run time: a new
// owner of the ID would receive what was meant for the old one.
func (r *Registry) Retire(ctx context.Context, id string) error {
	return r.store.Put(ctx, prefixGone+id, []byte("1"), 0)
}
