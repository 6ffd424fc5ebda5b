package authz

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/caddyoauth/gateway/caddyoauth/dpop"
)

// Sender-constrained tokens: an access token (and a public client's
// refresh token) bound to a key the client proves it holds on every use
// (DPoP, RFC 9449) or to the TLS client certificate it was issued over
// (RFC 8705 §3). The binding is the token's confirmation, kept in its
// record, and shown as cnf in JWTs and introspection.

// Confirmation is what a token is bound to (RFC 7800 cnf): the thumbprint
// of a DPoP key, of a TLS client certificate, or both. A token without
// one is a bearer token.
type Confirmation struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the DPoP key, base64url.
	JKT string `json:"jkt,omitempty"`
	// X5T is the SHA-256 digest of the DER certificate, base64url.
	X5T string `json:"x5t#S256,omitempty"`
}

// Token types of token responses and introspection.
const (
	TokenTypeBearer = "Bearer"
	TokenTypeDPoP   = "DPoP"
)

// CertificateThumbprint returns the x5t#S256 of a DER certificate.
func CertificateThumbprint(der []byte) string {
	d := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(d[:])
}

// peerThumbprint is the x5t#S256 of the client certificate of a TLS
// connection, or "" when it presented none.
func peerThumbprint(cs *tls.ConnectionState) string {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return ""
	}
	return CertificateThumbprint(cs.PeerCertificates[0].Raw)
}

// binding is what a token request proved: the key of its DPoP proof and
// the certificate of its connection. It decides what the tokens it gets
// are bound to.
type binding struct {
	jkt, x5t string
	// access is the confirmation of the access token, refresh that of a
	// new refresh token; nil for a bearer token.
	access, refresh *Confirmation
	nonce           string // a newer DPoP nonce for the client
}

type bindingKey struct{}

func bindingOf(ctx context.Context) *binding {
	b, _ := ctx.Value(bindingKey{}).(*binding)
	return b
}

// accessCnf is the confirmation of an access token issued in ctx.
func accessCnf(ctx context.Context) *Confirmation {
	if b := bindingOf(ctx); b != nil {
		return b.access
	}
	return nil
}

// bindTokenRequest checks the DPoP proof of a token request by client c,
// and reads the certificate of its connection. A request with a proof gets
// DPoP-bound tokens, one by a certificate-bound client tokens bound to its
// certificate; a public client's refresh token is bound as its access
// token is (RFC 9449 §5, RFC 8705 §4), a confidential client's being
// bound to its authentication already.
func (s *Service) bindTokenRequest(r *http.Request, c *Client) (context.Context, *binding, error) {
	ctx := r.Context()
	b := &binding{x5t: peerThumbprint(r.TLS)}
	proofs := r.Header.Values(dpop.HeaderName)
	if len(proofs) > 0 || c.DPoPRequired {
		if s.cfg.DPoP == nil {
			if c.DPoPRequired {
				return ctx, nil, errInvalidDPoP(&dpop.Error{Code: dpop.CodeInvalidProof, Description: "DPoP is not available"})
			}
		} else {
			iss, err := s.Issuer()
			if err != nil {
				return ctx, nil, err
			}
			p, err := s.cfg.DPoP.Verify(ctx, dpop.Request{Method: r.Method, URL: iss + s.cfg.TokenPath, Proofs: proofs})
			if err != nil {
				return ctx, nil, errInvalidDPoP(err)
			}
			b.jkt, b.nonce = p.JKT, p.NextNonce
			b.access = &Confirmation{JKT: p.JKT}
		}
	}
	if c.CertificateBound {
		if b.x5t == "" {
			return ctx, nil, errInvalidRequest("the client's tokens are bound to its TLS client certificate: present it on this connection")
		}
		if b.access == nil {
			b.access = new(Confirmation)
		}
		b.access.X5T = b.x5t
	}
	if c.Public && b.access != nil {
		cnf := *b.access
		b.refresh = &cnf
	}
	return context.WithValue(ctx, bindingKey{}, b), b, nil
}

// errInvalidDPoP is the token endpoint's answer to a refused proof: 400
// with its RFC 9449 code; a failed replay cache or nonce source is the
// store failing.
func errInvalidDPoP(err error) error {
	var e *dpop.Error
	if !errors.As(err, &e) {
		return err
	}
	return &Error{Code: e.Code, Description: e.Description, Status: http.StatusBadRequest, DPoPNonce: e.Nonce}
}

// checkRefreshBinding refuses a bound refresh token presented without its
// key or certificate, before anything is spent.
func checkRefreshBinding(ctx context.Context, rt *record) error {
	if rt.Cnf == nil {
		return nil
	}
	b := bindingOf(ctx)
	if b == nil {
		b = new(binding)
	}
	if rt.Cnf.JKT != "" {
		if b.jkt == "" {
			return &Error{Code: dpop.CodeInvalidProof, Status: http.StatusBadRequest, Description: "the refresh token is DPoP-bound: send a DPoP proof"}
		}
		if subtle.ConstantTimeCompare([]byte(b.jkt), []byte(rt.Cnf.JKT)) != 1 {
			return &Error{Code: dpop.CodeInvalidProof, Status: http.StatusBadRequest, Description: "the DPoP key is not the one the refresh token is bound to"}
		}
	}
	if rt.Cnf.X5T != "" && subtle.ConstantTimeCompare([]byte(b.x5t), []byte(rt.Cnf.X5T)) != 1 {
		return errInvalidGrant("the refresh token is bound to a TLS client certificate this connection did not present")
	}
	return nil
}

// AccessToken reads the access token of an Authorization header in the
// Bearer (RFC 6750 §2.1) or DPoP (RFC 9449 §7.1) scheme, either in any
// case. found is false when the request sent no such credentials, ok
// false when it is malformed: several Authorization headers, or a token
// that is not a b64token.
func AccessToken(h http.Header) (token string, dpopScheme, found, ok bool) {
	vals := h.Values("Authorization")
	if len(vals) == 0 {
		return "", false, false, true
	}
	if len(vals) > 1 {
		return "", false, true, false
	}
	scheme, rest, _ := strings.Cut(vals[0], " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
	case strings.EqualFold(scheme, dpop.Scheme):
		dpopScheme = true
	default:
		return "", false, false, true
	}
	token = strings.TrimLeft(rest, " ")
	if !isB64Token(token) {
		return "", dpopScheme, true, false
	}
	return token, dpopScheme, true, true
}

// SenderRequest is a request presenting an access token to a protected
// resource, as CheckSender judges it.
type SenderRequest struct {
	// Method and URL are the request's method and its absolute target URI
	// as the client addressed it, which a DPoP proof names (htm, htu).
	Method, URL string
	// Header holds the request's DPoP header, if any.
	Header http.Header
	// TLS is the state of the request's connection; nil without TLS.
	TLS *tls.ConnectionState
	// Token is the access token, DPoP whether it came in the DPoP scheme.
	Token string
	DPoP  bool
}

// Refusals of CheckSender besides a refused proof (*dpop.Error): the
// request gets 401 invalid_token.
var (
	ErrDPoPBoundAsBearer = errors.New("the access token is DPoP-bound: send it in the DPoP scheme with a DPoP proof")
	ErrNotDPoPBound      = errors.New("the access token is not DPoP-bound: send it in the Bearer scheme")
	ErrCertificateBound  = errors.New("the access token is bound to a TLS client certificate this connection did not present")
	ErrDPoPUnavailable   = errors.New("DPoP is not available")
)

// CheckSender checks that the sender of an access token is the one it is
// bound to (id.Cnf, from Validate): a DPoP-bound token comes in the DPoP
// scheme with a proof for this request made with its key (one signature
// check, one replay record), a certificate-bound one over a connection
// presenting its certificate. A bearer token in the Bearer scheme passes
// without any work; one in the DPoP scheme is refused. It returns the
// nonce to hand the client next, if any. A refused proof is a
// *dpop.Error; a replay cache or nonce source that cannot answer is any
// other error.
func (s *Service) CheckSender(ctx context.Context, r SenderRequest, id *Identity) (nextNonce string, err error) {
	cnf := id.Cnf
	switch {
	case cnf == nil && !r.DPoP:
		return "", nil
	case r.DPoP && (cnf == nil || cnf.JKT == ""):
		return "", ErrNotDPoPBound
	case !r.DPoP && cnf.JKT != "":
		return "", ErrDPoPBoundAsBearer
	}
	if cnf.X5T != "" && subtle.ConstantTimeCompare([]byte(peerThumbprint(r.TLS)), []byte(cnf.X5T)) != 1 {
		return "", ErrCertificateBound
	}
	if cnf.JKT == "" {
		return "", nil
	}
	if s.cfg.DPoP == nil {
		return "", ErrDPoPUnavailable
	}
	p, err := s.cfg.DPoP.Verify(ctx, dpop.Request{Method: r.Method, URL: r.URL, Proofs: r.Header.Values(dpop.HeaderName),
		AccessToken: r.Token, BoundKey: cnf.JKT})
	if err != nil {
		return "", err
	}
	return p.NextNonce, nil
}

// DPoP returns the verifier of DPoP proofs; nil when none is configured.
func (s *Service) DPoP() *dpop.Verifier { return s.cfg.DPoP }
