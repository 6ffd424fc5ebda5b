package authz

import (
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
)

// Resource indicators (RFC 8707) and protected resource metadata (RFC
// 9728). A token may be bound to the resources a client names with the
// resource parameter: its audience, kept in its record (record.Resource,
// the canonical identifiers separated by spaces) and in the aud claim of
// a JWT. A token requested with none is bound to no resource and is
// accepted by every resource that does not require an audience.

// MaxResources bounds the resource parameters of one request.
const MaxResources = 8

// maxResourceLength bounds one resource identifier.
const maxResourceLength = 2048

// ResourceMetadataPath is where RFC 9728 §3 puts a protected resource's
// metadata; a resource with a path has it under this path followed by its
// own.
const ResourceMetadataPath = "/.well-known/oauth-protected-resource"

var errBadResource = errors.New("a resource must be an absolute URI with no fragment, user information, space or quote")

// ParseResource checks a resource identifier (RFC 8707 §2: an absolute
// URI with no fragment) and returns its canonical form: the scheme and
// host in lower case, the scheme's default port left out, and no path
// for "/", so that identifiers that are the same URI compare equal as
// strings. It refuses spaces, quotes, backslashes and other bytes outside
// printable ASCII, which no URI holds, so canonical identifiers can be
// listed with spaces and quoted in a WWW-Authenticate challenge.
func ParseResource(raw string) (string, error) {
	if raw == "" || len(raw) > maxResourceLength {
		return "", errBadResource
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' || c == '#' {
			return "", errBadResource
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.User != nil {
		return "", errBadResource
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Opaque != "" {
		return u.String(), nil
	}
	if u.Host == "" && (u.Scheme == "http" || u.Scheme == "https") {
		return "", errBadResource
	}
	u.Host = strings.ToLower(u.Host)
	if (u.Scheme == "https" && u.Port() == "443") || (u.Scheme == "http" && u.Port() == "80") {
		u.Host = strings.TrimSuffix(u.Host, ":"+u.Port())
	}
	if u.Path == "/" && u.RawQuery == "" && !u.ForceQuery {
		u.Path, u.RawPath = "", ""
	}
	return u.String(), nil
}

// ParseProtectedResource is ParseResource for a resource the gateway
// serves and publishes metadata for: an http or https URL with a host and
// no query, so its metadata URL (RFC 9728 §3.1) is its origin, the
// well-known path and its own path.
func ParseProtectedResource(raw string) (string, error) {
	r, err := ParseResource(raw)
	if err != nil {
		return "", err
	}
	u, _ := url.Parse(r)
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.ForceQuery {
		return "", errors.New("a protected resource must be an http or https URL with a host and no query or fragment")
	}
	return r, nil
}

// ResourceMetadataURL returns the URL of the metadata of a protected
// resource (a canonical identifier ParseProtectedResource accepted), and
// its path: the well-known path inserted between the host and the path
// (RFC 9728 §3.1).
func ResourceMetadataURL(resource string) (metadataURL, path string) {
	u, err := url.Parse(resource)
	if err != nil {
		return "", ""
	}
	path = ResourceMetadataPath + u.EscapedPath()
	return u.Scheme + "://" + u.Host + path, path
}

// ResourceMetadata is the RFC 9728 §2 document of a protected resource.
type ResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers,omitempty"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	// Sender-constrained tokens (RFC 9728 §2): the algorithms of DPoP
	// proofs, whether only DPoP-bound tokens pass, and whether
	// certificate-bound tokens do (over TLS).
	DPoPSigningAlgValuesSupported         []string `json:"dpop_signing_alg_values_supported,omitempty"`
	DPoPBoundAccessTokensRequired         bool     `json:"dpop_bound_access_tokens_required,omitempty"`
	TLSClientCertificateBoundAccessTokens bool     `json:"tls_client_certificate_bound_access_tokens,omitempty"`
}

// HasAudience reports whether a token's audience (its resources separated
// by spaces) names resource. It allocates nothing: oauth_protect asks it
// on every request.
func HasAudience(audience, resource string) bool {
	if resource == "" {
		return false
	}
	for audience != "" {
		i := strings.IndexByte(audience, ' ')
		if i < 0 {
			return audience == resource
		}
		if audience[:i] == resource {
			return true
		}
		audience = audience[i+1:]
	}
	return false
}

// AudienceList is an aud value: a string for one resource, an array for
// several (RFC 7519 §4.1.3, RFC 7662 §2.2).
type AudienceList []string

// Audiences splits a token's audience into an AudienceList.
func Audiences(audience string) AudienceList { return strings.Fields(audience) }

// MarshalJSON implements json.Marshaler.
func (a AudienceList) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON implements json.Unmarshaler.
func (a *AudienceList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = AudienceList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

func errInvalidTarget(desc string) *Error { return oauthErr("invalid_target", 400, desc) }

// requestedResources checks the resource parameters of a request (RFC
// 8707 §2): each must be an absolute URI with no fragment that the
// gateway knows (Config.Resources); otherwise invalid_target. It returns
// their canonical forms, each once, in order; none for a request without.
func (s *Service) requestedResources(values []string) ([]string, error) {
	values = slices.DeleteFunc(slices.Clone(values), func(v string) bool { return v == "" })
	if len(values) == 0 {
		return nil, nil
	}
	if len(values) > MaxResources {
		return nil, errInvalidTarget("the request names too many resources")
	}
	var known map[string]bool
	if s.cfg.Resources != nil {
		var err error
		if known, err = s.cfg.Resources(); err != nil {
			return nil, err
		}
	}
	out := make([]string, 0, len(values))
	for _, v := range values {
		r, err := ParseResource(v)
		if err != nil {
			return nil, errInvalidTarget("resource must be an absolute URI with no fragment")
		}
		if !known[r] {
			return nil, errInvalidTarget("the resource is not one this authorization server issues tokens for")
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// narrowResources decides the audience of an access token from the
// resources its grant covers (granted, "" for every resource) and those
// the request names: the requested ones when the grant covers them all,
// the grant's when none is named. ok is false when the request names a
// resource the grant does not cover (RFC 8707 §2.2).
func narrowResources(granted string, requested []string) (audience string, ok bool) {
	if len(requested) == 0 {
		return granted, true
	}
	if granted != "" {
		for _, r := range requested {
			if !HasAudience(granted, r) {
				return "", false
			}
		}
	}
	return strings.Join(requested, " "), true
}
