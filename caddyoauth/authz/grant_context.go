package authz

import (
	"context"

	"github.com/go-oauth2/oauth2/v4"
)

// grantContext is what the token endpoint knows of a grant it runs through
// go-oauth2's manager: the client it authenticated and the grant type.
// The manager's callbacks (clientStore, tokenStore) find it in the
// context.
type grantContext struct {
	client *Client
	grant  string
}

type grantKey struct{}

func withGrant(ctx context.Context, c *Client, grant string) context.Context {
	return context.WithValue(ctx, grantKey{}, &grantContext{client: c, grant: grant})
}

func grantOf(ctx context.Context) *grantContext {
	g, _ := ctx.Value(grantKey{}).(*grantContext)
	return g
}

// authenticatedClient is a client the token endpoint has authenticated.
// The manager checks the secret again; for a secret_hash that would be a
// second bcrypt comparison outside every bound (client_secret.go), and
// would prove nothing new.
type authenticatedClient struct{ *Client }

// VerifyPassword implements oauth2.ClientPasswordVerifier.
func (authenticatedClient) VerifyPassword(string) bool { return true }

// asClient returns the gateway's client behind what the manager hands
// back.
func asClient(ci oauth2.ClientInfo) (*Client, bool) {
	switch c := ci.(type) {
	case *Client:
		return c, true
	case authenticatedClient:
		return c.Client, true
	}
	return nil, false
}

// Interface guards
var (
	_ oauth2.ClientInfo             = authenticatedClient{}
	_ oauth2.ClientPasswordVerifier = authenticatedClient{}
)
