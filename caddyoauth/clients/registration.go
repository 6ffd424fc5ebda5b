package clients

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// RegistrationPolicy is what a client that registered itself (RFC 7591)
// may use. It holds at every lookup, not only at registration: a client
// keeps only the grants and scopes the policy allows now, whatever its
// record says.
type RegistrationPolicy struct {
	// Grants are the grant types such a client may register.
	Grants []string
	// Scopes are the scopes it may register; it gets all of them when its
	// registration names none.
	Scopes []string
	// Lifetime: a client issued no token for this long after its
	// registration or its last token expires; 0 keeps it until deleted.
	Lifetime time.Duration
}

// Defaults of a RegistrationPolicy.
var (
	DefaultRegistrationGrants = []string{authz.GrantAuthorizationCode, authz.GrantRefreshToken}
	// DefaultRegistrationLifetime is how long an unused registration lives.
	DefaultRegistrationLifetime = 720 * time.Hour
)

// DefaultRegistrationPolicy allows the default grants, no scope, and the
// default lifetime.
func DefaultRegistrationPolicy() RegistrationPolicy {
	return RegistrationPolicy{Grants: slices.Clone(DefaultRegistrationGrants), Lifetime: DefaultRegistrationLifetime}
}

// Check refuses a policy the gateway cannot hold to: an unknown grant,
// password (a client nobody vetted would see the users' passwords), and
// client_credentials unless registering takes an initial access token
// (tokenRequired), since anyone could otherwise mint tokens for
// themselves.
func (p *RegistrationPolicy) Check(tokenRequired bool) error {
	for _, g := range p.Grants {
		switch {
		case !slices.Contains(authz.KnownGrants, g):
			return fmt.Errorf("grants: unknown grant %q (known: %s)", g, strings.Join(authz.KnownGrants, ", "))
		case g == authz.GrantPassword:
			return fmt.Errorf("grants: password is never allowed to clients that register themselves")
		case g == authz.GrantClientCredentials && !tokenRequired:
			return fmt.Errorf("grants: client_credentials needs registration token, so that only holders of the initial access token can register such clients")
		}
	}
	for _, s := range p.Scopes {
		if _, ok := authz.ParseScope(s); !ok || strings.Contains(s, " ") {
			return fmt.Errorf("scopes: %q is not a valid scope", s)
		}
	}
	if p.Lifetime < 0 {
		return fmt.Errorf("lifetime must not be negative")
	}
	return nil
}

// SetRegistrationPolicy sets what clients that register themselves may
// use. Call it before the registry serves.
func (r *Registry) SetRegistrationPolicy(p RegistrationPolicy) {
	p.Grants, p.Scopes = slices.Clone(p.Grants), slices.Clone(p.Scopes)
	r.reg = p
}

// RegistrationPolicy returns the policy of clients that register
// themselves.
func (r *Registry) RegistrationPolicy() RegistrationPolicy { return r.reg }

// limitRegistered keeps only the grants and scopes the policy allows.
func (r *Registry) limitRegistered(ac *authz.Client) {
	ac.Grants = slices.DeleteFunc(slices.Clone(ac.Grants), func(g string) bool { return !slices.Contains(r.reg.Grants, g) })
	ac.Scopes = slices.DeleteFunc(slices.Clone(ac.Scopes), func(s string) bool { return !slices.Contains(r.reg.Scopes, s) })
}

// expired reports whether c registered itself and has gone unused for
// the policy's lifetime. The store drops such a record by itself at that
// moment (its TTL); this check covers a cache that still holds it and a
// lifetime shortened since.
func (r *Registry) expired(c *Client) bool {
	if c.RegisteredBy != ByRegistration || r.reg.Lifetime <= 0 {
		return false
	}
	return r.now().UnixNano()-usedAt(c) >= int64(r.reg.Lifetime)
}

// usedAt is when c was registered or last issued a token.
func usedAt(c *Client) int64 {
	if c.UsedAt == 0 {
		return time.Unix(c.CreatedAt, 0).UnixNano()
	}
	return c.UsedAt
}

// recordTTL is the store TTL of c's record: what is left of its lifetime
// for a client that registered itself (negative once it has expired), 0
// (none) for any other.
func (r *Registry) recordTTL(c *Client) time.Duration {
	if c.RegisteredBy != ByRegistration || r.reg.Lifetime <= 0 {
		return 0
	}
	left := time.Duration(usedAt(c) + int64(r.reg.Lifetime) - r.now().UnixNano())
	if left <= 0 {
		return -1
	}
	return left
}

// ClientUsed notes that a token was issued to the client, which keeps a
// client that registered itself from expiring. The record is rewritten
// at most once per sixteenth of the lifetime, so a busy client costs one
// store write now and then; any other client costs a cached lookup.
func (r *Registry) ClientUsed(ctx context.Context, id string) error {
	if _, static := r.static[id]; static || r.reg.Lifetime <= 0 || !ValidID(id) {
		return nil
	}
	b, err := r.store.Lookup(ctx, prefixClient+id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	c, err := decode(b)
	if err != nil || c.RegisteredBy != ByRegistration || r.now().UnixNano()-usedAt(c) < int64(r.reg.Lifetime/16) {
		return err
	}
	_, err = r.update(ctx, id, func(c *Client) error {
		c.UsedAt = r.now().UnixNano()
		return nil
	}, false)
	if errors.Is(err, ErrNotFound) {
		return nil // deleted or expired meanwhile
	}
	return err
}
