package clients

import (
	"encoding/json"
	"fmt"

	"github.com/caddyoauth/gateway/caddyoauth/clientauth"
)

// KeyAuth is how a client without a shared secret proves itself, in RFC
// 7591 and RFC 8705 §2.1.2 names: the public keys of a private_key_jwt or
// self_signed_tls_client_auth client (jwks inline, or jwks_uri), the
// certificate attribute of a tls_client_auth one. The config, the admin
// API, registration and client records all use it.
type KeyAuth struct {
	// A JWK Set of the client's public keys. Default: none.
	JWKS json.RawMessage `json:"jwks,omitempty"`
	// The https URL of the client's JWK Set. Default: none.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// The subject DN (RFC 4514) of a tls_client_auth client's certificate,
	// or one of its subject alternative names. Exactly one of the five for
	// tls_client_auth. Default: none.
	TLSClientAuthSubjectDN string `json:"tls_client_auth_subject_dn,omitempty"`
	TLSClientAuthSANDNS    string `json:"tls_client_auth_san_dns,omitempty"`
	TLSClientAuthSANURI    string `json:"tls_client_auth_san_uri,omitempty"`
	TLSClientAuthSANIP     string `json:"tls_client_auth_san_ip,omitempty"`
	TLSClientAuthSANEmail  string `json:"tls_client_auth_san_email,omitempty"`
}

// MaxInlineJWKS caps an inline jwks.
const MaxInlineJWKS = 16 << 10

// IsZero reports whether k holds nothing.
func (k *KeyAuth) IsZero() bool {
	return len(k.JWKS) == 0 && k.JWKSURI == "" && k.cert() == (clientauth.CertMatch{})
}

func (k *KeyAuth) cert() clientauth.CertMatch {
	return clientauth.CertMatch{SubjectDN: k.TLSClientAuthSubjectDN, DNS: k.TLSClientAuthSANDNS,
		URI: k.TLSClientAuthSANURI, IP: k.TLSClientAuthSANIP, Email: k.TLSClientAuthSANEmail}
}

// Method builds the client authentication method name of k, checked.
func (k *KeyAuth) Method(name string) (*clientauth.Method, error) {
	if len(k.JWKS) > MaxInlineJWKS {
		return nil, fmt.Errorf("jwks is larger than %d bytes; publish it at a jwks_uri", MaxInlineJWKS)
	}
	var jwks []byte
	if len(k.JWKS) > 0 && string(k.JWKS) != "null" {
		jwks = k.JWKS
	}
	return clientauth.NewMethod(name, jwks, k.JWKSURI, k.cert())
}

// KeyAuthOf describes m in KeyAuth's names.
func KeyAuthOf(m *clientauth.Method) KeyAuth {
	k := KeyAuth{JWKSURI: m.JWKSURI, TLSClientAuthSubjectDN: m.Cert.SubjectDN, TLSClientAuthSANDNS: m.Cert.DNS,
		TLSClientAuthSANURI: m.Cert.URI, TLSClientAuthSANIP: m.Cert.IP, TLSClientAuthSANEmail: m.Cert.Email}
	if m.JWKS != nil {
		k.JWKS = m.JWKS.JSON()
	}
	return k
}

// keyMetadata are the KeyAuth fields of a registration or update; when
// any is given, they replace the client's KeyAuth together, so an update
// may move from jwks to jwks_uri.
type keyMetadata struct {
	JWKS                   *json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                *string          `json:"jwks_uri,omitempty"`
	TLSClientAuthSubjectDN *string          `json:"tls_client_auth_subject_dn,omitempty"`
	TLSClientAuthSANDNS    *string          `json:"tls_client_auth_san_dns,omitempty"`
	TLSClientAuthSANURI    *string          `json:"tls_client_auth_san_uri,omitempty"`
	TLSClientAuthSANIP     *string          `json:"tls_client_auth_san_ip,omitempty"`
	TLSClientAuthSANEmail  *string          `json:"tls_client_auth_san_email,omitempty"`
}

// apply replaces c's KeyAuth when m gives any of its fields.
func (m *keyMetadata) apply(c *Client) {
	strs := []*string{m.JWKSURI, m.TLSClientAuthSubjectDN, m.TLSClientAuthSANDNS, m.TLSClientAuthSANURI, m.TLSClientAuthSANIP, m.TLSClientAuthSANEmail}
	given := m.JWKS != nil
	for _, p := range strs {
		given = given || p != nil
	}
	if !given {
		return
	}
	val := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	c.KeyAuth = KeyAuth{JWKSURI: val(m.JWKSURI), TLSClientAuthSubjectDN: val(m.TLSClientAuthSubjectDN),
		TLSClientAuthSANDNS: val(m.TLSClientAuthSANDNS), TLSClientAuthSANURI: val(m.TLSClientAuthSANURI),
		TLSClientAuthSANIP: val(m.TLSClientAuthSANIP), TLSClientAuthSANEmail: val(m.TLSClientAuthSANEmail)}
	if m.JWKS != nil && string(*m.JWKS) != "null" {
		c.KeyAuth.JWKS = *m.JWKS
	}
}

// KeyBased reports whether c authenticates without a shared secret.
func (c *Client) KeyBased() bool { return clientauth.IsMethod(c.AuthMethod) }
