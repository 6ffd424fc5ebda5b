package clients

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/clientauth"
)

// Settings are what the rules of every client look at, whether an operator
// writes the client in the config or it is registered at run time.
type Settings struct {
	ID           string
	Secret       string // the secret, or any non-empty text when one will be generated
	SecretHash   string // a bcrypt hash of the secret, instead of Secret
	Public       bool
	RedirectURIs []string
	Grants       []string
	Scopes       []string
	DefaultScope []string
	User         string // the user of client_credentials tokens
	Introspect   bool
	// AuthMethod, when a method without a shared secret (clientauth), is
	// how the client authenticates, with KeyAuth, instead of a secret.
	AuthMethod string
	KeyAuth    KeyAuth
}

// Check applies the rules every client obeys. Its errors start with
// `oauth: client "<id>"`, as config errors do.
func (c *Settings) Check() error {
	if c.ID == "" {
		return fmt.Errorf("oauth: a client has no client_id")
	}
	if strings.ContainsAny(c.ID, ":\x00") {
		return fmt.Errorf("oauth: client %q: client_id may not contain ':'", c.ID)
	}
	if err := c.checkAuthMethod(); err != nil {
		return err
	}
	if c.Public && (c.Secret != "" || c.SecretHash != "") {
		return fmt.Errorf("oauth: client %q: a public client has no secret", c.ID)
	}
	if !c.Public && c.Secret == "" && c.SecretHash == "" && !clientauth.IsMethod(c.AuthMethod) {
		return fmt.Errorf("oauth: client %q needs a secret, a secret_hash, public, or a token_endpoint_auth_method without a secret", c.ID)
	}
	if c.Secret != "" && c.SecretHash != "" {
		return fmt.Errorf("oauth: client %q: give secret or secret_hash, not both", c.ID)
	}
	if c.SecretHash != "" && !authz.IsBcrypt(c.SecretHash) {
		return fmt.Errorf("oauth: client %q: secret_hash is not a bcrypt hash", c.ID)
	}
	if err := authz.CheckUserID(c.User); err != nil && c.User != "" {
		return fmt.Errorf("oauth: client %q: user: %v", c.ID, err)
	}
	if c.Introspect && c.Public {
		return fmt.Errorf("oauth: client %q: a public client cannot introspect", c.ID)
	}
	if len(c.Grants) == 0 && !c.Introspect {
		return fmt.Errorf("oauth: client %q lists no grants", c.ID)
	}
	for _, g := range c.Grants {
		if !slices.Contains(authz.KnownGrants, g) {
			return fmt.Errorf("oauth: client %q: unknown grant %q (known: %s)", c.ID, g, strings.Join(authz.KnownGrants, ", "))
		}
	}
	if c.Public && slices.Contains(c.Grants, authz.GrantClientCredentials) {
		return fmt.Errorf("oauth: client %q: a public client cannot use client_credentials", c.ID)
	}
	if slices.Contains(c.Grants, authz.GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
		return fmt.Errorf("oauth: client %q uses authorization_code but has no redirect_uri", c.ID)
	}
	for _, u := range c.RedirectURIs {
		if err := CheckRedirectURI(u); err != nil {
			return fmt.Errorf("oauth: client %q: %v", c.ID, err)
		}
	}
	for _, s := range append(slices.Clone(c.Scopes), c.DefaultScope...) {
		if _, ok := authz.ParseScope(s); !ok || strings.Contains(s, " ") {
			return fmt.Errorf("oauth: client %q: %q is not a valid scope", c.ID, s)
		}
	}
	for _, s := range c.DefaultScope {
		if !slices.Contains(c.Scopes, s) {
			return fmt.Errorf("oauth: client %q: default_scope %q is not among its scopes", c.ID, s)
		}
	}
	return nil
}

// checkAuthMethod checks a method without a shared secret and its keys:
// such a client has no secret and is not public; keys without such a
// method are a mistake.
func (c *Settings) checkAuthMethod() error {
	switch {
	case clientauth.IsMethod(c.AuthMethod):
		if c.Public || c.Secret != "" || c.SecretHash != "" {
			return fmt.Errorf("oauth: client %q: a %s client has no secret and is not public", c.ID, c.AuthMethod)
		}
		if _, err := c.KeyAuth.Method(c.AuthMethod); err != nil {
			return fmt.Errorf("oauth: client %q: %v", c.ID, err)
		}
	case c.AuthMethod == AuthMethodNone && !c.Public, (c.AuthMethod == AuthMethodBasic || c.AuthMethod == AuthMethodPost) && c.Public:
		return fmt.Errorf("oauth: client %q: token_endpoint_auth_method %s does not fit the client's secret or public", c.ID, c.AuthMethod)
	case c.AuthMethod != "" && !slices.Contains(AuthMethods, c.AuthMethod):
		return fmt.Errorf("oauth: client %q: token_endpoint_auth_method must be one of %s", c.ID, strings.Join(AuthMethods, ", "))
	case !c.KeyAuth.IsZero():
		return fmt.Errorf("oauth: client %q: jwks, jwks_uri and tls_client_auth go with token_endpoint_auth_method private_key_jwt, self_signed_tls_client_auth or tls_client_auth", c.ID)
	}
	return nil
}

// CheckRedirectURI accepts an absolute URI with no fragment (RFC 6749
// §3.1.2), over https, or http for loopback hosts, or a private-use scheme
// for native apps (RFC 8252 §7.1).
func CheckRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return fmt.Errorf("redirect_uri %q is not an absolute URI", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("redirect_uri %q may not have a fragment", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		h := u.Hostname()
		if h != "localhost" && h != "127.0.0.1" && h != "::1" {
			return fmt.Errorf("redirect_uri %q must use https (http is only for localhost)", raw)
		}
	case "javascript", "data", "file", "vbscript":
		return fmt.Errorf("redirect_uri %q has a forbidden scheme", raw)
	default:
		if !strings.Contains(u.Scheme, ".") {
			return fmt.Errorf("redirect_uri %q: a private-use scheme must be a reversed domain name such as com.example.app", raw)
		}
	}
	return nil
}
