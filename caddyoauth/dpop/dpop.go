// Package dpop checks DPoP proofs (RFC 9449), the signed JWTs with which a
// client proves, on every request, that it holds the private key an access
// or refresh token is bound to. It knows nothing of Caddy: the gateway
// passes it the request's method, target URI, DPoP header values and access
// token, and maps its errors to responses.
//
// A proof accepted by Verifier.Verify
//   - arrived as the request's only DPoP header value, at most MaxProofSize
//     bytes long, in JWS compact form;
//   - has typ "dpop+jwt", an asymmetric alg from the verifier's list (never
//     "none" nor an HMAC), and a public key, without any private member,
//     in its jwk header whose type and size fit alg (RSA: 2048 to 4096
//     bits);
//   - is signed by that key;
//   - names the request's method (htm) and target URI (htu, compared after
//     RFC 3986 syntax- and scheme-based normalisation, query and fragment
//     ignored);
//   - was issued (iat) within MaxAge before and MaxSkew after the server's
//     clock;
//   - carries, when an access token comes with the request, ath, the hash
//     of that very token, and its key is the one the token is bound to;
//   - carries, when a NonceSource is configured, a nonce it accepts;
//   - has a jti of at most MaxJTILength bytes never accepted before for the
//     same key, method and URI during the proof's acceptance window. The
//     ReplayCache records a digest, never the proof, and records it
//     atomically, so that of simultaneous presentations of one proof, on
//     any instance sharing the cache, exactly one is accepted.
//
// A refused proof gets an *Error whose Code is an RFC 9449 error code and
// whose Description never contains the proof, the token or any claim value.
package dpop

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/json"
)

const (
	// HeaderName is the request header carrying the proof.
	HeaderName = "DPoP"
	// NonceHeader is the response header carrying a server nonce.
	NonceHeader = "DPoP-Nonce"
	// Scheme is the authorization scheme of DPoP-bound access tokens.
	Scheme = "DPoP"
	// ProofType is the only typ header a proof may have.
	ProofType = "dpop+jwt"

	// MaxProofSize bounds the proof, checked before it is parsed.
	MaxProofSize = 8 << 10
	// MaxJTILength bounds the jti claim, in bytes.
	MaxJTILength = 128
	// MaxNonceLength bounds the nonce claim, in bytes.
	MaxNonceLength = 256

	// DefaultMaxAge is how old (iat) a proof may be by default.
	DefaultMaxAge = 60 * time.Second
	// DefaultMaxSkew is how far in the future iat may be by default, for
	// clients whose clock runs ahead.
	DefaultMaxSkew = 5 * time.Second
)

// supported lists the algorithms a verifier can accept, in the order the
// challenge advertises them: asymmetric signatures only.
var supported = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.EdDSA, jose.RS256, jose.PS256}

// minRSABits is the smallest RSA modulus accepted in a proof's jwk.
const minRSABits = 2048

// SupportedAlgorithms returns the names of the algorithms a Verifier can
// accept: ES256, ES384, EdDSA, RS256 and PS256.
func SupportedAlgorithms() []string {
	out := make([]string, len(supported))
	for i, a := range supported {
		out[i] = string(a)
	}
	return out
}

// Config configures a Verifier.
type Config struct {
	// Algorithms accepted in proofs, a subset of SupportedAlgorithms.
	// Default: all of them.
	Algorithms []string
	// MaxAge is how long after its iat a proof is accepted. Default: 60s.
	MaxAge time.Duration
	// MaxSkew is how far ahead of the server's clock iat may be.
	// Default: 5s.
	MaxSkew time.Duration
	// Replay records the proofs accepted. Required.
	Replay ReplayCache
	// Nonces, when set, makes every proof carry a nonce it accepts.
	// Default: none, iat alone bounds a proof's freshness.
	Nonces NonceSource
	// Now is the server's clock. Default: time.Now.
	Now func() time.Time
}

// Verifier checks DPoP proofs. It is safe for concurrent use.
type Verifier struct {
	algs    []jose.SignatureAlgorithm
	names   []string
	maxAge  time.Duration
	maxSkew time.Duration
	replay  ReplayCache
	nonces  NonceSource
	now     func() time.Time
}

// NewVerifier returns a Verifier for c.
func NewVerifier(c Config) (*Verifier, error) {
	if c.Replay == nil {
		return nil, errors.New("dpop: a replay cache is required")
	}
	v := &Verifier{maxAge: c.MaxAge, maxSkew: c.MaxSkew, replay: c.Replay, nonces: c.Nonces, now: c.Now}
	if v.maxAge == 0 {
		v.maxAge = DefaultMaxAge
	}
	if v.maxSkew == 0 {
		v.maxSkew = DefaultMaxSkew
	}
	if v.maxAge < 0 || v.maxSkew < 0 {
		return nil, errors.New("dpop: MaxAge and MaxSkew must not be negative")
	}
	if v.now == nil {
		v.now = time.Now
	}
	names := c.Algorithms
	if len(names) == 0 {
		names = SupportedAlgorithms()
	}
	for _, n := range names {
		alg, ok := supportedAlgorithm(n)
		if !ok {
			return nil, fmt.Errorf("dpop: algorithm %q is not supported; use some of %s", n, strings.Join(SupportedAlgorithms(), ", "))
		}
		if !containsAlg(v.algs, alg) {
			v.algs = append(v.algs, alg)
			v.names = append(v.names, n)
		}
	}
	return v, nil
}

func supportedAlgorithm(name string) (jose.SignatureAlgorithm, bool) {
	for _, a := range supported {
		if string(a) == name {
			return a, true
		}
	}
	return "", false
}

func containsAlg(algs []jose.SignatureAlgorithm, alg jose.SignatureAlgorithm) bool {
	for _, a := range algs {
		if a == alg {
			return true
		}
	}
	return false
}

// Algorithms returns the algorithms v accepts, as advertised in challenges
// and in dpop_signing_alg_values_supported.
func (v *Verifier) Algorithms() []string { return append([]string(nil), v.names...) }

// Request is what Verify checks a proof against.
type Request struct {
	// Method is the request's HTTP method.
	Method string
	// URL is the request's absolute target URI as clients address the
	// gateway (scheme, host and path; query and fragment are ignored).
	URL string
	// Proofs holds every value of the request's DPoP header.
	Proofs []string
	// AccessToken is the access token presented with the request; empty
	// at the token endpoint.
	AccessToken string
	// BoundKey is the JWK thumbprint the access token is bound to (its
	// cnf.jkt); when set, the proof's key must have it.
	BoundKey string
}

// Proof is an accepted proof.
type Proof struct {
	// JKT is the RFC 7638 thumbprint of the proof's key: the cnf.jkt of a
	// token bound to it.
	JKT string
	// IssuedAt is the proof's iat.
	IssuedAt time.Time
	// NextNonce, when set, is a newer nonce to send in DPoP-Nonce so the
	// client uses it in its next proofs.
	NextNonce string
}

// proofHeader is the JOSE header as sent. Headers and claims are read with
// go-jose's JSON decoder, which matches member names exactly and refuses
// duplicates, so no member can be read one way here and another elsewhere.
type proofHeader struct {
	Typ  string          `json:"typ"`
	Alg  string          `json:"alg"`
	JWK  *proofJWK       `json:"jwk"` // decoded with the header: one pass
	Crit json.RawMessage `json:"crit"`
	B64  json.RawMessage `json:"b64"`
}

type proofClaims struct {
	JTI   string   `json:"jti"`
	HTM   string   `json:"htm"`
	HTU   string   `json:"htu"`
	IAT   *float64 `json:"iat"`
	ATH   *string  `json:"ath"`
	Nonce *string  `json:"nonce"`
}

// Verify checks the proof sent with r and, once every check has passed,
// records it as used. A refused proof gets an *Error; any other error
// means the replay cache or the nonce source failed and nothing can be
// said of the proof.
func (v *Verifier) Verify(ctx context.Context, r Request) (*Proof, error) {
	switch {
	case len(r.Proofs) == 0 || len(r.Proofs) == 1 && r.Proofs[0] == "":
		return nil, invalidProof("missing DPoP proof")
	case len(r.Proofs) > 1:
		return nil, invalidProof("more than one DPoP header")
	}
	raw := r.Proofs[0]
	if len(raw) > MaxProofSize {
		return nil, invalidProof("DPoP proof too large")
	}

	seg, _, ok := strings.Cut(raw, ".")
	if !ok {
		return nil, invalidProof("DPoP proof is not a JWT")
	}
	hb, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return nil, invalidProof("DPoP proof is not a JWT")
	}
	var h proofHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, invalidProof("DPoP proof header is malformed")
	}
	if h.Typ != ProofType {
		return nil, invalidProof("DPoP proof typ must be dpop+jwt")
	}
	alg, ok := supportedAlgorithm(h.Alg)
	if !ok || !containsAlg(v.algs, alg) {
		return nil, invalidProof("DPoP proof alg is not accepted")
	}
	jwk := h.JWK
	if jwk == nil {
		return nil, invalidProof("DPoP proof has no jwk header")
	}
	if jwk.private() {
		return nil, invalidProof("DPoP proof jwk must be a public key")
	}
	if h.Crit != nil || h.B64 != nil {
		return nil, invalidProof("DPoP proof uses an unsupported header")
	}

	// The JWS: exactly three base64url parts, the second the claims.
	signingInput, sigSeg, ok := cutLast(raw, '.')
	_, payloadSeg, ok2 := strings.Cut(signingInput, ".")
	if !ok || !ok2 || strings.Contains(payloadSeg, ".") {
		return nil, invalidProof("DPoP proof is malformed")
	}
	sig, err := base64.RawURLEncoding.DecodeString(sigSeg)
	if err != nil {
		return nil, invalidProof("DPoP proof is malformed")
	}
	payload, err := base64.RawURLEncoding.DecodeString(payloadSeg)
	if err != nil {
		return nil, invalidProof("DPoP proof is malformed")
	}
	key, thumbprintInput, fits, valid := jwk.publicKey(alg)
	if !fits {
		return nil, invalidProof("DPoP proof jwk does not fit its alg")
	}
	if !valid {
		return nil, invalidProof("DPoP proof jwk must be a public key")
	}
	if !verifySignature(alg, key, signingInput, sig) {
		return nil, invalidProof("DPoP proof signature does not verify")
	}

	var c proofClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, invalidProof("DPoP proof claims are malformed")
	}
	if c.JTI == "" {
		return nil, invalidProof("DPoP proof has no jti")
	}
	if len(c.JTI) > MaxJTILength {
		return nil, invalidProof("DPoP proof jti is too long")
	}
	if c.HTM == "" || c.HTM != r.Method {
		return nil, invalidProof("DPoP proof htm does not match the request method")
	}
	htu, ok := normalizeHTU(c.HTU)
	if !ok {
		return nil, invalidProof("DPoP proof htu does not match the request URI")
	}
	if target, ok := normalizeHTU(r.URL); !ok || htu != target {
		return nil, invalidProof("DPoP proof htu does not match the request URI")
	}
	if c.IAT == nil {
		return nil, invalidProof("DPoP proof has no iat")
	}
	now := v.now()
	nowSec := float64(now.UnixNano()) / 1e9
	if *c.IAT < nowSec-v.maxAge.Seconds() {
		return nil, invalidProof("DPoP proof is too old")
	}
	if *c.IAT > nowSec+v.maxSkew.Seconds() {
		return nil, invalidProof("DPoP proof iat is in the future")
	}
	if r.AccessToken != "" {
		if c.ATH == nil {
			return nil, invalidProof("DPoP proof has no ath for the access token")
		}
		want := AccessTokenHash(r.AccessToken)
		if subtle.ConstantTimeCompare([]byte(*c.ATH), []byte(want)) != 1 {
			return nil, invalidProof("DPoP proof ath does not match the access token")
		}
	}

	jkt := jktOf(thumbprintInput)
	if r.BoundKey != "" && subtle.ConstantTimeCompare([]byte(jkt), []byte(r.BoundKey)) != 1 {
		return nil, &Error{Code: CodeInvalidToken, Description: "DPoP key binding does not match the access token"}
	}

	p := &Proof{JKT: jkt, IssuedAt: iatTime(*c.IAT)}
	if v.nonces != nil {
		next, err := v.checkNonce(ctx, c.Nonce)
		if err != nil {
			return nil, err
		}
		p.NextNonce = next
	}

	first, err := v.replay.FirstUse(ctx, replayKey(jkt, c.HTM, htu, c.JTI), v.maxAge+v.maxSkew)
	if err != nil {
		return nil, fmt.Errorf("dpop: replay check: %w", err)
	}
	if !first {
		return nil, invalidProof("DPoP proof was already used")
	}
	return p, nil
}

// checkNonce refuses a proof without a nonce the source accepts, handing
// the client the current one; it returns the current nonce when it differs
// from the one the proof carries, so the client can move on to it.
func (v *Verifier) checkNonce(ctx context.Context, got *string) (string, error) {
	current, err := v.nonces.Nonce(ctx)
	if err != nil {
		return "", fmt.Errorf("dpop: nonce: %w", err)
	}
	if got == nil || *got == "" || len(*got) > MaxNonceLength {
		return "", &Error{Code: CodeUseNonce, Description: "DPoP proof must carry the server's nonce", Nonce: current}
	}
	ok, err := v.nonces.Valid(ctx, *got)
	if err != nil {
		return "", fmt.Errorf("dpop: nonce: %w", err)
	}
	if !ok {
		return "", &Error{Code: CodeUseNonce, Description: "DPoP proof must carry the server's nonce", Nonce: current}
	}
	if *got != current {
		return current, nil
	}
	return "", nil
}

// cutLast cuts s around its last sep.
func cutLast(s string, sep byte) (before, after string, found bool) {
	i := strings.LastIndexByte(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

func iatTime(iat float64) time.Time {
	sec := int64(iat)
	return time.Unix(sec, int64((iat-float64(sec))*1e9))
}

// replayKey names the record of a used proof: a digest of the key's
// thumbprint, htm, the normalised htu and jti (RFC 9449 §11.1 keeps jti in
// the context of the target URI), so the record is of fixed size and holds
// nothing from the proof in clear.
func replayKey(jkt, htm, htu, jti string) string {
	h := sha256.New()
	for _, s := range []string{jkt, htm, htu, jti} {
		var n [4]byte
		n[0], n[1], n[2], n[3] = byte(len(s)>>24), byte(len(s)>>16), byte(len(s)>>8), byte(len(s))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return replayPrefix + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// AccessTokenHash returns the ath of token: the base64url SHA-256 of its
// ASCII form.
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of key's public part,
// base64url-encoded: the value of a bound token's cnf.jkt.
func Thumbprint(key *jose.JSONWebKey) (string, error) {
	if key == nil || key.Key == nil {
		return "", errors.New("dpop: no key")
	}
	if _, ok := key.Key.([]byte); ok {
		return "", errors.New("dpop: a symmetric key has no thumbprint here")
	}
	sum, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}
