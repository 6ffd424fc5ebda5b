package clients

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/clientauth"
	"github.com/caddyoauth/gateway/caddyoauth/oidc"
)

// Token endpoint authentication methods (RFC 7591 §2).
const (
	AuthMethodNone  = "none"
	AuthMethodBasic = "client_secret_basic"
	AuthMethodPost  = "client_secret_post"
)

// AuthMethods are every token_endpoint_auth_method a client may register.
var AuthMethods = append([]string{AuthMethodNone, AuthMethodBasic, AuthMethodPost}, clientauth.Methods...)

// Metadata is a client registration or update in RFC 7591 names.
// Pointers tell a field left out (PATCH keeps it) from one set empty.
// Other fields are ignored, as RFC 7591 §2 asks.
type Metadata struct {
	ClientID                *string   `json:"client_id,omitempty"`
	ClientName              *string   `json:"client_name,omitempty"`
	RedirectURIs            *[]string `json:"redirect_uris,omitempty"`
	GrantTypes              *[]string `json:"grant_types,omitempty"`
	Scope                   *string   `json:"scope,omitempty"`
	TokenEndpointAuthMethod *string   `json:"token_endpoint_auth_method,omitempty"`
	UserID                  *string   `json:"user_id,omitempty"`
	Consent                 *string   `json:"consent,omitempty"`
	OpenIDMetadata
	keyMetadata
	// Sender-constrained tokens (RFC 9449 §5.2, RFC 8705 §3.4).
	DPoPBoundAccessTokens                 *bool `json:"dpop_bound_access_tokens,omitempty"`
	TLSClientCertificateBoundAccessTokens *bool `json:"tls_client_certificate_bound_access_tokens,omitempty"`
}

// ParseMetadata decodes a JSON body of client metadata.
func ParseMetadata(body []byte) (*Metadata, error) {
	m := new(Metadata)
	if err := json.Unmarshal(body, m); err != nil {
		return nil, BadMetadata("the request body is not a JSON object of client metadata: %s", safeText(err.Error()))
	}
	return m, nil
}

// Info is a client in answers, in RFC 7591 §3.2.1 names.
// client_secret appears once, when it is generated.
type Info struct {
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
	// RegisteredBy is who registered a dynamic client: operator, user or
	// registration (the client itself).
	RegisteredBy string `json:"registered_by,omitempty"`
	oidc.Client
	KeyAuth
	// Sender-constrained tokens (RFC 9449 §5.2, RFC 8705 §3.4).
	DPoPBoundAccessTokens                 bool `json:"dpop_bound_access_tokens,omitempty"`
	TLSClientCertificateBoundAccessTokens bool `json:"tls_client_certificate_bound_access_tokens,omitempty"`
}

// InfoOf describes a dynamic client, with its secret when one was just
// generated.
func InfoOf(c *Client, secret string) *Info {
	ci := &Info{
		ClientID: c.ID, ClientSecret: secret, ClientIDIssuedAt: c.CreatedAt,
		ClientName: c.Name, RedirectURIs: c.RedirectURIs, GrantTypes: c.Grants,
		Scope: authz.JoinScope(c.Scopes), TokenEndpointAuthMethod: AuthMethodBasic,
		UserID: c.UserID, Consent: c.Consent, UpdatedAt: c.UpdatedAt,
		RegisteredBy: c.RegisteredBy,
		Client:       c.OpenID,
	}
	ci.DPoPBoundAccessTokens, ci.TLSClientCertificateBoundAccessTokens = c.DPoPBound, c.CertificateBound
	switch {
	case c.KeyBased():
		ci.TokenEndpointAuthMethod, ci.KeyAuth = c.AuthMethod, c.KeyAuth
	case c.Public:
		ci.TokenEndpointAuthMethod = AuthMethodNone
	default:
		if c.AuthMethod == AuthMethodPost {
			ci.TokenEndpointAuthMethod = AuthMethodPost
		}
		var never int64 // generated secrets do not expire
		ci.ClientSecretExpiresAt = &never
	}
	return ci
}

// StaticInfoOf describes a client of the config, read-only.
func StaticInfoOf(c *authz.Client) *Info {
	ci := &Info{
		ClientID: c.ID, ClientName: c.Name, RedirectURIs: c.RedirectURIs,
		GrantTypes: c.Grants, Scope: authz.JoinScope(c.Scopes),
		TokenEndpointAuthMethod: AuthMethodBasic, UserID: c.UserID,
		Consent: c.Consent, ReadOnly: true, Client: c.OpenID,
	}
	ci.DPoPBoundAccessTokens, ci.TLSClientCertificateBoundAccessTokens = c.DPoPRequired, c.CertificateBound
	if c.Public {
		ci.TokenEndpointAuthMethod = AuthMethodNone
	}
	if c.Auth != nil {
		ci.TokenEndpointAuthMethod, ci.KeyAuth = c.Auth.Name, KeyAuthOf(c.Auth)
	}
	return ci
}

// RegError is an RFC 7591 §3.2.2 error answer.
type RegError struct {
	Status int    `json:"-"` // the HTTP status; 0 means 400
	Code   string `json:"error"`
	Desc   string `json:"error_description,omitempty"`
}

func (e *RegError) Error() string { return e.Code + ": " + e.Desc }

// BadMetadata is an invalid_client_metadata error.
func BadMetadata(format string, args ...any) *RegError {
	return &RegError{Status: http.StatusBadRequest, Code: "invalid_client_metadata", Desc: fmt.Sprintf(format, args...)}
}

func badRedirect(format string, args ...any) *RegError {
	return &RegError{Status: http.StatusBadRequest, Code: "invalid_redirect_uri", Desc: fmt.Sprintf(format, args...)}
}

// Limits on registered metadata, so a record stays small.
const (
	maxClientName   = 200
	maxRedirectURIs = 20
	maxURILength    = 2000
)

// Rules are what a caller may set: operators anything known, users of the
// self-service pages only the allowed grants and scopes, no consent skip,
// and no name of an operator's client.
type Rules struct {
	Grants      []string // allowed grant types
	Scopes      []string // scopes the caller may give
	Operator    bool     // may set user_id, consent and client_id
	DefaultUser string   // owner of clients this caller creates
	// RegisteredBy, when set, is recorded as who registered a client this
	// caller creates, instead of ByOperator or ByUser.
	RegisteredBy string
	// ReservedNames are names a user's client may not take, compared by
	// NameKey: those of the operator's clients, which a look-alike could
	// otherwise impersonate on the consent screen.
	ReservedNames []string
	// KeyMethods lets a caller who is not the operator register
	// private_key_jwt and self_signed_tls_client_auth clients (the
	// operator may register every method).
	KeyMethods bool
}

// Apply sets the fields of m onto c and checks the result with the same
// rules as a client of the config (Settings.Check). create fills in RFC
// 7591's defaults for fields left out. Its errors are *RegError.
func (m *Metadata) Apply(c *Client, rules Rules, create bool) error {
	if m.ClientID != nil && (!create || !rules.Operator) {
		return BadMetadata("client_id cannot be chosen here")
	}
	if create {
		if m.ClientID != nil {
			if !ValidID(*m.ClientID) {
				return BadMetadata("client_id may only contain letters, digits and -._~ (1 to 128)")
			}
			c.ID = *m.ClientID
		}
		c.UserID = rules.DefaultUser
		c.Consent = authz.ConsentRemember
		c.RegisteredBy = ByUser
		if rules.Operator {
			c.RegisteredBy = ByOperator
		}
		if rules.RegisteredBy != "" {
			c.RegisteredBy = rules.RegisteredBy
		}
		c.Grants = []string{authz.GrantAuthorizationCode} // RFC 7591 §2
	}
	if m.ClientName != nil {
		name := strings.TrimSpace(*m.ClientName)
		if len(name) > maxClientName || strings.IndexFunc(name, unicode.IsControl) >= 0 {
			return BadMetadata("client_name must be at most %d characters with no control characters", maxClientName)
		}
		if !rules.Operator {
			for _, reserved := range rules.ReservedNames {
				if NameKey(name) == NameKey(reserved) {
					return BadMetadata("client_name %q is the name of another application; choose another", safeText(name))
				}
			}
		}
		c.Name = name
	}
	if m.TokenEndpointAuthMethod != nil {
		switch method := *m.TokenEndpointAuthMethod; method {
		case AuthMethodNone:
			if !create && !c.Public {
				return BadMetadata("token_endpoint_auth_method cannot change after registration")
			}
			c.Public = true
		case AuthMethodBasic, AuthMethodPost:
			if !create && (c.Public || c.KeyBased()) {
				return BadMetadata("token_endpoint_auth_method cannot change after registration")
			}
			c.Public = false
			c.AuthMethod = method
		case clientauth.PrivateKeyJWT, clientauth.SelfSignedTLSClientAuth, clientauth.TLSClientAuth:
			if !create && c.AuthMethod != method {
				return BadMetadata("token_endpoint_auth_method cannot change after registration")
			}
			// A certificate's subject means something only under the
			// operator's CAs; keys a client registers are its own.
			if method == clientauth.TLSClientAuth && !rules.Operator {
				return BadMetadata("tls_client_auth is registered by the operator only; use private_key_jwt or self_signed_tls_client_auth")
			}
			if !rules.KeyMethods && !rules.Operator {
				return BadMetadata("token_endpoint_auth_method %s is not available here", method)
			}
			c.Public = false
			c.AuthMethod = method
		default:
			return BadMetadata("token_endpoint_auth_method must be one of %s", strings.Join(AuthMethods, ", "))
		}
	}
	m.keyMetadata.apply(c)
	if m.GrantTypes != nil {
		c.Grants = slices.Compact(slices.Clone(*m.GrantTypes))
	}
	if len(c.Grants) == 0 {
		return BadMetadata("grant_types is empty")
	}
	for _, g := range c.Grants {
		if !slices.Contains(authz.KnownGrants, g) {
			return BadMetadata("unknown grant type %q (known: %s)", safeText(g), strings.Join(authz.KnownGrants, ", "))
		}
		if !slices.Contains(rules.Grants, g) {
			return BadMetadata("grant type %q is not allowed here (allowed: %s)", g, strings.Join(rules.Grants, ", "))
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
		if err := CheckRedirectURI(u); err != nil {
			return badRedirect("%s", safeText(err.Error()))
		}
	}
	if slices.Contains(c.Grants, authz.GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
		return badRedirect("the authorization_code grant needs at least one redirect URI")
	}
	if m.Scope != nil {
		sc, ok := authz.ParseScope(*m.Scope)
		if !ok {
			return BadMetadata("scope is malformed")
		}
		for _, s := range sc {
			switch {
			case slices.Contains(rules.Scopes, s):
			case rules.Operator:
				return BadMetadata("scope %q is not configured (configured: %s)", s, strings.Join(rules.Scopes, " "))
			case len(rules.Scopes) == 0:
				return BadMetadata("scope %q is not allowed here (no scope is)", s)
			default:
				return BadMetadata("scope %q is not allowed here (allowed: %s)", s, strings.Join(rules.Scopes, " "))
			}
		}
		c.Scopes = sc
	}
	if m.UserID != nil {
		if !rules.Operator {
			return BadMetadata("user_id cannot be set here")
		}
		if err := authz.CheckUserID(*m.UserID); err != nil && *m.UserID != "" {
			return BadMetadata("user_id: %v", err)
		}
		c.UserID = *m.UserID
	}
	if m.Consent != nil {
		switch {
		case *m.Consent == authz.ConsentRemember, *m.Consent == authz.ConsentAlways:
		case *m.Consent == authz.ConsentSkip && rules.Operator:
		default:
			if rules.Operator {
				return BadMetadata("consent must be remember, always or skip")
			}
			return BadMetadata("consent must be remember or always")
		}
		c.Consent = *m.Consent
	}
	if m.DPoPBoundAccessTokens != nil {
		c.DPoPBound = *m.DPoPBoundAccessTokens
	}
	if m.TLSClientCertificateBoundAccessTokens != nil {
		c.CertificateBound = *m.TLSClientCertificateBoundAccessTokens
	}
	if err := m.applyOpenID(c, rules); err != nil {
		return err
	}
	// The config's rules, on top: public clients and client_credentials,
	// scope syntax, keys. The id and secret are checked apart.
	s := &Settings{
		ID: "dynamic", Public: c.Public, RedirectURIs: c.RedirectURIs,
		Grants: c.Grants, Scopes: c.Scopes, User: c.UserID,
	}
	if c.KeyBased() {
		s.AuthMethod, s.KeyAuth = c.AuthMethod, c.KeyAuth
	} else if !c.Public {
		s.Secret = "generated"
	}
	if !c.KeyBased() && !c.KeyAuth.IsZero() {
		return BadMetadata("jwks, jwks_uri and tls_client_auth_* go with token_endpoint_auth_method private_key_jwt, self_signed_tls_client_auth or tls_client_auth")
	}
	if err := s.Check(); err != nil {
		msg := strings.NewReplacer(`oauth: client "dynamic": `, "", `oauth: client "dynamic"`, "the client").Replace(err.Error())
		return BadMetadata("%s", msg)
	}
	return nil
}

// NameKey is the form in which client names are compared: Unicode NFKC,
// lower case, runs of spaces as one, no surrounding spaces. Names equal
// under it look alike on a consent screen.
func NameKey(name string) string {
	return strings.Join(strings.Fields(strings.ToLower(norm.NFKC.String(name))), " ")
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
