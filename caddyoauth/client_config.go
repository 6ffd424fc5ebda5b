package caddyoauth

import "github.com/caddyoauth/gateway/caddyoauth/clients"

// check validates a client's config; the Caddyfile parser calls it too, so
// a mistake is reported with its file and line.
func (c *ClientConfig) check() error {
	return (&clients.Settings{
		ID: c.ID, Secret: c.Secret, SecretHash: c.SecretHash, Public: c.Public,
		RedirectURIs: c.RedirectURIs, Grants: c.Grants, Scopes: c.Scopes,
		DefaultScope: c.DefaultScope, User: c.User, Introspect: c.Introspect,
	}).Check()
}
