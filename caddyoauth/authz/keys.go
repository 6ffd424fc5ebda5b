package authz

import (
	"context"
	"crypto"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// keyRingKey is the store record holding the generated ES256 signing
// keys, so every gateway instance sharing the store signs with, and
// publishes, the same keys; rsaRingKey holds the RS256 ones, which ID
// tokens are signed with by default. They hold private keys: the records
// of the store that are secrets, because a signing key cannot be kept as
// a digest; sealed with Config.KeyEncryptionKey when one is set
// (key_encryption.go).
const (
	keyRingKey = "jwks:ring"
	rsaRingKey = "jwks:ring:rs256"
)

// Signing algorithms of the key rings.
const (
	algES256 = "ES256"
	algRS256 = "RS256"
)

// keyRingRefresh is how often an instance rereads the shared key ring, so a
// rotation made by another instance is published and trusted everywhere.
const keyRingRefresh = time.Minute

// signingKey is one key of the ring.
type signingKey struct {
	kid     string
	alg     string // ES256 or RS256
	priv    crypto.Signer
	created time.Time
	retired time.Time // when the next key took over; zero for the current key
}

// storedKey is a signingKey as the store keeps it.
type storedKey struct {
	Kid     string `json:"kid"`
	Alg     string `json:"alg"`
	DER     []byte `json:"der"` // PKCS #8
	Created int64  `json:"created"`
	Retired int64  `json:"retired,omitempty"`
}

type storedRing struct {
	Keys []storedKey `json:"keys"` // newest first
}

// keyRing holds the signing keys: a fixed key from a file, or keys the
// gateway generates, keeps in its store and rotates.
type keyRing struct {
	svc    *Service
	static *signingKey

	// storeKey is the record of the generated keys; alg their algorithm.
	storeKey string
	alg      string

	// aead seals the stored ring (key_encryption.go); nil: stored in plain.
	aead cipher.AEAD

	mu     sync.RWMutex
	keys   []*signingKey // newest first
	raw    []byte        // the stored record keys was read from
	loaded time.Time
}

// ParseSigningKey reads a PEM private key: EC P-256 (signing ES256) or RSA
// of at least 2048 bits (RS256), in PKCS #8, SEC 1 or PKCS #1 form.
func ParseSigningKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, errors.New("the private key cannot be parsed")
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("an EC signing key must be on curve P-256 (ES256)")
		}
		return k, nil
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, errors.New("an RSA signing key must have at least 2048 bits")
		}
		return k, nil
	}
	return nil, errors.New("the signing key must be EC P-256 or RSA")
}

func newSigningKey(priv crypto.Signer, created time.Time) (*signingKey, error) {
	k := &signingKey{priv: priv, created: created}
	switch priv.(type) {
	case *ecdsa.PrivateKey:
		k.alg = "ES256"
	case *rsa.PrivateKey:
		k.alg = "RS256"
	default:
		return nil, errors.New("unsupported key type")
	}
	jwk, err := publicJWK(priv.Public())
	if err != nil {
		return nil, err
	}
	k.kid = thumbprint(jwk)
	return k, nil
}

// JWK is a public JSON Web Key (RFC 7517) as /oauth/jwks publishes it.
type JWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid,omitempty"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

func publicJWK(pub crypto.PublicKey) (*JWK, error) {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		pt, err := p.Bytes() // 0x04 || X || Y, 32 bytes each on P-256
		if err != nil || len(pt) != 65 {
			return nil, errors.New("bad EC public key")
		}
		return &JWK{Kty: "EC", Crv: "P-256", X: b64url(pt[1:33]), Y: b64url(pt[33:])}, nil
	case *rsa.PublicKey:
		return &JWK{Kty: "RSA", N: b64url(p.N.Bytes()), E: b64url(big.NewInt(int64(p.E)).Bytes())}, nil
	}
	return nil, errors.New("unsupported key type")
}

// thumbprint is the RFC 7638 JWK thumbprint, used as the key id.
func thumbprint(j *JWK) string {
	var canon string
	if j.Kty == "EC" {
		canon = `{"crv":"` + j.Crv + `","kty":"EC","x":"` + j.X + `","y":"` + j.Y + `"}`
	} else {
		canon = `{"e":"` + j.E + `","kty":"RSA","n":"` + j.N + `"}`
	}
	d := sha256.Sum256([]byte(canon))
	return b64url(d[:])
}

func (r *keyRing) rotation() time.Duration { return r.svc.cfg.SigningKeyRotation }

// published reports whether k's tokens may still be alive: a retired key
// stays published for one access (or ID) token lifetime after its
// successor took over.
func (r *keyRing) published(k *signingKey, now time.Time) bool {
	if k.retired.IsZero() {
		return true
	}
	ttl := r.svc.tokenLife()
	if ttl <= 0 {
		return true
	}
	return now.Before(k.retired.Add(ttl + time.Minute))
}

// current returns the key to sign with, rotating it when it is due.
func (r *keyRing) current(ctx context.Context) (*signingKey, error) {
	if r.static != nil {
		return r.static, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if r.keys == nil || now.Sub(r.loaded) > keyRingRefresh {
		if err := r.load(ctx); err != nil {
			return nil, err
		}
	}
	for attempt := 0; r.rotation() > 0 && now.Sub(r.keys[0].created) >= r.rotation(); attempt++ {
		if attempt == 3 {
			return nil, ErrUnavailable
		}
		if err := r.rotate(ctx, now); err != nil {
			return nil, err
		}
	}
	return r.keys[0], nil
}

// byKid finds a published key, rereading the ring when the kid is unknown,
// which happens after another instance rotated.
func (r *keyRing) byKid(ctx context.Context, kid string) (*signingKey, error) {
	if r.static != nil {
		if kid == r.static.kid {
			return r.static, nil
		}
		return nil, nil
	}
	now := time.Now()
	// The request path: find the key under the read lock when the ring is
	// fresh, so validations do not queue behind each other.
	r.mu.RLock()
	if r.keys != nil && now.Sub(r.loaded) <= keyRingRefresh {
		for _, k := range r.keys {
			if k.kid == kid && r.published(k, now) {
				r.mu.RUnlock()
				return k, nil
			}
		}
	}
	r.mu.RUnlock()

	r.mu.Lock()
	defer r.mu.Unlock()
	stale := now.Sub(r.loaded) > keyRingRefresh
	if r.keys == nil || stale {
		if err := r.load(ctx); err != nil {
			return nil, err
		}
	}
	for attempt := 0; attempt < 2; attempt++ {
		for _, k := range r.keys {
			if k.kid == kid && r.published(k, now) {
				return k, nil
			}
		}
		// An unknown kid rereads at most once a second, so garbage tokens
		// cannot turn every request into a store read.
		if attempt == 0 && now.Sub(r.loaded) > time.Second {
			if err := r.load(ctx); err != nil {
				return nil, err
			}
			continue
		}
		break
	}
	return nil, nil
}

// publicKeys returns the JWKS: every key whose tokens may still be alive.
func (r *keyRing) publicKeys(ctx context.Context) ([]*JWK, error) {
	var keys []*signingKey
	if r.static != nil {
		keys = []*signingKey{r.static}
	} else {
		if _, err := r.current(ctx); err != nil {
			return nil, err
		}
		r.mu.RLock()
		keys = r.keys
		r.mu.RUnlock()
	}
	now := time.Now()
	out := []*JWK{}
	for _, k := range keys {
		if !r.published(k, now) {
			continue
		}
		j, err := publicJWK(k.priv.Public())
		if err != nil {
			return nil, err
		}
		j.Kid, j.Use, j.Alg = k.kid, "sig", k.alg
		out = append(out, j)
	}
	return out, nil
}

// load reads the ring from the store, creating it with a first key when
// no instance has yet. Callers hold r.mu.
func (r *keyRing) load(ctx context.Context) error {
	for attempt := 0; attempt < 3; attempt++ {
		raw, err := r.svc.store.Get(ctx, r.storeKey)
		if errors.Is(err, store.ErrNotFound) {
			first, err := generateKey(r.alg, time.Now())
			if err != nil {
				return err
			}
			raw, err = r.encode([]*signingKey{first})
			if err != nil {
				return err
			}
			err = r.svc.store.Create(ctx, r.storeKey, raw, 0)
			if errors.Is(err, store.ErrConflict) {
				continue // another instance made it first: use theirs
			} else if err != nil {
				return err
			}
			r.svc.log.Info("generated a signing key", zap.String("alg", r.alg), zap.String("kid", first.kid))
		} else if err != nil {
			return err
		}
		keys, sealed, err := r.decode(raw)
		if err != nil {
			return err
		}
		if r.aead != nil && !sealed {
			raw, err = r.seal(ctx, raw, keys)
			if errors.Is(err, store.ErrConflict) {
				continue // changed meanwhile: read it again
			} else if err != nil {
				return err
			}
		}
		r.keys, r.raw, r.loaded = keys, raw, time.Now()
		return nil
	}
	return ErrUnavailable
}

// rotate puts a new key in front, retires the current one and drops keys
// no token can need any more. Of racing instances one wins the swap; the
// others read its ring. Callers hold r.mu.
func (r *keyRing) rotate(ctx context.Context, now time.Time) error {
	next, err := generateKey(r.alg, now)
	if err != nil {
		return err
	}
	keys := []*signingKey{next}
	for i, k := range r.keys {
		k := *k
		if i == 0 {
			k.retired = now
		}
		if r.published(&k, now) {
			keys = append(keys, &k)
		}
	}
	raw, err := r.encode(keys)
	if err != nil {
		return err
	}
	err = r.svc.store.Swap(ctx, r.storeKey, r.raw, raw, 0)
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		return r.load(ctx)
	} else if err != nil {
		return err
	}
	r.keys, r.raw, r.loaded = keys, raw, time.Now()
	r.svc.log.Info("rotated a signing key", zap.String("alg", r.alg), zap.String("kid", next.kid))
	return nil
}

// rsaKeyBits is the size of generated RS256 keys.
const rsaKeyBits = 2048

func generateKey(alg string, now time.Time) (*signingKey, error) {
	var priv crypto.Signer
	var err error
	if alg == algRS256 {
		priv, err = rsa.GenerateKey(rand.Reader, rsaKeyBits)
	} else {
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, err
	}
	return newSigningKey(priv, now)
}

func encodeRing(keys []*signingKey) ([]byte, error) {
	var sr storedRing
	for _, k := range keys {
		der, err := x509.MarshalPKCS8PrivateKey(k.priv)
		if err != nil {
			return nil, err
		}
		sk := storedKey{Kid: k.kid, Alg: k.alg, DER: der, Created: k.created.Unix()}
		if !k.retired.IsZero() {
			sk.Retired = k.retired.Unix()
		}
		sr.Keys = append(sr.Keys, sk)
	}
	return json.Marshal(sr)
}

func decodeRing(raw []byte) ([]*signingKey, error) {
	var sr storedRing
	if err := json.Unmarshal(raw, &sr); err != nil || len(sr.Keys) == 0 {
		return nil, errors.New("the stored signing key ring is unreadable")
	}
	var keys []*signingKey
	for _, sk := range sr.Keys {
		priv, err := x509.ParsePKCS8PrivateKey(sk.DER)
		if err != nil {
			return nil, errors.New("a stored signing key is unreadable")
		}
		signer, ok := priv.(crypto.Signer)
		if !ok {
			return nil, errors.New("a stored signing key is unusable")
		}
		k, err := newSigningKey(signer, time.Unix(sk.Created, 0))
		if err != nil {
			return nil, err
		}
		if sk.Retired != 0 {
			k.retired = time.Unix(sk.Retired, 0)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// JWKS returns the public keys access and ID tokens are signed with,
// current and recently retired, for GET /oauth/jwks. It is empty for
// opaque access tokens without OpenID Connect.
func (s *Service) JWKS(ctx context.Context) ([]*JWK, error) {
	out := []*JWK{}
	for _, r := range s.rings() {
		keys, err := r.publicKeys(ctx)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if !slices.ContainsFunc(out, func(o *JWK) bool { return o.Kid == k.Kid }) {
				out = append(out, k)
			}
		}
	}
	return out, nil
}

// rings are the service's key rings: the access tokens' and, with OpenID
// Connect, one per ID token algorithm.
func (s *Service) rings() []*keyRing {
	var out []*keyRing
	if s.keys != nil {
		out = append(out, s.keys)
	}
	for _, alg := range []string{algRS256, algES256} {
		if r := s.idKeys[alg]; r != nil && r != s.keys {
			out = append(out, r)
		}
	}
	return out
}

// newRing makes the ring of generated keys for alg, or the ring of the
// configured key when it has that algorithm.
func (s *Service) newRing(alg string, static *signingKey) *keyRing {
	r := &keyRing{svc: s, alg: alg, storeKey: keyRingKey}
	if alg == algRS256 {
		r.storeKey = rsaRingKey
	}
	switch {
	case static != nil && static.alg == alg:
		r.static = static
	case s.cfg.KeyEncryptionKey != nil:
		r.aead = newRingAEAD(s.cfg.KeyEncryptionKey)
	}
	return r
}

// tokenLife is how long a signed token may live: the longer of the access
// and ID token lifetimes; 0 for access tokens that never expire.
func (s *Service) tokenLife() time.Duration {
	if s.cfg.AccessTokenTTL <= 0 {
		return 0
	}
	return max(s.cfg.AccessTokenTTL, s.cfg.IDTokenTTL)
}
