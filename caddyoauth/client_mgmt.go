package caddyoauth

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/clients"
)

// The oauth block's options of client management:
//
//	oauth {
//		scopes <scope> ...                 # scopes dynamic clients may get, besides the static clients'
//		self_service                       # serve /oauth/apps to signed-in users
//		apps_allowed_grants <grant> ...    # default: authorization_code refresh_token
//	}
func init() {
	appOptions["scopes"] = func(d *caddyfile.Dispenser, a *App) error {
		if err := parseList(d, &a.Scopes); err != nil {
			return err
		}
		for _, s := range a.Scopes {
			if _, ok := authz.ParseScope(s); !ok || strings.Contains(s, " ") {
				return d.Errf("'%s' is not a valid scope", s)
			}
		}
		return nil
	}
	appOptions["self_service"] = func(d *caddyfile.Dispenser, a *App) error {
		if d.NextArg() {
			return d.ArgErr()
		}
		a.SelfService = true
		return nil
	}
	appOptions["apps_allowed_grants"] = func(d *caddyfile.Dispenser, a *App) error {
		if err := parseList(d, &a.AppsAllowedGrants); err != nil {
			return err
		}
		if err := checkAppsGrants(a.AppsAllowedGrants); err != nil {
			return d.Errf("%v", err)
		}
		return nil
	}
}

// defaultAppsGrants are the grants of self-service apps unless
// apps_allowed_grants says otherwise.
var defaultAppsGrants = []string{authz.GrantAuthorizationCode, authz.GrantRefreshToken}

func checkAppsGrants(grants []string) error {
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
	if len(a.AppsAllowedGrants) == 0 {
		a.AppsAllowedGrants = defaultAppsGrants
	}
	if err := checkAppsGrants(a.AppsAllowedGrants); err != nil {
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

// running is the oauth app of the running config, for the admin API,
// which Caddy provisions apart from the apps. Caddy starts a new config
// before it stops the old one, so Stop clears it only when it is its own.
var running struct {
	sync.Mutex
	app *App
}

func setRunningApp(a *App) {
	running.Lock()
	defer running.Unlock()
	running.app = a
}

func clearRunningApp(a *App) {
	running.Lock()
	defer running.Unlock()
	if running.app == a {
		running.app = nil
	}
}

func runningApp() *App {
	running.Lock()
	defer running.Unlock()
	return running.app
}

// Token endpoint authentication methods (RFC 7591 §2).
const (
	authMethodNone  = "none"
	authMethodBasic = "client_secret_basic"
	authMethodPost  = "client_secret_post"
)

// clientMetadata is a client registration or update in RFC 7591 names.
// Pointers tell a field left out (PATCH keeps it) from one set empty.
// Other fields are ignored, as RFC 7591 §2 asks.
type clientMetadata struct {
	ClientID                *string   `json:"client_id,omitempty"`
	ClientName              *string   `json:"client_name,omitempty"`
	RedirectURIs            *[]string `json:"redirect_uris,omitempty"`
	GrantTypes              *[]string `json:"grant_types,omitempty"`
	Scope                   *string   `json:"scope,omitempty"`
	TokenEndpointAuthMethod *string   `json:"token_endpoint_auth_method,omitempty"`
	UserID                  *string   `json:"user_id,omitempty"`
	Consent                 *string   `json:"consent,omitempty"`
}

// clientInfo is a client in answers, in RFC 7591 §3.2.1 names.
// client_secret appears once, when it is generated.
type clientInfo struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at,omitempty"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at,omitempty"`
	ClientName              string   `json:"client_name,omitempty"`
	RedirectURIs            []string `json:"redirect_uris,omitempty"`
	GrantTypes              []string `json:"grant_types"`
	Scope                   string   `json:"scope,omitempty"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	UserID                  string   `json:"user_id,omitempty"`
	Consent                 string   `json:"consent,omitempty"`
	UpdatedAt               int64    `json:"updated_at,omitempty"`
	ReadOnly                bool     `json:"read_only,omitempty"`
}

func infoOf(c *clients.Client, secret string) *clientInfo {
	ci := &clientInfo{
		ClientID: c.ID, ClientSecret: secret, ClientIDIssuedAt: c.CreatedAt,
		ClientName: c.Name, RedirectURIs: c.RedirectURIs, GrantTypes: c.Grants,
		Scope: authz.JoinScope(c.Scopes), TokenEndpointAuthMethod: authMethodBasic,
		UserID: c.UserID, Consent: c.Consent, UpdatedAt: c.UpdatedAt,
	}
	if c.Public {
		ci.TokenEndpointAuthMethod = authMethodNone
	} else {
		var never int64 // generated secrets do not expire
		ci.ClientSecretExpiresAt = &never
	}
	return ci
}

func staticInfoOf(c *authz.Client) *clientInfo {
	ci := &clientInfo{
		ClientID: c.ID, ClientName: c.Name, RedirectURIs: c.RedirectURIs,
		GrantTypes: c.Grants, Scope: authz.JoinScope(c.Scopes),
		TokenEndpointAuthMethod: authMethodBasic, UserID: c.UserID,
		Consent: c.Consent, ReadOnly: true,
	}
	if c.Public {
		ci.TokenEndpointAuthMethod = authMethodNone
	}
	return ci
}

// regError is an RFC 7591 §3.2.2 error answer.
type regError struct {
	status int
	Code   string `json:"error"`
	Desc   string `json:"error_description,omitempty"`
}

func (e *regError) Error() string { return e.Code + ": " + e.Desc }

func badMetadata(format string, args ...any) *regError {
	return &regError{status: http.StatusBadRequest, Code: "invalid_client_metadata", Desc: fmt.Sprintf(format, args...)}
}

func badRedirect(format string, args ...any) *regError {
	return &regError{status: http.StatusBadRequest, Code: "invalid_redirect_uri", Desc: fmt.Sprintf(format, args...)}
}

// Limits on registered metadata, so a record stays small.
const (
	maxClientName   = 200
	maxRedirectURIs = 20
	maxURILength    = 2000
)

// clientRules are what a caller may set: operators anything known, users
// of the self-service page only the allowed grants and no consent skip.
type clientRules struct {
	grants      []string // allowed grant types
	scopes      []string // configured scopes
	operator    bool     // may set user_id, consent and client_id
	defaultUser string   // owner of clients this caller creates
}

// apply sets the fields of m onto c and checks the result with the same
// rules as a Caddyfile client (ClientConfig.check). create fills in RFC
// 7591's defaults for fields left out.
func (m *clientMetadata) apply(c *clients.Client, rules clientRules, create bool) error {
	if m.ClientID != nil && (!create || !rules.operator) {
		return badMetadata("client_id cannot be chosen here")
	}
	if create {
		if m.ClientID != nil {
			if !clients.ValidID(*m.ClientID) {
				return badMetadata("client_id may only contain letters, digits and -._~ (1 to 128)")
			}
			c.ID = *m.ClientID
		}
		c.UserID = rules.defaultUser
		c.Consent = authz.ConsentRemember
		c.Grants = []string{authz.GrantAuthorizationCode} // RFC 7591 §2
	}
	if m.ClientName != nil {
		name := strings.TrimSpace(*m.ClientName)
		if len(name) > maxClientName || strings.IndexFunc(name, unicode.IsControl) >= 0 {
			return badMetadata("client_name must be at most %d characters with no control characters", maxClientName)
		}
		c.Name = name
	}
	if m.TokenEndpointAuthMethod != nil {
		switch *m.TokenEndpointAuthMethod {
		case authMethodNone:
			if !create && !c.Public {
				return badMetadata("token_endpoint_auth_method cannot change after registration")
			}
			c.Public = true
		case authMethodBasic, authMethodPost:
			if !create && c.Public {
				return badMetadata("token_endpoint_auth_method cannot change after registration")
			}
			c.Public = false
		default:
			return badMetadata("token_endpoint_auth_method must be none, client_secret_basic or client_secret_post")
		}
	}
	if m.GrantTypes != nil {
		c.Grants = slices.Compact(slices.Clone(*m.GrantTypes))
	}
	if len(c.Grants) == 0 {
		return badMetadata("grant_types is empty")
	}
	for _, g := range c.Grants {
		if !slices.Contains(authz.KnownGrants, g) {
			return badMetadata("unknown grant type %q (known: %s)", safeText(g), strings.Join(authz.KnownGrants, ", "))
		}
		if !slices.Contains(rules.grants, g) {
			return badMetadata("grant type %q is not allowed here (allowed: %s)", g, strings.Join(rules.grants, ", "))
		}
	}
	if m.RedirectURIs != nil {
		c.RedirectURIs = slices.Compact(slices.Clone(*m.RedirectURIs))
	}
	if len(c.RedirectURIs) > maxRedirectURIs {
		return badRedirect("at most %d redirect_uris", maxRedirectURIs)
	}
	for _, u := range c.RedirectURIs {
		if len(u) > maxURILength {
			return badRedirect("a redirect URI is longer than %d characters", maxURILength)
		}
		if err := checkRedirectURI(u); err != nil {
			return badRedirect("%s", safeText(err.Error()))
		}
	}
	if slices.Contains(c.Grants, authz.GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
		return badRedirect("the authorization_code grant needs at least one redirect URI")
	}
	if m.Scope != nil {
		sc, ok := authz.ParseScope(*m.Scope)
		if !ok {
			return badMetadata("scope is malformed")
		}
		for _, s := range sc {
			if !slices.Contains(rules.scopes, s) {
				return badMetadata("scope %q is not configured (configured: %s)", s, strings.Join(rules.scopes, " "))
			}
		}
		c.Scopes = sc
	}
	if m.UserID != nil {
		if !rules.operator {
			return badMetadata("user_id cannot be set here")
		}
		if err := checkUserID(*m.UserID); err != nil {
			return badMetadata("user_id: %v", err)
		}
		c.UserID = *m.UserID
	}
	if m.Consent != nil {
		switch {
		case *m.Consent == authz.ConsentRemember, *m.Consent == authz.ConsentAlways:
		case *m.Consent == authz.ConsentSkip && rules.operator:
		default:
			if rules.operator {
				return badMetadata("consent must be remember, always or skip")
			}
			return badMetadata("consent must be remember or always")
		}
		c.Consent = *m.Consent
	}
	// The Caddyfile's rules, on top: public clients and client_credentials,
	// scope syntax. The id and secret are checked apart.
	cc := &ClientConfig{
		ID: "dynamic", Name: c.Name, Public: c.Public, RedirectURIs: c.RedirectURIs,
		Grants: c.Grants, Scopes: c.Scopes, User: c.UserID,
	}
	if !c.Public {
		cc.Secret = "generated"
	}
	if err := cc.check(); err != nil {
		msg := strings.NewReplacer(`oauth: client "dynamic": `, "", `oauth: client "dynamic"`, "the client").Replace(err.Error())
		return badMetadata("%s", msg)
	}
	return nil
}

// safeText keeps caller-supplied text printable and short in an error.
func safeText(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}
