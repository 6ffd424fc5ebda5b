// Package authz is the OAuth 2.0 authorization server of the gateway with
// no Caddy in it: clients, users, the token endpoint and token validation,
// on go-oauth2's manager with its unsafe defaults replaced through its hooks
// and a digest-keyed token store over store.Store.
package authz

import (
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/caddyoauth/gateway/caddyoauth/clientauth"
	"github.com/caddyoauth/gateway/caddyoauth/dpop"
	"github.com/caddyoauth/gateway/caddyoauth/oidc"
)

// Grant type names as they appear in requests and configs.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	GrantPassword          = "password"
)

// KnownGrants lists the grant types the gateway implements.
var KnownGrants = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantPassword}

// Config holds the service-wide settings.
type Config struct {
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration // 0: refresh tokens never expire
	CodeTTL         time.Duration
	// RefreshRotation issues a new refresh token on each use and treats a
	// reuse of a rotated one as theft, except within RefreshGrace of its
	// first use while no token rotated from it has been used.
	RefreshRotation bool
	RefreshGrace    time.Duration
	// SessionTTL is how long a sign-in lasts. Default: DefaultSessionTTL.
	SessionTTL time.Duration

	// Issuer gives the issuer identifier (RFC 8414 §2), the iss of JWT
	// access tokens and of authorization responses (RFC 9207). A function,
	// as the gateway knows its issuer only once its whole config is loaded;
	// an error fails what needs it as temporarily unavailable. Required
	// for JWT access tokens and the authorization endpoint.
	Issuer func() (string, error)
	// TokenFormat is FormatOpaque (the default when empty) or FormatJWT.
	TokenFormat string
	// Audience is the aud claim of JWT access tokens; empty: the issuer.
	Audience string
	// SigningKey signs JWT access tokens; nil: keys generated and kept in
	// the store, rotated every SigningKeyRotation (0: never).
	SigningKey         crypto.Signer
	SigningKeyRotation time.Duration
	// KeyEncryptionKey, when set, seals the generated signing keys in the
	// store: AES-256-GCM under a key derived from it by HKDF-SHA256.
	KeyEncryptionKey []byte
	// Resources gives the resource identifiers (RFC 8707) tokens may be
	// requested for, in the canonical form of ParseResource. A function,
	// as Issuer. Default: none, so every resource parameter is
	// invalid_target.
	Resources func() (map[string]bool, error)

	// OpenID makes the service an OpenID provider (openid.go): ID tokens
	// for the openid scope, UserInfo, logout. Its ID tokens are signed
	// with generated keys kept beside the access tokens' (or with
	// SigningKey, for its algorithm), whatever TokenFormat is.
	OpenID bool
	// IDTokenAlg signs ID tokens for clients that ask for no algorithm:
	// RS256 (the default) or ES256.
	IDTokenAlg string
	// IDTokenTTL is how long an ID token is valid. Default:
	// DefaultIDTokenTTL.
	IDTokenTTL time.Duration
	// UserClaims returns the claims of a configured user, nil for a user
	// it does not know; claims a login upstream gave are kept in the
	// store.
	UserClaims func(userID string) oidc.Claims
	// DPoP checks the DPoP proofs (RFC 9449) of token requests and of
	// requests presenting DPoP-bound tokens. Default: none; a token
	// request's proof is then ignored (RFC 9449 §5: the tokens are bearer
	// tokens), and a client that requires DPoP gets no token.
	DPoP *dpop.Verifier
	// TokenPath is the token endpoint's path, which a proof names after
	// the issuer (htu).
	TokenPath string
}

// Client is a registered OAuth client.
type Client struct {
	ID           string
	Name         string
	Public       bool     // no secret; authenticates by client_id alone
	RedirectURIs []string // matched exactly
	Grants       []string
	Scopes       []string // the scopes this client may ask for
	DefaultScope []string // granted when a request names none; all of Scopes when empty
	UserID       string   // owner: client_credentials tokens act as this user
	Introspect   bool     // may introspect every token, not only its own
	Consent      string   // when to ask the person: ConsentRemember (""), ConsentAlways or ConsentSkip
	// Since is when this client took its client_id: tokens and consents
	// from before it belong to an earlier client of that ID (one removed
	// from the config, or deleted) and are refused. Zero: none are.
	Since time.Time

	// OpenID is the client's OpenID Connect metadata.
	OpenID oidc.Client

	// UserRegistered: a user, not the operator, registered the client and
	// its redirect URIs (a self-service app). Its invalid authorization
	// requests are not redirected, and the consent screen says so.
	UserRegistered bool
	// Unvetted: nobody the gateway trusts vetted the client: it registered
	// itself (RFC 7591), or describes itself in a document at its
	// client_id. Its name and redirect URIs are its own word, so the
	// consent screen says so, its invalid authorization requests are not
	// redirected, it must use PKCE, and a remembered consent holds only
	// for the redirect URI it was given for.
	Unvetted bool
	// Host is where an unvetted client comes from, for the consent
	// screen: the host of its metadata document's URL, or of its redirect
	// URI.
	Host string

	// LoopbackAnyPort: a registered http loopback redirect URI
	// (127.0.0.1, [::1] or localhost) matches a request's with any port,
	// for native apps that listen on an ephemeral port (RFC 8252 §7.3).
	LoopbackAnyPort bool

	// Auth, when set, is how the client authenticates instead of a
	// secret: private_key_jwt, tls_client_auth or
	// self_signed_tls_client_auth, and no other way. Such a client is
	// confidential and has no secret.
	Auth *clientauth.Method
	// DPoPRequired: every token the client gets is DPoP-bound, and a token
	// request without a proof is refused (RFC 9449 §5.2
	// dpop_bound_access_tokens).
	DPoPRequired bool
	// CertificateBound: the client's tokens are bound to the TLS client
	// certificate of its token request's connection (RFC 8705 §3.4
	// tls_client_certificate_bound_access_tokens).
	CertificateBound bool

	secretDigest [sha256.Size]byte
	hasDigest    bool
	secretBcrypt []byte
}

// SetSecret keeps the SHA-256 digest of a plaintext secret, never the
// secret itself.
func (c *Client) SetSecret(secret string) {
	c.secretDigest = sha256.Sum256([]byte(secret))
	c.hasDigest = true
}

// SetSecretDigest keeps an already computed SHA-256 digest of the secret.
func (c *Client) SetSecretDigest(d [sha256.Size]byte) {
	c.secretDigest = d
	c.hasDigest = true
}

// SetSecretBcrypt keeps a bcrypt hash of the secret (for a secret chosen by
// a person). The endpoints verify it through the bounds and memory of
// client_secret.go; VerifySecret itself costs a bcrypt comparison.
func (c *Client) SetSecretBcrypt(hash []byte) { c.secretBcrypt = hash }

// HasSecret reports whether a secret is configured.
func (c *Client) HasSecret() bool { return c.hasDigest || len(c.secretBcrypt) > 0 }

// VerifySecret compares a presented secret with the stored one in constant
// time. A public client, or a client with no secret, matches nothing.
func (c *Client) VerifySecret(secret string) bool {
	switch {
	case c.Public:
		return false
	case c.hasDigest:
		d := sha256.Sum256([]byte(secret))
		return subtle.ConstantTimeCompare(d[:], c.secretDigest[:]) == 1
	case len(c.secretBcrypt) > 0:
		return bcrypt.CompareHashAndPassword(c.secretBcrypt, []byte(secret)) == nil
	}
	return false
}

// AllowsGrant reports whether the client may use the grant type.
func (c *Client) AllowsGrant(grant string) bool { return slices.Contains(c.Grants, grant) }

// HasRedirectURI reports whether uri is one of the client's registered
// redirect URIs (see MatchRedirectURI).
func (c *Client) HasRedirectURI(uri string) bool {
	_, ok := c.MatchRedirectURI(uri)
	return ok
}

// The go-oauth2 ClientInfo interface.

// GetID returns the client_id.
func (c *Client) GetID() string { return c.ID }

// GetSecret returns nothing: secrets are verified by VerifyPassword only.
func (c *Client) GetSecret() string { return "" }

// GetDomain returns the registered redirect URIs joined by newlines, which
// no URI can contain; exactRedirectURI splits them again. A loopback URI
// matching any port carries anyPortMark in front, which no URI starts with.
func (c *Client) GetDomain() string {
	if !c.LoopbackAnyPort {
		return strings.Join(c.RedirectURIs, "\n")
	}
	lines := make([]string, len(c.RedirectURIs))
	for i, u := range c.RedirectURIs {
		lines[i] = u
		if _, _, ok := splitLoopback(u); ok {
			lines[i] = anyPortMark + u
		}
	}
	return strings.Join(lines, "\n")
}

// IsPublic reports whether the client has no secret.
func (c *Client) IsPublic() bool { return c.Public }

// GetUserID returns the owner user.
func (c *Client) GetUserID() string { return c.UserID }

// VerifyPassword lets go-oauth2's manager check the secret in constant
// time. Public clients present none.
func (c *Client) VerifyPassword(secret string) bool {
	if c.Public {
		return secret == ""
	}
	return c.VerifySecret(secret)
}
