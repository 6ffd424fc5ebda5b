package clientauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/json"
)

// Bounds of a JWK Set.
const (
	// MaxKeys is the most keys a set may list.
	MaxKeys = 20
	// MinRSABits is the smallest RSA modulus of a usable key.
	MinRSABits = 2048
)

// KeySet is a client's usable public keys: RSA of at least MinRSABits,
// EC on P-256, P-384 or P-521, and Ed25519, none marked for encryption.
type KeySet struct {
	keys []jose.JSONWebKey
	raw  []byte
}

// privateMembers are the JWK members of private or symmetric keys (RFC
// 7518 §6, RFC 8037 §2).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

// ParseKeySet reads a JWK Set (RFC 7517 §5). A set holding private or
// symmetric key material is refused whole: it is a mistake that exposed
// a secret. Keys of other types, curves or uses are left out; a set with
// no usable key is refused.
func ParseKeySet(b []byte) (*KeySet, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, errors.New("not a JSON object with a keys array")
	}
	if len(set.Keys) > MaxKeys {
		return nil, fmt.Errorf("more than %d keys", MaxKeys)
	}
	ks := &KeySet{raw: append([]byte(nil), b...)}
	for _, raw := range set.Keys {
		var members map[string]json.RawMessage
		if err := json.Unmarshal(raw, &members); err != nil {
			return nil, errors.New("a key is not a JSON object")
		}
		for _, m := range privateMembers {
			if _, ok := members[m]; ok {
				return nil, errors.New("a key holds private or symmetric key material; register public keys only")
			}
		}
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil || !k.Valid() || !k.IsPublic() {
			continue
		}
		if (k.Use != "" && k.Use != "sig") || !usableKey(k.Key) {
			continue
		}
		ks.keys = append(ks.keys, k)
	}
	if len(ks.keys) == 0 {
		return nil, errors.New("no usable public signing key (RSA of 2048 bits or more, EC P-256, P-384 or P-521, Ed25519)")
	}
	return ks, nil
}

func usableKey(key any) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return k.N.BitLen() >= MinRSABits
	case *ecdsa.PublicKey:
		return k.Curve == elliptic.P256() || k.Curve == elliptic.P384() || k.Curve == elliptic.P521()
	case ed25519.PublicKey:
		return len(k) == ed25519.PublicKeySize
	}
	return false
}

// Len returns the number of usable keys.
func (ks *KeySet) Len() int { return len(ks.keys) }

// candidates returns the keys that may have made a signature with alg
// under kid (any key when kid is empty): of the type and size alg needs,
// and with no other alg of their own.
func (ks *KeySet) candidates(alg jose.SignatureAlgorithm, kid string) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range ks.keys {
		if kid != "" && k.KeyID != kid {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != string(alg) {
			continue
		}
		if keyFits(alg, k.Key) {
			out = append(out, k)
		}
	}
	return out
}

// hasPublicKey reports whether pub is one of the set's keys.
func (ks *KeySet) hasPublicKey(pub crypto.PublicKey) bool {
	for _, k := range ks.keys {
		if eq, ok := k.Key.(interface{ Equal(crypto.PublicKey) bool }); ok && eq.Equal(pub) {
			return true
		}
	}
	return false
}

// keyFits reports whether key is of the type and size alg needs.
func keyFits(alg jose.SignatureAlgorithm, key any) bool {
	switch alg {
	case jose.ES256:
		k, ok := key.(*ecdsa.PublicKey)
		return ok && k.Curve == elliptic.P256()
	case jose.EdDSA:
		k, ok := key.(ed25519.PublicKey)
		return ok && len(k) == ed25519.PublicKeySize
	case jose.RS256, jose.PS256:
		k, ok := key.(*rsa.PublicKey)
		return ok && k.N.BitLen() >= MinRSABits
	}
	return false
}

// JSON returns the set as it was given.
func (ks *KeySet) JSON() []byte { return append([]byte(nil), ks.raw...) }
