package authz

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Access token formats.
const (
	// FormatOpaque access tokens are 256 random bits the gateway looks up.
	FormatOpaque = "opaque"
	// FormatJWT access tokens are signed JWTs (RFC 9068) that a resource
	// server can verify against the gateway's JWKS.
	FormatJWT = "jwt"
)

// jwtHeader is the JOSE header of an access token (RFC 9068 §2.1).
type jwtHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

// jwtClaims are the claims of an access token (RFC 9068 §2.2).
type jwtClaims struct {
	Issuer   string       `json:"iss"`
	Subject  string       `json:"sub"`
	Audience AudienceList `json:"aud"`
	ClientID string       `json:"client_id"`
	Scope    string       `json:"scope,omitempty"`
	Expiry   int64        `json:"exp"`
	IssuedAt int64        `json:"iat"`
	JTI      string       `json:"jti"`
	// Cnf is what a bound token is bound to (RFC 9449 §6.1, RFC 8705 §3.1).
	Cnf *Confirmation `json:"cnf,omitempty"`
}

// errNoIssuer fails what needs the issuer when the config gives none.
var errNoIssuer = errors.New("no issuer is configured")

// Issuer is the gateway's issuer identifier (RFC 8414 §2: no trailing
// slash), from Config.Issuer: never from a request, so no Host header can
// name the issuer of the tokens, metadata and authorization responses.
func (s *Service) Issuer() (string, error) {
	if s.cfg.Issuer == nil {
		return "", errNoIssuer
	}
	iss, err := s.cfg.Issuer()
	if err != nil {
		return "", err
	}
	if iss = strings.TrimSuffix(iss, "/"); iss == "" {
		return "", errNoIssuer
	}
	return iss, nil
}

// audience is the aud claim of access tokens: the configured audience, or
// the issuer.
func (s *Service) audience(issuer string) string {
	if s.cfg.Audience != "" {
		return s.cfg.Audience
	}
	return issuer
}

// newAccessToken makes an access token in the configured format. Every
// access token, whichever grant or refresh issues it, comes from here.
// A JWT's aud is the token's resources (aud, separated by spaces), or
// else the configured audience.
func (s *Service) newAccessToken(ctx context.Context, clientID, userID, scope, aud string, iat time.Time, ttl time.Duration) (string, error) {
	if s.keys == nil {
		return randomToken(), nil
	}
	key, err := s.keys.current(ctx)
	if err != nil {
		return "", err
	}
	iss, err := s.Issuer()
	if err != nil {
		return "", err
	}
	sub := userID
	if sub == "" {
		sub = clientID
	}
	c := jwtClaims{Issuer: iss, Subject: sub, Audience: AudienceList{s.audience(iss)}, ClientID: clientID, Scope: scope,
		IssuedAt: iat.Unix(), JTI: newFamily(), Cnf: accessCnf(ctx)}
	if aud != "" {
		c.Audience = Audiences(aud)
	}
	if ttl > 0 {
		c.Expiry = iat.Add(ttl).Unix()
	} else {
		// RFC 9068 requires exp; a token "without expiry" gets ten years.
		c.Expiry = iat.AddDate(10, 0, 0).Unix()
	}
	return signJWT(key, c)
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signJWT makes the JWS compact serialization (RFC 7515 §3.1) of an
// access token's claims.
func signJWT(k *signingKey, c jwtClaims) (string, error) { return signJWS(k, "at+jwt", c) }

// signJWS makes the JWS compact serialization of claims with the typ
// header typ.
func signJWS(k *signingKey, typ string, claims any) (string, error) {
	h, _ := json.Marshal(jwtHeader{Alg: k.alg, Typ: typ, Kid: k.kid})
	p, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64url(h) + "." + b64url(p)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	switch priv := k.priv.(type) {
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, priv, digest[:])
		if err != nil {
			return "", err
		}
		// RFC 7518 §3.4: R and S as fixed 32-byte big-endian integers.
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	case *rsa.PrivateKey:
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, digest[:]); err != nil {
			return "", err
		}
	default:
		return "", errors.New("unsupported signing key type")
	}
	return input + "." + b64url(sig), nil
}

// noteJWT copies a JWT access token's jti, iss and aud into its record, for
// introspection; it leaves the record of an opaque token alone. The aud of
// a token for resources is in the record's Resource already.
func (r *record) noteJWT(access string) {
	if !looksLikeJWT(access) {
		return
	}
	if c, ok := jwtClaimsOf(access); ok {
		r.JTI, r.Issuer = c.JTI, c.Issuer
		if r.Resource == "" && len(c.Audience) == 1 {
			r.Audience = c.Audience[0]
		}
	}
}

// looksLikeJWT reports whether a token has the three parts of a JWS.
func looksLikeJWT(token string) bool { return strings.Count(token, ".") == 2 }

// issuedJWTKid returns the kid of a JWT this service signed, without a
// JSON decoder: only for a token whose record was found, so the header is
// the one signJWT wrote (kids are base64url, never escaped).
func issuedJWTKid(token string) string {
	seg, _, _ := strings.Cut(token, ".")
	var buf [256]byte
	if base64.RawURLEncoding.DecodedLen(len(seg)) > len(buf) {
		return ""
	}
	n, err := base64.RawURLEncoding.Decode(buf[:], []byte(seg))
	if err != nil {
		return ""
	}
	h := buf[:n]
	const field = `"kid":"`
	i := bytes.Index(h, []byte(field))
	if i < 0 {
		return ""
	}
	h = h[i+len(field):]
	j := bytes.IndexByte(h, '"')
	if j < 0 {
		return ""
	}
	return string(h[:j])
}

// jwtClaimsOf decodes the claims of a compact JWS without checking its
// signature: for a token this service just signed.
func jwtClaimsOf(token string) (*jwtClaims, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, false
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, false
	}
	c := new(jwtClaims)
	if json.Unmarshal(pb, c) != nil {
		return nil, false
	}
	return c, true
}

// checkIssuedJWT is what an issued JWT access token must still pass once
// its record is found (Validate, Introspect): the record, keyed by the
// digest of all the token's bytes, proves this service signed it, so no
// signature check runs; but its key must still be published, as every
// resource server verifying against the JWKS requires, and its iss and aud
// (kept in the record) must be the gateway's current ones: a token issued
// under another issuer, or before the issuer changed, is refused; the aud
// of a token for resources is those resources, which oauth_protect
// checks. An opaque token passes.
func (s *Service) checkIssuedJWT(ctx context.Context, token string, r *record) error {
	if s.keys == nil || !looksLikeJWT(token) {
		return nil
	}
	k, err := s.keys.byKid(ctx, issuedJWTKid(token))
	if err != nil {
		return err
	} else if k == nil {
		return ErrTokenInvalid
	}
	iss, err := s.Issuer()
	if err != nil {
		return err
	}
	if r.Issuer != iss || (r.Resource == "" && r.Audience != s.audience(iss)) {
		return ErrTokenInvalid
	}
	return nil
}
