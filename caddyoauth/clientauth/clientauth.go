// Package clientauth authenticates OAuth clients that hold no shared
// secret: by a JWT signed with the client's private key (private_key_jwt,
// RFC 7523 §2.2 and OpenID Connect Core §9), or by the client certificate
// of the TLS connection (RFC 8705 §2: tls_client_auth, matched against the
// subject or a subject alternative name its registration names, with the
// chain verified by the TLS server; self_signed_tls_client_auth, the
// certificate's public key registered in the client's JWK Set). A client's
// keys come inline (jwks) or from its jwks_uri, fetched through safefetch
// and cached with bounds. It has no Caddy in it.
package clientauth

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/caddyoauth/gateway/caddyoauth/safefetch"
)

// Token endpoint authentication methods (RFC 7591 §2, RFC 8705 §2.1.1,
// §2.2.1) of clients without a shared secret.
const (
	PrivateKeyJWT           = "private_key_jwt"
	TLSClientAuth           = "tls_client_auth"
	SelfSignedTLSClientAuth = "self_signed_tls_client_auth"
)

// Methods lists the methods of this package.
var Methods = []string{PrivateKeyJWT, TLSClientAuth, SelfSignedTLSClientAuth}

// IsMethod reports whether name is a method of this package.
func IsMethod(name string) bool {
	return name == PrivateKeyJWT || name == TLSClientAuth || name == SelfSignedTLSClientAuth
}

// AssertionType is the client_assertion_type of a JWT client assertion
// (RFC 7523 §2.2).
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Method is how a client without a shared secret authenticates, as
// registered. It is not changed once built, so clients share it.
type Method struct {
	// Name is PrivateKeyJWT, TLSClientAuth or SelfSignedTLSClientAuth.
	Name string
	// JWKS holds the client's public keys given inline; JWKSURI, the
	// https URL they are fetched from. private_key_jwt and
	// self_signed_tls_client_auth take one of them.
	JWKS    *KeySet
	JWKSURI string
	// Cert is what tls_client_auth matches the certificate with.
	Cert CertMatch
}

// CertMatch names the one attribute of the client certificate that
// tls_client_auth matches (RFC 8705 §2.1.2); exactly one field is set.
type CertMatch struct {
	SubjectDN string // an RFC 4514 string, compared attribute by attribute
	DNS       string // a dNSName SAN, compared without regard to case
	URI       string // a uniformResourceIdentifier SAN, compared exactly
	IP        string // an iPAddress SAN, compared as an address
	Email     string // an rfc822Name SAN; the domain without regard to case
}

// set returns the number of fields set.
func (m CertMatch) set() int {
	n := 0
	for _, v := range []string{m.SubjectDN, m.DNS, m.URI, m.IP, m.Email} {
		if v != "" {
			n++
		}
	}
	return n
}

// NewMethod builds and checks a method from a registration: jwks is the
// JSON of a JWK Set given inline (nil for none). Its errors describe the
// registration, never a key.
func NewMethod(name string, jwks []byte, jwksURI string, cert CertMatch) (*Method, error) {
	m := &Method{Name: name, JWKSURI: jwksURI, Cert: cert}
	switch name {
	case PrivateKeyJWT, SelfSignedTLSClientAuth:
		if (jwks == nil) == (jwksURI == "") {
			return nil, fmt.Errorf("%s needs jwks or jwks_uri, not both", name)
		}
		if cert.set() > 0 {
			return nil, fmt.Errorf("%s takes no tls_client_auth attribute", name)
		}
	case TLSClientAuth:
		if jwks != nil || jwksURI != "" {
			return nil, errors.New("tls_client_auth takes no jwks or jwks_uri: the certificate's chain and subject are checked")
		}
		if cert.set() != 1 {
			return nil, errors.New("tls_client_auth needs exactly one of the subject DN, a DNS, URI, IP or email SAN")
		}
		if err := cert.check(); err != nil {
			return nil, err
		}
		return m, nil
	default:
		return nil, fmt.Errorf("unknown client authentication method %q (known: %s)", name, strings.Join(Methods, ", "))
	}
	if jwksURI != "" {
		if err := CheckJWKSURI(jwksURI); err != nil {
			return nil, err
		}
		return m, nil
	}
	ks, err := ParseKeySet(jwks)
	if err != nil {
		return nil, fmt.Errorf("jwks: %v", err)
	}
	m.JWKS = ks
	return m, nil
}

// MaxJWKSURILength caps a jwks_uri.
const MaxJWKSURILength = 2000

// CheckJWKSURI accepts an https URL that safefetch may fetch, with no
// fragment. Its address is checked when fetching.
func CheckJWKSURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || len(raw) > MaxJWKSURILength || u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("jwks_uri must be an https URL of at most 2000 characters with no fragment")
	}
	if err := safefetch.CheckURL(u); err != nil {
		return fmt.Errorf("jwks_uri: %v", err)
	}
	return nil
}

func (m CertMatch) check() error {
	switch {
	case m.SubjectDN != "":
		if _, err := parseDN(m.SubjectDN); err != nil {
			return fmt.Errorf("tls_client_auth subject: %v", err)
		}
	case m.IP != "":
		if _, err := netip.ParseAddr(m.IP); err != nil {
			return errors.New("tls_client_auth san_ip is not an IP address")
		}
	case m.URI != "":
		if u, err := url.Parse(m.URI); err != nil || !u.IsAbs() {
			return errors.New("tls_client_auth san_uri is not an absolute URI")
		}
	case m.Email != "":
		if at := strings.LastIndexByte(m.Email, '@'); at <= 0 || at == len(m.Email)-1 {
			return errors.New("tls_client_auth san_email is not an email address")
		}
	case m.DNS != "":
		if strings.ContainsAny(m.DNS, " /:@") {
			return errors.New("tls_client_auth san_dns is not a DNS name")
		}
	}
	return nil
}

// Fingerprint identifies the method with its keys or certificate
// attribute: it changes when any of them does.
func (m *Method) Fingerprint() []byte {
	h := sha256.New()
	for _, part := range []string{m.Name, m.JWKSURI, m.Cert.SubjectDN, m.Cert.DNS, m.Cert.URI, m.Cert.IP, m.Cert.Email} {
		fmt.Fprintf(h, "%d:%s;", len(part), part)
	}
	if m.JWKS != nil {
		h.Write(m.JWKS.raw)
	}
	return h.Sum(nil)
}

// Error is a refused client authentication: the client is answered
// invalid_client (RFC 6749 §5.2). Its description names no key, claim
// value or assertion, so it can be sent and logged.
type Error struct{ Description string }

func (e *Error) Error() string { return "client authentication failed: " + e.Description }

func refuse(format string, args ...any) *Error {
	return &Error{Description: fmt.Sprintf(format, args...)}
}
