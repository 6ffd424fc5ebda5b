// Package clientdoc resolves OAuth client ID metadata documents
// (draft-ietf-oauth-client-id-metadata-document): a client_id that is an
// https URL names the JSON client metadata served there, which the
// gateway fetches through safefetch, checks, caches, and turns into an
// unvetted public client. It has no Caddy in it.
package clientdoc

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/clients"
	"github.com/caddyoauth/gateway/caddyoauth/safefetch"
)

// Limits of a document and of what it may hold.
const (
	// MaxDocumentBytes is the most of a document read: the draft's
	// recommended 5 KiB. A longer one is refused.
	MaxDocumentBytes = 5 << 10
	// MaxClientIDLength caps the URL.
	MaxClientIDLength = 2000
	maxClientName     = 200
	maxRedirectURIs   = 20
)

// IsURL reports whether a client_id is to be resolved as a client ID
// metadata document: one that starts with https://. The gateway's own
// client_ids never contain ':'.
func IsURL(clientID string) bool { return strings.HasPrefix(clientID, "https://") }

// CheckClientID applies the draft's rules for a client identifier URL:
// https, a host, no user name or password, a path with no "." or ".."
// segment (also percent-encoded), no fragment. A query is allowed, as the
// draft only advises against one. The host's address is checked when
// fetching.
func CheckClientID(id string) error {
	if len(id) > MaxClientIDLength {
		return errors.New("the client_id URL is too long")
	}
	if strings.ContainsAny(id, "#\\") || strings.IndexFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return errors.New("the client_id URL has a fragment, a backslash, a space or a control character")
	}
	u, err := url.Parse(id)
	if err != nil || !IsURL(id) {
		return errors.New("the client_id is not an https URL")
	}
	if err := safefetch.CheckURL(u); err != nil {
		return fmt.Errorf("the client_id URL: %v", err)
	}
	if u.Path == "" {
		return errors.New("the client_id URL has no path")
	}
	for seg := range strings.SplitSeq(u.Path, "/") {
		if seg == "." || seg == ".." {
			return errors.New("the client_id URL has a . or .. path segment")
		}
	}
	return nil
}

// Document is the part of a client ID metadata document the gateway uses,
// in RFC 7591 names.
type Document struct {
	ClientID                string   `json:"client_id"`
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	Scope                   *string  `json:"scope"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	LogoURI                 string   `json:"logo_uri"`
	ClientURI               string   `json:"client_uri"`

	// Present only to be refused: the draft forbids shared secrets and
	// private keys in a document.
	ClientSecret          json.RawMessage `json:"client_secret"`
	ClientSecretExpiresAt json.RawMessage `json:"client_secret_expires_at"`
	JWKS                  *struct {
		Keys []map[string]json.RawMessage `json:"keys"`
	} `json:"jwks"`
}

// Parse decodes a document served for clientID with the given header and
// checks it: JSON, the client_id equal to clientID byte for byte, a
// public client (token_endpoint_auth_method none or left out) with at
// least one acceptable redirect URI.
func Parse(clientID string, header http.Header, body []byte) (*Document, error) {
	mt, _, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
		return nil, errors.New("the document is not served as JSON")
	}
	d := new(Document)
	if err := json.Unmarshal(body, d); err != nil {
		return nil, errors.New("the document is not a JSON object of client metadata")
	}
	if d.ClientID != clientID {
		return nil, errors.New("the document's client_id is not its URL")
	}
	switch d.TokenEndpointAuthMethod {
	case "", clients.AuthMethodNone:
	case clients.AuthMethodBasic, clients.AuthMethodPost, "client_secret_jwt":
		return nil, errors.New("the document asks for a shared secret, which a client ID metadata document cannot have")
	default:
		return nil, errors.New("the document's token_endpoint_auth_method is not supported here (only none is)")
	}
	if d.ClientSecret != nil || d.ClientSecretExpiresAt != nil {
		return nil, errors.New("the document holds a client_secret, which a client ID metadata document cannot have")
	}
	if d.JWKS != nil {
		for _, k := range d.JWKS.Keys {
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"} {
				if _, ok := k[private]; ok {
					return nil, errors.New("the document holds private key material")
				}
			}
		}
	}
	d.ClientName = strings.TrimSpace(d.ClientName)
	if len(d.ClientName) > maxClientName || strings.IndexFunc(d.ClientName, unicode.IsControl) >= 0 {
		return nil, fmt.Errorf("the document's client_name is longer than %d characters or has control characters", maxClientName)
	}
	if len(d.RedirectURIs) == 0 || len(d.RedirectURIs) > maxRedirectURIs {
		return nil, fmt.Errorf("the document must list 1 to %d redirect_uris", maxRedirectURIs)
	}
	for _, u := range d.RedirectURIs {
		if len(u) > MaxClientIDLength || clients.CheckRedirectURI(u) != nil {
			return nil, errors.New("a redirect URI of the document is not an acceptable one")
		}
	}
	if d.ResponseTypes != nil && !slices.Contains(d.ResponseTypes, "code") {
		return nil, errors.New("the document's response_types leave out code")
	}
	if d.GrantTypes != nil && !slices.Contains(d.GrantTypes, authz.GrantAuthorizationCode) {
		return nil, errors.New("the document's grant_types leave out authorization_code")
	}
	if d.Scope != nil {
		if _, ok := authz.ParseScope(*d.Scope); !ok {
			return nil, errors.New("the document's scope is malformed")
		}
	}
	for _, link := range []string{d.LogoURI, d.ClientURI} {
		if u, err := url.Parse(link); link != "" && (err != nil || u.Scheme != "https" || u.Host == "") {
			return nil, errors.New("the document's logo_uri or client_uri is not an https URL")
		}
	}
	return d, nil
}

// Client is the document as the authorization server sees it: a public
// client with the authorization_code grant (and refresh_token when the
// document lists it), the document's scopes among allowed (all of
// allowed when it names none), unvetted, from the client_id's host.
func (d *Document) Client(allowed []string) *authz.Client {
	host := d.ClientID
	if u, err := url.Parse(d.ClientID); err == nil {
		host = u.Host
	}
	grants := []string{authz.GrantAuthorizationCode}
	if slices.Contains(d.GrantTypes, authz.GrantRefreshToken) {
		grants = append(grants, authz.GrantRefreshToken)
	}
	scopes := slices.Clone(allowed)
	if d.Scope != nil {
		asked, _ := authz.ParseScope(*d.Scope)
		scopes = slices.DeleteFunc(asked, func(s string) bool { return !slices.Contains(allowed, s) })
	}
	name := d.ClientName
	if name == "" {
		name = host
	}
	return &authz.Client{
		ID: d.ClientID, Name: name, Public: true,
		RedirectURIs: slices.Compact(slices.Clone(d.RedirectURIs)),
		Grants:       grants, Scopes: scopes,
		Consent: authz.ConsentRemember, Unvetted: true, Host: host,
	}
}
