// Package caddyoauth turns Caddy into an OAuth 2.0 gateway: the oauth app
// owns the clients, users and token store; the oauth_server handler serves
// the OAuth endpoints; the oauth_protect handler validates bearer tokens and
// hands the caller's identity to the upstream in headers.
//
// This package is what Caddy calls: app.go (the oauth app and its config),
// caddyfile.go (the whole Caddyfile grammar), server.go (oauth_server and
// its route table), endpoints.go (the endpoints served in the glue),
// issuer.go (the issuer and the protected resources derived from the
// sites), protect.go and headers.go (oauth_protect), stores.go (the
// oauth.stores modules), admin_api.go and command.go (client management on
// the admin API and the command line), limits.go, metrics.go, redact.go and
// access_log.go (no credential in the access log), client_roster.go (the
// clients removed from the config) and file_digest.go.
// The OAuth logic lives in Caddy-free packages: authz (the authorization
// server), oidc (OpenID Connect), clients (dynamic clients and the rules of registration),
// selfservice (the /oauth/apps pages), limits (rate limits and lockout) and
// store (the token store and its backends).
package caddyoauth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/clientauth"
	"github.com/caddyoauth/gateway/caddyoauth/clientdoc"
	"github.com/caddyoauth/gateway/caddyoauth/clients"
	"github.com/caddyoauth/gateway/caddyoauth/dpop"
	"github.com/caddyoauth/gateway/caddyoauth/oidc"
	"github.com/caddyoauth/gateway/caddyoauth/pages"
	"github.com/caddyoauth/gateway/caddyoauth/store"
)

func init() {
	caddy.RegisterModule(App{})
}

// Defaults of the token lifetimes.
const (
	DefaultAccessTokenTTL  = time.Hour
	DefaultRefreshTokenTTL = 720 * time.Hour
	DefaultCodeTTL         = 60 * time.Second
	DefaultRefreshGrace    = 10 * time.Second
)

// DefaultSigningKeyRotation is how often a generated JWT signing key is
// replaced.
const DefaultSigningKeyRotation = 720 * time.Hour

// rosterTimeout bounds the revocation of removed users at start-up.
const rosterTimeout = 30 * time.Second

// App is the oauth app: the authorization server that oauth_server and
// oauth_protect handlers share. It holds the clients, the users, the token
// store and the token lifetimes.
type App struct {
	// The token store, a module of the oauth.stores namespace. Default:
	// the file store under Caddy's data directory.
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=oauth.stores inline_key=module"`

	// Lifetime of access tokens. Default: 1h.
	AccessTokenTTL caddy.Duration `json:"access_token_ttl,omitempty"`

	// Lifetime of refresh tokens; 0 makes them never expire. Default: 720h.
	RefreshTokenTTL *caddy.Duration `json:"refresh_token_ttl,omitempty"`

	// Lifetime of authorization codes. Default: 60s.
	CodeTTL caddy.Duration `json:"code_ttl,omitempty"`

	// Whether each use of a refresh token returns a new one, a reused
	// rotated token revoking its family (RFC 9700 §4.14.2). Default: true.
	RefreshTokenRotation *bool `json:"refresh_token_rotation,omitempty"`

	// How long after a rotation the same client may present the old
	// refresh token again without anything being revoked, as long as no
	// refresh token issued from it has been used. Default: 10s.
	RefreshTokenGrace *caddy.Duration `json:"refresh_token_grace,omitempty"`

	// The issuer identifier (RFC 8414), an https URL with no path, query
	// or fragment (http only on a loopback host). Default: the origin of
	// the site addresses serving oauth_server, when they name exactly one
	// scheme, host and port; otherwise the config is refused at start.
	Issuer string `json:"issuer,omitempty"`

	// The format of access tokens: opaque (random strings the gateway
	// looks up) or jwt (RFC 9068 JWTs signed by the gateway). Default:
	// opaque.
	TokenFormat string `json:"token_format,omitempty"`

	// A PEM file with the private key signing JWT access tokens: EC P-256
	// (ES256) or RSA (RS256). Default: an ES256 key the gateway generates
	// and keeps in its store, shared by every instance.
	SigningKey string `json:"signing_key,omitempty"`

	// How often a generated signing key is replaced; the previous key stays
	// published until the tokens it signed have expired. 0 never rotates.
	// Default: 720h.
	SigningKeyRotation *caddy.Duration `json:"signing_key_rotation,omitempty"`

	// The aud claim of JWT access tokens. Default: the issuer.
	Audience string `json:"audience,omitempty"`

	// A secret from which the key encrypting the generated signing keys in
	// the store is derived (HKDF-SHA256, then AES-256-GCM): at least 32
	// bytes, given as a placeholder such as {env.OAUTH_KEK}, expanded at
	// Provision so it stays out of the JSON config. Keys already stored in
	// plain are encrypted when a config with it starts; every instance
	// sharing the store needs the same one. jwt with generated keys only.
	// Default: none: the keys are stored in plain.
	KeyEncryptionKey string `json:"key_encryption_key,omitempty"`

	// OpenID Connect is on when a client may be given the openid scope
	// (in a client's scopes or the scopes list).

	// The algorithm signing ID tokens for clients that ask for none: RS256
	// or ES256. The keys are generated and kept in the store as the JWT
	// access tokens' are, rotated every signing_key_rotation. Default:
	// RS256.
	IDTokenSigningAlg string `json:"id_token_signing_alg,omitempty"`

	// How long an ID token is valid. Default: 1h.
	IDTokenTTL caddy.Duration `json:"id_token_ttl,omitempty"`

	// The registered clients.
	Clients []*ClientConfig `json:"clients,omitempty"`

	// The users who may sign in with a password.
	Users []*UserConfig `json:"users,omitempty"`

	// Rate limits of the token, login and introspection endpoints.
	// Default: on, with the rates of RateLimitConfig's fields.
	RateLimit *RateLimitConfig `json:"rate_limit,omitempty"`

	// The lockout of repeated failed sign-ins. Default: on, with the
	// settings of LockoutConfig's fields.
	Lockout *LockoutConfig `json:"lockout,omitempty"`

	// Authorization code flow: sessions, PKCE, screens and login sources.

	// How long a sign-in at the authorization server lasts. Default: 1h.
	SessionTTL caddy.Duration `json:"session_ttl,omitempty"`

	// Whether every client must use PKCE; public clients always must.
	// Default: false.
	PKCERequired bool `json:"pkce_required,omitempty"`

	// Whether the plain PKCE method is accepted besides S256. Default:
	// false.
	PKCEAllowPlain bool `json:"pkce_allow_plain,omitempty"`

	// A folder of templates replacing the embedded pages file by file
	// (pages.Files: layout.html, components.html, login.html,
	// consent.html, error.html, signed_out.html, form_post.html,
	// end_session.html, apps.html, app_new.html, app_edit.html,
	// app_secret.html). Default: the embedded pages only.
	Templates string `json:"templates,omitempty"`

	// Descriptions of scopes, by scope name, shown on the consent screen
	// and at /oauth/apps. A scope without one shows its name. Default:
	// descriptions of the OpenID Connect scopes only.
	ScopeDescriptions map[string]*pages.ScopeText `json:"scope_descriptions,omitempty"`

	// The operator's name, logo, colour and support link on every page.
	// Default: none.
	Branding *pages.Branding `json:"branding,omitempty"`

	// Message files by language tag, each adding a language to the pages
	// or overriding messages of a shipped one (en, de, fr, es, ja).
	// Default: none.
	Languages map[string]string `json:"languages,omitempty"`

	// A file of more users: a JSON array of {username, password_hash,
	// user_id}, or username:bcrypt-hash[:user_id] lines. Read at
	// Provision, so again on every config reload. Default: none.
	UsersFile string `json:"users_file,omitempty"`

	// A digest of the users_file's content, set by the Caddyfile adapter
	// so that an edit of the file alone changes the adapted config and
	// `caddy reload` loads it (Caddy skips a reload whose JSON is
	// unchanged). The app does not read it. Default: none.
	UsersFileDigest string `json:"users_file_digest,omitempty"`

	// The legacy system's login endpoint, asked after the configured
	// users. Default: none.
	LoginUpstream *LoginUpstreamConfig `json:"login_upstream,omitempty"`

	// Scopes dynamic clients may be given, on top of the scopes of the
	// static clients. Default: none beyond those.
	Scopes []string `json:"scopes,omitempty"`

	// Whether signed-in users may manage their own clients at /oauth/apps.
	// Default: false.
	SelfService bool `json:"self_service,omitempty"`

	// The grant types users may give the clients they create at
	// /oauth/apps. Default: authorization_code and refresh_token.
	SelfServiceGrants []string `json:"apps_allowed_grants,omitempty"`

	// The scopes users may give the clients they create at /oauth/apps.
	// Those clients can use no other scope, whatever their records hold.
	// Default: none, so users' clients get no scope.
	SelfServiceScopes []string `json:"apps_allowed_scopes,omitempty"`

	// How many clients one user may have at /oauth/apps. Default: 10.
	AppsPerUser int `json:"apps_per_user,omitempty"`

	// Clients nobody vetted: those that register themselves (RFC 7591)
	// and those described by a metadata document at their client_id.
	// Default: neither.
	DynamicClients *DynamicClients `json:"dynamic_clients,omitempty"`

	// Resource identifiers (RFC 8707) tokens may be requested for besides
	// those of the oauth_protect blocks: resource servers that check the
	// gateway's tokens themselves (introspection, JWT access tokens).
	// Absolute URIs with no fragment. Default: none.
	Resources []string `json:"resources,omitempty"`

	// The checks of DPoP proofs (RFC 9449), at the token endpoint and for
	// DPoP-bound tokens at oauth_protect. Default: the defaults of
	// DPoPConfig's fields.
	DPoP *DPoPConfig `json:"dpop,omitempty"`

	authorizer  *authz.Authorizer
	staticUsers authz.StaticUsers // users and users_file

	// The static clients dated against the stored roster, and those the
	// roster names that this config does not (client_roster.go).
	clientRoster   clients.Roster
	removedClients []string

	service  *authz.Service
	registry *clients.Registry
	limits   *Limits
	store    store.Store
	counters store.Store // where rate-limit and lockout counters live
	logger   *zap.Logger

	idHeaders *headerSet

	// registration serves /oauth/register; nil when registration is off.
	registration *clients.Registration

	// httpApp is the http app of this config, which oauth_server and
	// oauth_protect record when they are provisioned; issuer derives the
	// issuer from its routes when an oauth_server was (servesOAuth).
	httpApp     *caddyhttp.App
	servesOAuth bool
	issuer      func() (string, error)

	// The canonical forms of Resources; the oauth_protect blocks, which
	// register at their Provision; and the resources derived from both
	// and the sites (issuer.go), once, as the issuer.
	resourceIDs []string
	protects    *protectSet
	resources   func() (*resourceTable, error)
}

// metadataDocuments reports whether client ID metadata documents are on.
func (a *App) metadataDocuments() bool {
	return a.DynamicClients != nil && a.DynamicClients.MetadataDocuments
}

// ClientConfig is a client registered in the config.
type ClientConfig struct {
	// The client_id.
	ID string `json:"client_id"`

	// Name shown to people on the consent screen. Default: the client_id.
	Name string `json:"name,omitempty"`

	// The client secret. Placeholders such as {env.ZAPIER_SECRET} are
	// expanded when the config loads, so the secret itself stays out of
	// the JSON config; only its SHA-256 digest is kept in memory.
	Secret string `json:"secret,omitempty"`

	// A bcrypt hash of the secret, instead of secret.
	SecretHash string `json:"secret_hash,omitempty"`

	// A public client has no secret and authenticates by client_id alone.
	Public bool `json:"public,omitempty"`

	// The redirect URIs the client may use, matched exactly.
	RedirectURIs []string `json:"redirect_uris,omitempty"`

	// The grant types the client may use: authorization_code,
	// refresh_token, client_credentials, password.
	Grants []string `json:"grants,omitempty"`

	// The scopes the client may ask for.
	Scopes []string `json:"scopes,omitempty"`

	// The scopes granted when a request names none. Default: all of
	// scopes.
	DefaultScope []string `json:"default_scope,omitempty"`

	// The user the client's client_credentials tokens act as. Default:
	// none, so those tokens carry no user.
	User string `json:"user,omitempty"`

	// Whether the client (typically a resource server's own entry) may
	// introspect every token; without it a confidential client may
	// introspect only its own. A client with introspect may list no
	// grants. Default: false.
	Introspect bool `json:"introspect,omitempty"`

	// When the consent screen is shown: remember (ask once per scope set
	// and remember the answer), always, or skip (a first-party client).
	// Default: remember.
	Consent string `json:"consent,omitempty"`

	// The OpenID Connect metadata: post_logout_redirect_uris,
	// id_token_signed_response_alg, backchannel_logout_uri,
	// default_max_age, require_auth_time, subject_type. Default: none.
	oidc.Client

	// How a client without a secret authenticates at the token,
	// introspection and revocation endpoints, and the only way it may:
	// private_key_jwt (a JWT signed with a key of jwks or jwks_uri),
	// tls_client_auth (a TLS client certificate the site verified, with
	// the tls_client_auth_* attribute) or self_signed_tls_client_auth (a
	// TLS client certificate whose key is in jwks or jwks_uri). Default:
	// none: by the secret, or public.
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method,omitempty"`
	clients.KeyAuth

	// Whether every token the client gets is DPoP-bound: a token request
	// without a DPoP proof is refused (RFC 9449 §5.2). Default: false: a
	// request with a proof gets bound tokens, one without bearer tokens.
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens,omitempty"`

	// Whether the client's tokens are bound to the TLS client certificate
	// of its token request's connection (RFC 8705 §3), which it must then
	// present. Default: false.
	CertificateBoundAccessTokens bool `json:"tls_client_certificate_bound_access_tokens,omitempty"`
}

// UserConfig is an account that may sign in with a password.
type UserConfig struct {
	// The name the person signs in with.
	Username string `json:"username"`

	// The bcrypt hash of the password, as `caddy hash-password` prints it.
	PasswordHash string `json:"password_hash"`

	// The user ID handed to upstreams. Default: the username.
	UserID string `json:"user_id,omitempty"`

	// The user's OpenID Connect claims (name, email, email_verified...),
	// released per scope. Default: none.
	Claims oidc.Claims `json:"claims,omitempty"`
}

// LoginUpstreamConfig is the legacy system's login endpoint: the gateway
// POSTs {"username", "password"} (or a form) to it, and a 2xx answer with
// the user ID in a JSON field is a successful login.
type LoginUpstreamConfig struct {
	// The URL receiving the POST, http or https. Placeholders such as
	// {env.LOGIN_URL} are expanded at Provision.
	URL string `json:"url"`

	// How the credentials are sent: json or form. Default: json.
	Format string `json:"format,omitempty"`

	// The JSON field of the answer holding the user ID. Default: id.
	IDField string `json:"id_field,omitempty"`

	// How long to wait for the answer; past it the login fails with 503.
	// Default: 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// OpenID Connect claims read from fields of the answer, claim to
	// field, kept until the person's next sign-in. Default: none.
	ClaimsFrom map[string]string `json:"claims_from,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "oauth",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision opens the store and builds the authorization server.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.idHeaders = new(headerSet)
	a.issuer = sync.OnceValues(a.resolveIssuer)
	a.resources = sync.OnceValues(a.resolveResources)
	a.protects = new(protectSet)
	if a.AccessTokenTTL == 0 {
		a.AccessTokenTTL = caddy.Duration(DefaultAccessTokenTTL)
	}
	if a.RefreshTokenTTL == nil {
		d := caddy.Duration(DefaultRefreshTokenTTL)
		a.RefreshTokenTTL = &d
	}
	if a.CodeTTL == 0 {
		a.CodeTTL = caddy.Duration(DefaultCodeTTL)
	}
	if err := a.validate(); err != nil {
		return err
	}
	if err := a.checkClientManagement(); err != nil {
		return err
	}
	static, err := a.buildClients()
	if err != nil {
		return err
	}
	users, err := a.buildUsers()
	if err != nil {
		return err
	}
	auth, err := a.buildAuthenticator(users)
	if err != nil {
		return err
	}
	a.staticUsers = users

	if a.StoreRaw == nil {
		a.StoreRaw = json.RawMessage(`{"module":"file"}`)
	}
	mod, err := ctx.LoadModule(a, "StoreRaw")
	if err != nil {
		return fmt.Errorf("loading oauth store: %v", err)
	}
	a.store = mod.(store.Backend).Store()
	a.counters = a.store
	if cb, ok := mod.(store.CounterBackend); ok {
		a.counters = cb.Counters()
	}
	if err := registerMetrics(ctx); err != nil {
		return fmt.Errorf("oauth: registering metrics: %v", err)
	}
	a.store = instrumentStore(a.store, mod.(caddy.Module).CaddyModule().ID.Name())

	rotation := a.RefreshTokenRotation == nil || *a.RefreshTokenRotation
	grace := DefaultRefreshGrace
	if a.RefreshTokenGrace != nil {
		grace = time.Duration(*a.RefreshTokenGrace)
	}
	// Static clients first, then the dynamic ones in the store.
	a.registry = clients.New(a.store, static)
	if err := a.provisionClientRoster(static); err != nil {
		return err
	}
	a.registry.LimitUserScopes(a.SelfServiceScopes)
	if err := a.provisionDynamicClients(); err != nil {
		return err
	}
	cfg := authz.Config{
		AccessTokenTTL:  time.Duration(a.AccessTokenTTL),
		RefreshTokenTTL: time.Duration(*a.RefreshTokenTTL),
		CodeTTL:         time.Duration(a.CodeTTL),
		RefreshRotation: rotation,
		RefreshGrace:    grace,
	}
	if err := a.openIDConfig(&cfg); err != nil {
		return err
	}
	if err := a.tokenConfig(&cfg); err != nil {
		return err
	}
	if err := a.dpopConfig(&cfg); err != nil {
		return err
	}
	a.service = authz.New(cfg, a.store, a.registry, auth, a.logger)
	a.service.SetClientKeyOptions(clientauth.Options{
		AllowPrivateAddresses: a.DynamicClients != nil && a.DynamicClients.AllowPrivateAddresses,
	})
	if err := a.provisionAuthorize(); err != nil {
		return err
	}
	a.RegisterIdentityHeaders(DefaultUserHeader, DefaultClientHeader, DefaultScopeHeader)
	return a.provisionLimits()
}

func (a *App) validate() error {
	if a.AccessTokenTTL < 0 || a.CodeTTL < 0 || *a.RefreshTokenTTL < 0 {
		return fmt.Errorf("oauth: token lifetimes must not be negative")
	}
	if a.RefreshTokenGrace != nil && *a.RefreshTokenGrace < 0 {
		return fmt.Errorf("oauth: refresh_token_grace must not be negative")
	}
	a.resourceIDs = nil
	for _, r := range a.Resources {
		id, err := authz.ParseResource(r)
		if err != nil {
			return fmt.Errorf("oauth: resources: %q: %v", r, err)
		}
		a.resourceIDs = append(a.resourceIDs, id)
	}
	return nil
}

// buildClients checks the configured clients and turns them into the
// authorization server's, expanding secret placeholders.
func (a *App) buildClients() (authz.StaticClients, error) {
	repl := caddy.NewReplacer()
	out := make(authz.StaticClients, len(a.Clients))
	for _, cc := range a.Clients {
		if err := cc.check(); err != nil {
			return nil, err
		}
		if _, dup := out[cc.ID]; dup {
			return nil, fmt.Errorf("oauth: client %q is defined twice", cc.ID)
		}
		c := &authz.Client{
			ID: cc.ID, Name: cc.Name, Public: cc.Public,
			RedirectURIs: cc.RedirectURIs, Grants: cc.Grants,
			Scopes: cc.Scopes, DefaultScope: cc.DefaultScope, UserID: cc.User,
			Introspect: cc.Introspect,
			Consent:    cc.Consent,
			OpenID:     cc.Client,
		}
		c.DPoPRequired, c.CertificateBound = cc.DPoPBoundAccessTokens, cc.CertificateBoundAccessTokens
		if c.Name == "" {
			c.Name = cc.ID
		}
		if clientauth.IsMethod(cc.TokenEndpointAuthMethod) {
			m, err := cc.KeyAuth.Method(cc.TokenEndpointAuthMethod)
			if err != nil {
				return nil, fmt.Errorf("oauth: client %q: %v", cc.ID, err)
			}
			c.Auth = m
		}
		switch {
		case cc.Secret != "":
			secret, err := repl.ReplaceOrErr(cc.Secret, true, true)
			if err != nil || secret == "" {
				return nil, fmt.Errorf("oauth: client %q: the secret's placeholder has no value", cc.ID)
			}
			if !strings.Contains(cc.Secret, "{") {
				a.logger.Warn("client secret is written in the config in plain text; use a placeholder such as {env.NAME} or secret_hash",
					zap.String("client_id", cc.ID))
			}
			c.SetSecret(secret)
		case cc.SecretHash != "":
			c.SetSecretBcrypt([]byte(cc.SecretHash))
		}
		out[cc.ID] = c
	}
	return out, nil
}

// check validates a client's config; the Caddyfile parser calls it too, so
// a mistake is reported with its file and line.
func (c *ClientConfig) check() error {
	if err := (&clients.Settings{
		ID: c.ID, Secret: c.Secret, SecretHash: c.SecretHash, Public: c.Public,
		RedirectURIs: c.RedirectURIs, Grants: c.Grants, Scopes: c.Scopes,
		DefaultScope: c.DefaultScope, User: c.User, Introspect: c.Introspect,
		AuthMethod: c.TokenEndpointAuthMethod, KeyAuth: c.KeyAuth,
	}).Check(); err != nil {
		return err
	}
	if err := c.Client.Check(); err != nil {
		return fmt.Errorf("client %q: %v", c.ID, err)
	}
	return nil
}

func (a *App) buildUsers() (authz.StaticUsers, error) {
	out := make(authz.StaticUsers, len(a.Users))
	for _, u := range a.Users {
		if u.Username == "" {
			return nil, fmt.Errorf("oauth: a user has no username")
		}
		if _, dup := out[u.Username]; dup {
			return nil, fmt.Errorf("oauth: user %q is defined twice", u.Username)
		}
		if !authz.IsBcrypt(u.PasswordHash) {
			return nil, fmt.Errorf("oauth: user %q: the password hash is not a bcrypt hash", u.Username)
		}
		id := u.UserID
		if id == "" {
			id = u.Username
		}
		if err := authz.CheckUserID(id); err != nil {
			return nil, fmt.Errorf("oauth: user %q: %v", u.Username, err)
		}
		if err := u.Claims.Check(); err != nil {
			return nil, fmt.Errorf("oauth: user %q: %v", u.Username, err)
		}
		out[u.Username] = &authz.User{Username: u.Username, PasswordHash: []byte(u.PasswordHash), UserID: id, Claims: u.Claims}
	}
	return out, nil
}

// buildAuthenticator chains the login sources in this order: the users
// of the config and the users file, then the login upstream.
func (a *App) buildAuthenticator(users authz.StaticUsers) (authz.Authenticator, error) {
	repl := caddy.NewReplacer()
	if a.UsersFile != "" {
		path := repl.ReplaceKnown(a.UsersFile, "")
		if err := authz.LoadUsersFile(path, users); err != nil {
			return nil, fmt.Errorf("oauth: %v", err)
		}
	}
	var chain authz.AuthenticatorChain
	if len(users) > 0 {
		chain = append(chain, users)
	}
	if lu := a.LoginUpstream; lu != nil {
		raw := repl.ReplaceKnown(lu.URL, "")
		if err := checkLoginURL(raw); err != nil || raw == "" || raw[0] == '{' {
			return nil, fmt.Errorf("oauth: login_upstream: the URL is not an absolute http or https URL")
		}
		if lu.Format != "" && lu.Format != "json" && lu.Format != "form" {
			return nil, fmt.Errorf("oauth: login_upstream: format must be json or form")
		}
		if lu.Timeout < 0 {
			return nil, fmt.Errorf("oauth: login_upstream: timeout must not be negative")
		}
		for claim := range lu.ClaimsFrom {
			if !oidc.IsStandardClaim(claim) {
				return nil, fmt.Errorf("oauth: login_upstream: claims_from: %q is not a standard OpenID Connect claim", claim)
			}
		}
		chain = append(chain, &authz.UpstreamLogin{
			URL: raw, Form: lu.Format == "form", IDField: lu.IDField,
			Timeout: time.Duration(lu.Timeout), Log: a.logger, ClaimsFrom: lu.ClaimsFrom,
		})
	}
	if len(chain) == 0 {
		return nil, nil
	}
	if len(chain) == 1 {
		return chain[0], nil
	}
	return chain, nil
}

// provisionAuthorize builds the authorization code flow of the service.
func (a *App) provisionAuthorize() error {
	if a.SessionTTL < 0 {
		return fmt.Errorf("oauth: session_ttl must not be negative")
	}
	for _, c := range a.Clients {
		if !validConsent(c.Consent) {
			return fmt.Errorf("oauth: client %q: consent must be remember, always or skip", c.ID)
		}
	}
	if len(a.Users) == 0 && a.UsersFile == "" && a.LoginUpstream == nil {
		for _, c := range a.Clients {
			if slices.Contains(c.Grants, authz.GrantAuthorizationCode) {
				a.logger.Warn("a client uses authorization_code but no one can sign in: add user lines, users_file or login_upstream",
					zap.String("client_id", c.ID))
				break
			}
		}
	}
	repl := caddy.NewReplacer()
	langs := map[string]string{}
	for tag, file := range a.Languages {
		langs[tag] = repl.ReplaceKnown(file, "")
	}
	pageSet, err := pages.Load(pages.Options{Templates: repl.ReplaceKnown(a.Templates, ""), Languages: langs,
		Branding: a.Branding, Scopes: a.ScopeDescriptions})
	if err != nil {
		return fmt.Errorf("oauth: %v", err)
	}
	a.authorizer = a.service.NewAuthorizer(authz.AuthorizeConfig{
		BasePath:       PathPrefix,
		PKCERequired:   a.PKCERequired,
		PKCEAllowPlain: a.PKCEAllowPlain,
		Pages:          pageSet,
		SecureRequest:  a.secureRequest,
	})
	return nil
}

var consentModes = []string{"", authz.ConsentRemember, authz.ConsentAlways, authz.ConsentSkip}

func validConsent(m string) bool { return slices.Contains(consentModes, m) }

// checkLoginURL accepts an absolute http or https URL, or one made of a
// placeholder, which is expanded and checked at Provision.
func checkLoginURL(raw string) error {
	if len(raw) > 0 && raw[0] == '{' {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http or https URL", raw)
	}
	return nil
}

// checkTokenOptions refuses JWT settings that cannot take effect and an
// issuer RFC 8414 §2 does not allow.
func (a *App) checkTokenOptions() error {
	_, err := a.tokenOptionsProblem()
	return err
}

// tokenOptionsProblem is checkTokenOptions naming the option at fault.
func (a *App) tokenOptionsProblem() (string, error) {
	if a.Issuer != "" {
		u, err := url.Parse(a.Issuer)
		loopback := err == nil && u.Scheme == "http" && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1" || u.Hostname() == "::1")
		if err != nil || (u.Scheme != "https" && !loopback) || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.Contains(a.Issuer, "#") {
			return "issuer", fmt.Errorf("issuer %q must be an https URL with no path, query or fragment (RFC 8414 §2; the endpoints are served at the root)", a.Issuer)
		}
	}
	switch a.TokenFormat {
	case "", authz.FormatOpaque:
		// Generated keys sign ID tokens too, whatever the access tokens are.
		generated := a.openID()
		for option, set := range map[string]bool{"signing_key": a.SigningKey != "", "signing_key_rotation": a.SigningKeyRotation != nil && !generated, "audience": a.Audience != "", "key_encryption_key": a.KeyEncryptionKey != "" && !generated} {
			if set {
				return option, fmt.Errorf("%s needs token_format jwt", option)
			}
		}
	case authz.FormatJWT:
	default:
		return "token_format", fmt.Errorf("token_format must be opaque or jwt, not %q", a.TokenFormat)
	}
	// With OpenID Connect the ring of the algorithm the file does not give
	// is generated, and so rotated and encrypted.
	if a.SigningKey != "" && a.SigningKeyRotation != nil && !a.openID() {
		return "signing_key_rotation", fmt.Errorf("signing_key_rotation applies to generated keys only; rotate a signing_key file by replacing it")
	}
	if a.SigningKey != "" && a.KeyEncryptionKey != "" && !a.openID() {
		return "key_encryption_key", fmt.Errorf("key_encryption_key applies to generated keys only; a signing_key file is not stored")
	}
	if a.SigningKeyRotation != nil && *a.SigningKeyRotation < 0 {
		return "signing_key_rotation", fmt.Errorf("signing_key_rotation must not be negative")
	}
	return "", nil
}

// tokenConfig fills in the token format settings, reading the signing key
// file.
func (a *App) tokenConfig(cfg *authz.Config) error {
	if err := a.checkTokenOptions(); err != nil {
		return fmt.Errorf("oauth: %v", err)
	}
	cfg.Issuer = a.issuer
	cfg.Resources = func() (map[string]bool, error) {
		t, err := a.resources()
		if err != nil {
			return nil, err
		}
		return t.known, nil
	}
	cfg.SessionTTL = time.Duration(a.SessionTTL)
	cfg.Audience = a.Audience
	cfg.TokenFormat = a.TokenFormat
	if cfg.TokenFormat == "" {
		cfg.TokenFormat = authz.FormatOpaque
	}
	cfg.SigningKeyRotation = DefaultSigningKeyRotation
	if a.SigningKeyRotation != nil {
		cfg.SigningKeyRotation = time.Duration(*a.SigningKeyRotation)
	}
	if a.SigningKey != "" {
		path := caddy.NewReplacer().ReplaceKnown(a.SigningKey, "")
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("oauth: reading signing_key: %v", err)
		}
		key, err := authz.ParseSigningKey(data)
		if err != nil {
			return fmt.Errorf("oauth: signing_key %s: %v", path, err)
		}
		cfg.SigningKey = key
	}
	if a.KeyEncryptionKey != "" {
		kek, err := caddy.NewReplacer().ReplaceOrErr(a.KeyEncryptionKey, true, true)
		if err != nil || kek == "" {
			return fmt.Errorf("oauth: key_encryption_key: the placeholder has no value")
		}
		if len(kek) < minKeyEncryptionKey {
			return fmt.Errorf("oauth: key_encryption_key must be at least %d bytes (openssl rand -base64 32 gives 44)", minKeyEncryptionKey)
		}
		if !strings.Contains(a.KeyEncryptionKey, "{") {
			a.logger.Warn("key_encryption_key is written in the config in plain text; use a placeholder such as {env.NAME}")
		}
		cfg.KeyEncryptionKey = []byte(kek)
	}
	return nil
}

// openID reports whether the gateway is an OpenID provider: a client may
// be given the openid scope.
func (a *App) openID() bool { return slices.Contains(a.configuredScopes(), oidc.ScopeOpenID) }

// openIDConfig fills in the OpenID Connect settings.
func (a *App) openIDConfig(cfg *authz.Config) error {
	if a.IDTokenSigningAlg != "" && !slices.Contains(oidc.SigningAlgs, a.IDTokenSigningAlg) {
		return fmt.Errorf("oauth: id_token_signing_alg must be one of %v", oidc.SigningAlgs)
	}
	if a.IDTokenTTL < 0 {
		return fmt.Errorf("oauth: id_token_ttl must not be negative")
	}
	cfg.OpenID = a.openID()
	cfg.IDTokenAlg = a.IDTokenSigningAlg
	cfg.IDTokenTTL = time.Duration(a.IDTokenTTL)
	byID := a.staticUsers.ClaimsByUserID()
	cfg.UserClaims = func(userID string) oidc.Claims { return byID[userID] }
	return nil
}

// DPoPConfig configures the checks of DPoP proofs (RFC 9449).
type DPoPConfig struct {
	// The algorithms accepted in proofs, some of ES256, ES384, EdDSA,
	// RS256 and PS256, as advertised in dpop_signing_alg_values_supported.
	// Default: all of them.
	Algorithms []string `json:"algorithms,omitempty"`

	// How long after its iat a proof is accepted; a proof is refused
	// again (replay) for that long. Default: 60s.
	ProofMaxAge caddy.Duration `json:"proof_max_age,omitempty"`

	// How far ahead of the gateway's clock a proof's iat may be, for
	// clients whose clock runs ahead. Default: 5s.
	ProofMaxSkew caddy.Duration `json:"proof_max_skew,omitempty"`

	// Whether every proof must carry a nonce the gateway handed out in a
	// DPoP-Nonce header (RFC 9449 §8, §9), at the token endpoint and at
	// oauth_protect. Default: false.
	Nonce bool `json:"nonce,omitempty"`

	// How long a nonce is the current one; it is accepted for one period
	// more. Default: 5m.
	NoncePeriod caddy.Duration `json:"nonce_period,omitempty"`
}

// dpopConfig builds the checker of DPoP proofs. Proofs seen are recorded
// where the rate-limit counters live (in memory beside a file store, in
// Redis for every instance sharing it); the nonces' key is kept in the
// store, made when a nonce is first needed.
func (a *App) dpopConfig(cfg *authz.Config) error {
	dc := a.DPoP
	if dc == nil {
		dc = new(DPoPConfig)
	}
	if dc.ProofMaxAge < 0 || dc.ProofMaxSkew < 0 || dc.NoncePeriod < 0 {
		return fmt.Errorf("oauth: dpop: durations must not be negative")
	}
	if dc.NoncePeriod != 0 && !dc.Nonce {
		return fmt.Errorf("oauth: dpop: nonce_period needs nonce on")
	}
	vc := dpop.Config{Algorithms: dc.Algorithms, MaxAge: time.Duration(dc.ProofMaxAge), MaxSkew: time.Duration(dc.ProofMaxSkew),
		Replay: dpop.StoreReplayCache(a.counters)}
	if dc.Nonce {
		vc.Nonces = dpop.StoreNonces(a.store, time.Duration(dc.NoncePeriod), nil)
	}
	v, err := dpop.NewVerifier(vc)
	if err != nil {
		return fmt.Errorf("oauth: %v", err)
	}
	cfg.DPoP, cfg.TokenPath = v, PathPrefix+"token"
	return nil
}

// minKeyEncryptionKey is the shortest key_encryption_key accepted: HKDF
// adds no strength to a guessable secret.
const minKeyEncryptionKey = 32

// DefaultAppsPerUser is how many clients one user may have at /oauth/apps
// unless apps_per_user says otherwise.
const DefaultAppsPerUser = 10

// defaultSelfServiceGrants are the grants of self-service clients unless
// apps_allowed_grants says otherwise.
var defaultSelfServiceGrants = []string{authz.GrantAuthorizationCode, authz.GrantRefreshToken}

func checkSelfServiceGrants(grants []string) error {
	for _, g := range grants {
		if !slices.Contains(authz.KnownGrants, g) {
			return fmt.Errorf("apps_allowed_grants: unknown grant '%s' (known: %s)", g, strings.Join(authz.KnownGrants, ", "))
		}
	}
	return nil
}

// checkClientManagement checks and defaults the settings of dynamic
// clients.
func (a *App) checkClientManagement() error {
	for _, s := range a.Scopes {
		if _, ok := authz.ParseScope(s); !ok || strings.Contains(s, " ") {
			return fmt.Errorf("oauth: scopes: %q is not a valid scope", s)
		}
	}
	for _, s := range a.SelfServiceScopes {
		if _, ok := authz.ParseScope(s); !ok || strings.Contains(s, " ") {
			return fmt.Errorf("oauth: apps_allowed_scopes: %q is not a valid scope", s)
		}
	}
	if a.AppsPerUser < 0 {
		return fmt.Errorf("oauth: apps_per_user must not be negative")
	}
	if a.AppsPerUser == 0 {
		a.AppsPerUser = DefaultAppsPerUser
	}
	if len(a.SelfServiceGrants) == 0 {
		a.SelfServiceGrants = defaultSelfServiceGrants
	}
	if err := checkSelfServiceGrants(a.SelfServiceGrants); err != nil {
		return fmt.Errorf("oauth: %v", err)
	}
	return nil
}

// configuredScopes are the scopes a dynamic client may be given: those of
// the static clients and the oauth block's scopes list.
func (a *App) configuredScopes() []string {
	lists := [][]string{a.Scopes}
	for _, c := range a.Clients {
		lists = append(lists, c.Scopes)
	}
	return sortedUnion(lists...)
}

// Registry returns the client registry: static clients, then dynamic ones.
func (a *App) Registry() *clients.Registry { return a.registry }

// Service returns the authorization server.
func (a *App) Service() *authz.Service { return a.service }

// headerSet holds the folded identity header names. Every request reads
// it, so readers load a pointer; writers (provisioning) copy on write.
type headerSet struct {
	mu    sync.Mutex // serialises writers
	names atomic.Pointer[[]string]
}

// protectSet holds the oauth_protect blocks of the config.
type protectSet struct {
	mu   sync.Mutex
	list []*Protect
}

// registerProtect notes an oauth_protect block of the config, whose
// resource the app derives (resolveResources).
func (a *App) registerProtect(p *Protect) {
	a.protects.mu.Lock()
	defer a.protects.mu.Unlock()
	a.protects.list = append(a.protects.list, p)
}

// protectBlocks returns the oauth_protect blocks registered so far.
func (a *App) protectBlocks() []*Protect {
	a.protects.mu.Lock()
	defer a.protects.mu.Unlock()
	return slices.Clone(a.protects.list)
}

// RegisterIdentityHeaders adds header names that oauth_server strips from
// every request it passes on, so that no caller can set them.
func (a *App) RegisterIdentityHeaders(names ...string) {
	a.idHeaders.mu.Lock()
	defer a.idHeaders.mu.Unlock()
	cur := a.identityHeaders()
	next := slices.Clone(cur)
	for _, n := range names {
		n = normHeader(n)
		if n != "" && !slices.Contains(next, n) {
			next = append(next, n)
		}
	}
	if len(next) != len(cur) {
		a.idHeaders.names.Store(&next)
	}
}

func (a *App) identityHeaders() []string {
	if p := a.idHeaders.names.Load(); p != nil {
		return *p
	}
	return nil
}

// Start implements caddy.App.
func (a *App) Start() error {
	// The issuer is settled first: a config whose sites name no single
	// origin is refused before it revokes anything.
	if _, err := a.issuer(); err != nil {
		return err
	}
	if _, err := a.resources(); err != nil {
		return err
	}
	// Generated signing keys the config cannot read (encrypted with
	// another key_encryption_key, or with one it lacks) refuse it here.
	if err := a.loadSigningKeys(); err != nil {
		return fmt.Errorf("oauth: %v", err)
	}
	// A config that removes a user does not take over until that user's
	// tokens are revoked: on a reload the previous config keeps running,
	// and the reload reports the error.
	if err := a.revokeRemovedUsers(); err != nil {
		return fmt.Errorf("oauth: revoking the users removed from the config: %v", err)
	}
	if err := a.retireRemovedClients(); err != nil {
		return fmt.Errorf("oauth: retiring the clients removed from the config: %v", err)
	}
	setRunningApp(a)
	return nil
}

// loadSigningKeys reads the generated JWT signing keys, encrypting keys
// stored in plain when key_encryption_key is set.
func (a *App) loadSigningKeys() error {
	ctx, cancel := context.WithTimeout(context.Background(), rosterTimeout)
	defer cancel()
	return a.service.LoadSigningKeys(ctx)
}

// Stop implements caddy.App.
func (a *App) Stop() error {
	clearRunningApp(a)
	return nil
}

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

// DynamicClients configures the clients nobody vetted: the operator
// learns of them only once they are in use.
type DynamicClients struct {
	// Who may register a client at /oauth/register (RFC 7591): off (the
	// endpoint is not served), open (anyone) or token (whoever presents
	// initial_access_token as a bearer token). Default: off.
	Registration string `json:"registration,omitempty"`

	// The initial access token of token registration. Placeholders such
	// as {env.REGISTRATION_TOKEN} are expanded at Provision; only its
	// SHA-256 digest is kept. At least 16 characters.
	InitialAccessToken string `json:"initial_access_token,omitempty"`

	// Whether an https client_id is read as the URL of the client's
	// metadata document. Default: false.
	MetadataDocuments bool `json:"metadata_documents,omitempty"`

	// Whether metadata documents, and the jwks_uri of clients that
	// registered themselves, may be fetched from loopback and private
	// addresses. Default: false.
	AllowPrivateAddresses bool `json:"allow_private_addresses,omitempty"`

	// The scopes such a client may ask for; a registration naming none
	// gets all of them. Default: the oauth block's scopes (not the static
	// clients' own).
	Scopes []string `json:"scopes,omitempty"`

	// The grant types such a client may use: authorization_code,
	// refresh_token, and client_credentials with token registration only.
	// Default: authorization_code and refresh_token.
	Grants []string `json:"grants,omitempty"`

	// How long a registered client issued no token lives after its
	// registration or its last token; 0 keeps it until deleted. Default:
	// 720h.
	Lifetime *caddy.Duration `json:"lifetime,omitempty"`
}

// Registration modes of DynamicClients.
const (
	RegistrationOff   = "off"
	RegistrationOpen  = "open"
	RegistrationToken = "token"
)

// minInitialAccessToken is the shortest initial access token accepted.
const minInitialAccessToken = 16

// registrationOn reports whether /oauth/register is served.
func (a *App) registrationOn() bool { return a.registration != nil }

// provisionDynamicClients sets the policy of clients that register
// themselves and builds the registration endpoint.
func (a *App) provisionDynamicClients() error {
	dc := a.DynamicClients
	if dc == nil {
		dc = new(DynamicClients)
	}
	policy := clients.DefaultRegistrationPolicy()
	if len(dc.Grants) > 0 {
		policy.Grants = dc.Grants
	}
	policy.Scopes = a.Scopes
	if dc.Scopes != nil {
		policy.Scopes = dc.Scopes
	}
	if dc.Lifetime != nil {
		policy.Lifetime = time.Duration(*dc.Lifetime)
	}
	var digest []byte
	switch dc.Registration {
	case "", RegistrationOff, RegistrationOpen:
		if dc.InitialAccessToken != "" {
			return fmt.Errorf("oauth: dynamic_clients: an initial access token needs registration token")
		}
	case RegistrationToken:
		tok, err := caddy.NewReplacer().ReplaceOrErr(dc.InitialAccessToken, true, true)
		if err != nil || len(tok) < minInitialAccessToken {
			return fmt.Errorf("oauth: dynamic_clients: registration token needs an initial access token of at least %d characters (its placeholder may have no value)", minInitialAccessToken)
		}
		if !strings.Contains(dc.InitialAccessToken, "{") {
			a.logger.Warn("the initial access token is written in the config in plain text; use a placeholder such as {env.NAME}")
		}
		d := sha256.Sum256([]byte(tok))
		digest = d[:]
	default:
		return fmt.Errorf("oauth: dynamic_clients: registration must be off, open or token, not %q", dc.Registration)
	}
	if err := policy.Check(dc.Registration == RegistrationToken); err != nil {
		return fmt.Errorf("oauth: dynamic_clients: %v", err)
	}
	a.registry.SetRegistrationPolicy(policy)
	if dc.MetadataDocuments {
		a.registry.UseDocuments(clientdoc.New(clientdoc.Options{
			AllowPrivateAddresses: dc.AllowPrivateAddresses,
			Scopes:                policy.Scopes,
			Logger:                a.logger,
		}).Client)
	}
	a.registration = nil
	if dc.Registration == RegistrationOpen || dc.Registration == RegistrationToken {
		a.registration = &clients.Registration{
			Registry: a.registry, Path: PathPrefix + "register", Issuer: a.issuer,
			InitialTokenDigest: digest, Logger: a.logger,
		}
	}
	return nil
}

// clientUsed notes that a client was issued a token, which keeps a
// registered client from expiring.
func (a *App) clientUsed(clientID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.registry.ClientUsed(ctx, clientID); err != nil {
		a.logger.Warn("noting a registered client's use failed", zap.String("client_id", clientID), zap.Error(err))
	}
}

// Interface guards
var (
	_ caddy.App         = (*App)(nil)
	_ caddy.Provisioner = (*App)(nil)
)
