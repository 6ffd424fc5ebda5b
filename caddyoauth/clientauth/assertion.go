package clientauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/json"
	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// Bounds of a client assertion.
const (
	// MaxAssertionSize bounds the assertion, checked before it is parsed.
	MaxAssertionSize = 8 << 10
	// MaxAssertionLifetime is how far ahead of the server's clock exp may
	// be: a replay record lives until exp, so this bounds them.
	MaxAssertionLifetime = time.Hour
	// ClockSkew is the leeway for a client whose clock differs from the
	// server's: exp may be this much past, iat and nbf this much ahead.
	ClockSkew = 30 * time.Second
	// MaxJTILength bounds the jti claim, in bytes.
	MaxJTILength = 256
)

// algorithms are the signature algorithms of private_key_jwt: asymmetric
// only, so never none nor an HMAC (client_secret_jwt would need the
// client's secret, which the gateway keeps only as a digest).
var algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}

// Algorithms returns the names of the accepted signature algorithms, for
// token_endpoint_auth_signing_alg_values_supported.
func Algorithms() []string {
	out := make([]string, len(algorithms))
	for i, a := range algorithms {
		out[i] = string(a)
	}
	return out
}

// Options configure a Verifier.
type Options struct {
	// Replay keeps a record of each assertion accepted, until its exp, so
	// that it is accepted once on every instance sharing the store.
	// Required.
	Replay store.Store
	// AllowPrivateAddresses lets the jwks_uri of a client the operator did
	// not vet be fetched from loopback and private addresses. A vetted
	// client's jwks_uri, which the operator chose, may always be.
	AllowPrivateAddresses bool
	// RootCAs verify the jwks_uri servers' certificates. Default: the
	// system's roots.
	RootCAs *x509.CertPool
	// Logger logs failed fetches. Default: none.
	Logger *zap.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// Verifier checks client assertions and certificates. It is safe for
// concurrent use.
type Verifier struct {
	o     Options
	cache *keyCache
}

// New returns a Verifier.
func New(o Options) *Verifier {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Verifier{o: o, cache: newKeyCache(o.RootCAs, o.Now, o.Logger)}
}

// Client is the client an assertion or certificate is checked for.
type Client struct {
	ID     string
	Method *Method
	// Vetted: the operator registered the client, and so chose its
	// jwks_uri, which may then be on a private address.
	Vetted bool
}

// keys returns c's keys: inline, or from its jwks_uri (refreshed as
// keyCache.get says); fresh reports whether they were just fetched.
func (v *Verifier) keys(ctx context.Context, c Client, refresh bool) (*KeySet, bool, error) {
	m := c.Method
	if m.JWKS != nil {
		return m.JWKS, false, nil
	}
	if m.JWKSURI == "" {
		return nil, false, refuse("the client has no keys")
	}
	ks, fresh, err := v.cache.get(ctx, cacheKey{url: m.JWKSURI, private: c.Vetted || v.o.AllowPrivateAddresses}, refresh)
	if err != nil {
		return nil, false, err
	}
	return ks, fresh, nil
}

// assertionHeader is the JOSE header, read before go-jose parses the
// assertion so that what is refused gets a precise reason. go-jose's JSON
// decoder matches member names exactly and refuses duplicates, so this
// package and go-jose see the same members.
type assertionHeader struct {
	Alg  string          `json:"alg"`
	Typ  *string         `json:"typ"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

type assertionClaims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"`
	Exp *float64        `json:"exp"`
	Iat *float64        `json:"iat"`
	Nbf *float64        `json:"nbf"`
	JTI string          `json:"jti"`
}

// Subject returns the sub claim of an assertion, unverified: the
// client_id to look the client up by when the request names none
// (RFC 7521 §4.2). Verify checks it again.
func Subject(assertion string) (string, error) {
	if len(assertion) > MaxAssertionSize {
		return "", refuse("the client assertion is too large")
	}
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return "", refuse("the client assertion is not a signed JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", refuse("the client assertion is not a signed JWT")
	}
	var c assertionClaims
	if err := json.Unmarshal(payload, &c); err != nil || c.Sub == "" {
		return "", refuse("the client assertion has no sub")
	}
	return c.Sub, nil
}

// VerifyAssertion checks a private_key_jwt client assertion for c (RFC
// 7523 §3, draft-ietf-oauth-rfc7523bis): a JWS signed with an accepted
// alg by one of c's keys (its jwks_uri fetched again, at most once per
// RefreshInterval, when none matches), typ absent, empty, JWT or
// client-authentication+jwt, iss and sub both c's client_id, aud the
// issuer and nothing else, exp present, not past and at most
// MaxAssertionLifetime ahead, iat and nbf, when present, not ahead, and a
// jti never accepted before for c. Once every check has passed the jti is
// recorded until exp, atomically: of simultaneous presentations of one
// assertion, on any instance sharing the store, one is accepted. A
// refused assertion gets an *Error; any other error means the store
// failed and nothing can be said.
func (v *Verifier) VerifyAssertion(ctx context.Context, c Client, assertion, issuer string) error {
	if c.Method == nil || c.Method.Name != PrivateKeyJWT {
		return refuse("the client does not authenticate with private_key_jwt")
	}
	if len(assertion) > MaxAssertionSize {
		return refuse("the client assertion is too large")
	}
	seg, _, ok := strings.Cut(assertion, ".")
	if !ok {
		return refuse("the client assertion is not a signed JWT")
	}
	hb, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return refuse("the client assertion is not a signed JWT")
	}
	var h assertionHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return refuse("the client assertion's header is malformed")
	}
	alg, ok := acceptedAlgorithm(h.Alg)
	if !ok {
		return refuse("the client assertion's alg is not accepted (accepted: %s)", strings.Join(Algorithms(), ", "))
	}
	if h.Typ != nil && !assertionTyp(*h.Typ) {
		return refuse("the client assertion's typ is not JWT or client-authentication+jwt")
	}
	if h.Crit != nil {
		return refuse("the client assertion uses an unsupported header")
	}
	jws, err := jose.ParseSignedCompact(assertion, []jose.SignatureAlgorithm{alg})
	if err != nil || len(jws.Signatures) != 1 {
		return refuse("the client assertion is malformed")
	}

	payload, err := v.verifySignature(ctx, c, jws, alg, h.Kid)
	if err != nil {
		return err
	}
	var cl assertionClaims
	if err := json.Unmarshal(payload, &cl); err != nil {
		return refuse("the client assertion's claims are malformed")
	}
	if cl.Iss != c.ID || cl.Sub != c.ID {
		return refuse("the client assertion's iss and sub must both be the client_id")
	}
	if !soleAudience(cl.Aud, issuer) {
		return refuse("the client assertion's aud must be the issuer, %s, alone", issuer)
	}
	now := v.o.Now()
	if cl.Exp == nil || !finite(*cl.Exp) {
		return refuse("the client assertion has no exp")
	}
	exp := unixTime(*cl.Exp)
	if !now.Before(exp.Add(ClockSkew)) {
		return refuse("the client assertion has expired")
	}
	if exp.After(now.Add(MaxAssertionLifetime + ClockSkew)) {
		return refuse("the client assertion's exp is more than %s ahead", MaxAssertionLifetime)
	}
	for name, t := range map[string]*float64{"iat": cl.Iat, "nbf": cl.Nbf} {
		if t != nil && (!finite(*t) || unixTime(*t).After(now.Add(ClockSkew))) {
			return refuse("the client assertion's %s is in the future", name)
		}
	}
	if cl.JTI == "" || len(cl.JTI) > MaxJTILength {
		return refuse("the client assertion needs a jti of at most %d bytes", MaxJTILength)
	}
	ttl := exp.Add(ClockSkew).Sub(now)
	err = v.o.Replay.Create(ctx, replayKey(c.ID, cl.JTI), []byte{'1'}, max(ttl, time.Second))
	switch {
	case errors.Is(err, store.ErrConflict):
		return refuse("the client assertion was already used")
	case err != nil:
		return fmt.Errorf("clientauth: recording the assertion: %w", err)
	}
	return nil
}

// verifySignature finds the key of c that made the signature and returns
// the payload: the keys under kid (all when there is none) are tried; a
// jwks_uri whose keys match none is fetched again once.
func (v *Verifier) verifySignature(ctx context.Context, c Client, jws *jose.JSONWebSignature, alg jose.SignatureAlgorithm, kid string) ([]byte, error) {
	for refresh := range 2 {
		ks, fresh, err := v.keys(ctx, c, refresh == 1)
		if err != nil {
			return nil, err
		}
		if refresh == 1 && !fresh {
			break // refreshed too recently
		}
		for _, k := range ks.candidates(alg, kid) {
			if payload, err := jws.Verify(k.Key); err == nil {
				return payload, nil
			}
		}
		if c.Method.JWKSURI == "" || fresh {
			break // nothing newer to fetch
		}
	}
	return nil, refuse("the client assertion is not signed by a key of the client")
}

func acceptedAlgorithm(name string) (jose.SignatureAlgorithm, bool) {
	for _, a := range algorithms {
		if string(a) == name {
			return a, true
		}
	}
	return "", false
}

// assertionTyp accepts the typ of a client assertion: JWT, or the
// explicit type of draft-ietf-oauth-rfc7523bis, with or without the
// application/ prefix (RFC 7515 §4.1.9), in any case; or an empty one,
// which some libraries send for none. Any other type is a JWT made for
// something else.
func assertionTyp(typ string) bool {
	t := strings.TrimPrefix(strings.ToLower(typ), "application/")
	return t == "" || t == "jwt" || t == "client-authentication+jwt"
}

// soleAudience reports whether aud is issuer alone: as a string, or as
// an array of that one string.
func soleAudience(aud json.RawMessage, issuer string) bool {
	if issuer == "" || len(aud) == 0 {
		return false
	}
	var s string
	if json.Unmarshal(aud, &s) == nil {
		return s == issuer
	}
	var list []string
	if json.Unmarshal(aud, &list) == nil {
		return len(list) == 1 && list[0] == issuer
	}
	return false
}

func finite(f float64) bool {
	return !math.IsNaN(f) && !math.IsInf(f, 0) && math.Abs(f) < 1<<40
}

func unixTime(f float64) time.Time {
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9))
}

// replayKey is the store key of an accepted assertion: a digest of the
// client_id and jti, never the jti itself.
func replayKey(clientID, jti string) string {
	var b bytes.Buffer
	for _, part := range []string{clientID, jti} {
		fmt.Fprintf(&b, "%d:%s", len(part), part)
	}
	d := sha256.Sum256(b.Bytes())
	return "cajti:" + base64.RawURLEncoding.EncodeToString(d[:])
}
