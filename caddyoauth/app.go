// Package caddyoauth turns Caddy into an OAuth 2.0 gateway: the oauth app
// owns the clients, users and token store; the oauth_server handler serves
// the OAuth endpoints; the oauth_protect handler validates bearer tokens and
// hands the caller's identity to the upstream in headers.
package caddyoauth

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/clients"
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
	// refresh token again without anything being revoked. Default: 10s.
	RefreshTokenGrace *caddy.Duration `json:"refresh_token_grace,omitempty"`

	// The issuer identifier (RFC 8414), an https URL with no query or
	// fragment. Default: the origin each request came to.
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

	// Authorization code flow: sessions, PKCE, screens and login sources
	// (parsed in authorize_config.go).

	// How long a sign-in at the authorization server lasts. Default: 1h.
	SessionTTL caddy.Duration `json:"session_ttl,omitempty"`

	// Whether every client must use PKCE; public clients always must.
	// Default: false.
	PKCERequired bool `json:"pkce_required,omitempty"`

	// Whether the plain PKCE method is accepted besides S256. Default:
	// false.
	PKCEAllowPlain bool `json:"pkce_allow_plain,omitempty"`

	// A folder of templates replacing the embedded screens file by file
	// (layout.html, login.html, consent.html, error.html,
	// signed_out.html). Default: the embedded screens only.
	Templates string `json:"templates,omitempty"`

	// A file of more users: a JSON array of {username, password_hash,
	// user_id}, or username:bcrypt-hash[:user_id] lines. Read at
	// Provision, so again on every config reload. Default: none.
	UsersFile string `json:"users_file,omitempty"`

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

	authorizer  *authz.Authorizer
	staticUsers authz.StaticUsers // users and users_file

	service  *authz.Service
	registry *clients.Registry
	limits   *Limits
	store    store.Store
	counters store.Store // where rate-limit and lockout counters live
	logger   *zap.Logger

	idHeaders *headerSet
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
}

// UserConfig is an account that may sign in with a password.
type UserConfig struct {
	// The name the person signs in with.
	Username string `json:"username"`

	// The bcrypt hash of the password, as `caddy hash-password` prints it.
	PasswordHash string `json:"password_hash"`

	// The user ID handed to upstreams. Default: the username.
	UserID string `json:"user_id,omitempty"`
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
	cfg := authz.Config{
		AccessTokenTTL:  time.Duration(a.AccessTokenTTL),
		RefreshTokenTTL: time.Duration(*a.RefreshTokenTTL),
		CodeTTL:         time.Duration(a.CodeTTL),
		RefreshRotation: rotation,
		RefreshGrace:    grace,
	}
	if err := a.tokenConfig(&cfg); err != nil {
		return err
	}
	a.service = authz.New(cfg, a.store, a.registry, auth, a.logger)
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
		}
		if c.Name == "" {
			c.Name = cc.ID
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
		out[u.Username] = &authz.User{Username: u.Username, PasswordHash: []byte(u.PasswordHash), UserID: id}
	}
	return out, nil
}

// Service returns the authorization server.
func (a *App) Service() *authz.Service { return a.service }

// headerSet holds the folded identity header names. Every request reads
// it, so readers load a pointer; writers (provisioning) copy on write.
type headerSet struct {
	mu    sync.Mutex // serialises writers
	names atomic.Pointer[[]string]
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
	// A config that removes a user does not take over until that user's
	// tokens are revoked: on a reload the previous config keeps running,
	// and the reload reports the error.
	if err := a.revokeRemovedUsers(); err != nil {
		return fmt.Errorf("oauth: revoking the users removed from the config: %v", err)
	}
	setRunningApp(a)
	return nil
}

// Stop implements caddy.App.
func (a *App) Stop() error {
	clearRunningApp(a)
	return nil
}

// Interface guards
var (
	_ caddy.App         = (*App)(nil)
	_ caddy.Provisioner = (*App)(nil)
)
