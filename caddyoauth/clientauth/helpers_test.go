package clientauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
)

// The tests sign assertions with the standard library alone, not with
// go-jose, which the verifier uses: a fault in one is not hidden by the
// same fault in the other.

const (
	testIssuer = "https://auth.example.com"
	testClient = "partner"
)

var b64 = base64.RawURLEncoding

// testKey is a signing key with its JWK (public part) and alg.
type testKey struct {
	alg    string
	kid    string
	signer crypto.Signer
}

func newTestKey(t testing.TB, alg, kid string) *testKey {
	t.Helper()
	var s crypto.Signer
	var err error
	switch alg {
	case "RS256", "PS256":
		s, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, s, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("no key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{alg: alg, kid: kid, signer: s}
}

// jwk is the public JWK of k.
func (k *testKey) jwk() map[string]any {
	m := map[string]any{}
	if k.kid != "" {
		m["kid"] = k.kid
	}
	switch pub := k.signer.Public().(type) {
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64.EncodeToString(pub.N.Bytes()), b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		m["kty"], m["crv"] = "EC", "P-256"
		m["x"], m["y"] = b64.EncodeToString(pub.X.FillBytes(make([]byte, 32))), b64.EncodeToString(pub.Y.FillBytes(make([]byte, 32)))
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64.EncodeToString(pub)
	}
	return m
}

// jwks is the JSON of a JWK Set of keys.
func jwks(keys ...*testKey) []byte {
	list := make([]map[string]any, len(keys))
	for i, k := range keys {
		list[i] = k.jwk()
	}
	b, _ := json.Marshal(map[string]any{"keys": list})
	return b
}

// sign makes a compact JWS of claims with header fields added to alg and
// kid.
func (k *testKey) sign(t testing.TB, header, claims map[string]any) string {
	t.Helper()
	h := map[string]any{"alg": k.alg}
	if k.kid != "" {
		h["kid"] = k.kid
	}
	for n, v := range header {
		if v == nil {
			delete(h, n)
		} else {
			h[n] = v
		}
	}
	hb, _ := json.Marshal(h)
	cb, _ := json.Marshal(claims)
	input := b64.EncodeToString(hb) + "." + b64.EncodeToString(cb)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	var err error
	switch k.alg {
	case "RS256":
		sig, err = rsa.SignPKCS1v15(rand.Reader, k.signer.(*rsa.PrivateKey), crypto.SHA256, digest[:])
	case "PS256":
		sig, err = rsa.SignPSS(rand.Reader, k.signer.(*rsa.PrivateKey), crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "ES256":
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, k.signer.(*ecdsa.PrivateKey), digest[:])
		if err == nil {
			sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
		}
	case "EdDSA":
		sig = ed25519.Sign(k.signer.(ed25519.PrivateKey), []byte(input))
	}
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64.EncodeToString(sig)
}

// unsigned makes an assertion with alg none and no signature.
func unsigned(claims map[string]any) string {
	hb, _ := json.Marshal(map[string]any{"alg": "none"})
	cb, _ := json.Marshal(claims)
	return b64.EncodeToString(hb) + "." + b64.EncodeToString(cb) + "."
}

// hmacSigned makes an HS256 assertion with key.
func hmacSigned(key []byte, claims map[string]any) string {
	hb, _ := json.Marshal(map[string]any{"alg": "HS256"})
	cb, _ := json.Marshal(claims)
	input := b64.EncodeToString(hb) + "." + b64.EncodeToString(cb)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(input))
	return input + "." + b64.EncodeToString(m.Sum(nil))
}

var jtiSeq int

// goodClaims are valid claims of testClient at now, with a fresh jti.
func goodClaims(now time.Time) map[string]any {
	jtiSeq++
	return map[string]any{"iss": testClient, "sub": testClient, "aud": testIssuer,
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": fmt.Sprintf("jti-%d", jtiSeq)}
}

// newTestVerifier returns a verifier on an in-memory store with a clock
// the test sets.
func newTestVerifier(t testing.TB, o Options) (*Verifier, *time.Time) {
	t.Helper()
	db, err := filestore.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Now()
	o.Replay = db
	o.Now = func() time.Time { return now }
	return New(o), &now
}

func inlineClient(t testing.TB, keys ...*testKey) Client {
	t.Helper()
	m, err := NewMethod(PrivateKeyJWT, jwks(keys...), "", CertMatch{})
	if err != nil {
		t.Fatal(err)
	}
	return Client{ID: testClient, Method: m, Vetted: true}
}
