package authz

import (
	"context"
	"strings"

	"github.com/go-oauth2/oauth2/v4"
)

// grantContext is what the token endpoint knows of a grant it runs through
// go-oauth2's manager: the client it authenticated and the grant type.
// The manager's callbacks (clientStore, tokenStore) find it in the
// context.
type grantContext struct {
	client *Client
	grant  string
	// RFC 8707: the resources the request names; then those the grant
	// covers (kept by its refresh token) and those the access token is
	// for, separated by spaces, "" for every resource.
	requested                     []string
	grantResource, accessResource string
}

type grantKey struct{}

func withGrant(ctx context.Context, c *Client, grant string, requested []string) (context.Context, *grantContext) {
	g := &grantContext{client: c, grant: grant, requested: requested}
	// Without a code, the grant covers what the request names.
	g.grantResource = strings.Join(requested, " ")
	g.accessResource = g.grantResource
	return context.WithValue(ctx, grantKey{}, g), g
}

type codeResourceKey struct{}

// withCodeResource carries the resources an authorization request names
// to the record of the code issued for it.
func withCodeResource(ctx context.Context, resource string) context.Context {
	return context.WithValue(ctx, codeResourceKey{}, resource)
}

func codeResourceOf(ctx context.Context) string {
	r, _ := ctx.Value(codeResourceKey{}).(string)
	return r
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
