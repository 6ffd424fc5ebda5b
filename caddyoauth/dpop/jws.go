package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"math/big"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/json"
)

// A proof is read once: its header, jwk included, by go-jose's strict JSON
// decoder into the structs below; its key built from the jwk's members and
// its signature checked with the standard library, as go-jose would, but
// without go-jose parsing the header twice more and re-encoding the key. A
// proof's signature is the one check a DPoP request must pay for.

// proofJWK holds the members of a proof's jwk that make a public key of
// the supported types, and notes any private member.
type proofJWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`

	// RFC 7518 §6, RFC 8037 §2: members of private or symmetric keys.
	D    json.RawMessage `json:"d"`
	P    json.RawMessage `json:"p"`
	Q    json.RawMessage `json:"q"`
	DP   json.RawMessage `json:"dp"`
	DQ   json.RawMessage `json:"dq"`
	QI   json.RawMessage `json:"qi"`
	Oth  json.RawMessage `json:"oth"`
	K    json.RawMessage `json:"k"`
	Priv json.RawMessage `json:"priv"`
}

// maxRSABits bounds an RSA key's size, and so the work a proof can ask of
// the gateway: a verification costs about the square of the size.
const maxRSABits = 4096

func (k *proofJWK) private() bool {
	for _, m := range []json.RawMessage{k.D, k.P, k.Q, k.DP, k.DQ, k.QI, k.Oth, k.K, k.Priv} {
		if m != nil {
			return true
		}
	}
	return false
}

// b64member decodes a base64url member, with or without padding, as
// go-jose reads them.
func b64member(s string) ([]byte, bool) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	return b, err == nil
}

// publicKey builds the key of alg the jwk describes, and its RFC 7638
// thumbprint input. fits is false for a key of another type or size than
// alg needs; ok false for members that make no valid key.
func (k *proofJWK) publicKey(alg jose.SignatureAlgorithm) (key any, thumbprintInput string, fits, ok bool) {
	switch alg {
	case jose.ES256, jose.ES384:
		curve, size, crv := elliptic.P256(), 32, "P-256"
		if alg == jose.ES384 {
			curve, size, crv = elliptic.P384(), 48, "P-384"
		}
		if k.Kty != "EC" || k.Crv != crv {
			return nil, "", false, true
		}
		x, okx := b64member(k.X)
		y, oky := b64member(k.Y)
		// RFC 7518 §6.2.1.2: the coordinates have the curve's full size.
		if !okx || !oky || len(x) != size || len(y) != size {
			return nil, "", true, false
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, "", true, false
		}
		return pub, `{"crv":"` + crv + `","kty":"EC","x":"` + enc64(x) + `","y":"` + enc64(y) + `"}`, true, true
	case jose.EdDSA:
		if k.Kty != "OKP" || k.Crv != "Ed25519" {
			return nil, "", false, true
		}
		x, okx := b64member(k.X)
		if !okx || len(x) != ed25519.PublicKeySize {
			return nil, "", true, false
		}
		return ed25519.PublicKey(x), `{"crv":"Ed25519","kty":"OKP","x":"` + enc64(x) + `"}`, true, true
	case jose.RS256, jose.PS256:
		if k.Kty != "RSA" {
			return nil, "", false, true
		}
		n, okn := b64member(k.N)
		e, oke := b64member(k.E)
		if !okn || !oke || len(n) == 0 || len(e) == 0 || len(e) > 4 {
			return nil, "", true, false
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n)}
		for _, c := range e {
			pub.E = pub.E<<8 | int(c)
		}
		if pub.E < 3 || pub.E&1 == 0 {
			return nil, "", true, false
		}
		if pub.N.BitLen() < minRSABits || pub.N.BitLen() > maxRSABits {
			return nil, "", false, true
		}
		eb := big.NewInt(int64(pub.E)).Bytes()
		return pub, `{"e":"` + enc64(eb) + `","kty":"RSA","n":"` + enc64(pub.N.Bytes()) + `"}`, true, true
	}
	return nil, "", false, true
}

// verifySignature checks a JWS signature over input by key with alg (RFC
// 7518 §3), as go-jose does.
func verifySignature(alg jose.SignatureAlgorithm, key any, input string, sig []byte) bool {
	switch alg {
	case jose.ES256, jose.ES384:
		pub := key.(*ecdsa.PublicKey)
		size := (pub.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false
		}
		var digest []byte
		if alg == jose.ES256 {
			d := sha256.Sum256([]byte(input))
			digest = d[:]
		} else {
			d := sha512.Sum384([]byte(input))
			digest = d[:]
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(pub, digest, r, s)
	case jose.EdDSA:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(key.(ed25519.PublicKey), []byte(input), sig)
	case jose.RS256, jose.PS256:
		d := sha256.Sum256([]byte(input))
		if alg == jose.RS256 {
			return rsa.VerifyPKCS1v15(key.(*rsa.PublicKey), crypto.SHA256, d[:], sig) == nil
		}
		return rsa.VerifyPSS(key.(*rsa.PublicKey), crypto.SHA256, d[:], sig, nil) == nil
	}
	return false
}

// jktOf is the base64url SHA-256 of a thumbprint input (RFC 7638 §3).
func jktOf(input string) string {
	d := sha256.Sum256([]byte(input))
	return base64.RawURLEncoding.EncodeToString(d[:])
}

func enc64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
