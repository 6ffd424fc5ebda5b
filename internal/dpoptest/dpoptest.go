// Package dpoptest signs DPoP proofs (RFC 9449) for tests, as a client
// holding an ES256 key does.
package dpoptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/caddyoauth/gateway/caddyoauth/dpop"
)

// Key is a client's DPoP key pair and its RFC 7638 thumbprint (the cnf.jkt
// of the tokens bound to it).
type Key struct {
	Priv *ecdsa.PrivateKey
	JKT  string
}

// NewKey makes a P-256 key.
func NewKey(t testing.TB) *Key {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jkt, err := dpop.Thumbprint(&jose.JSONWebKey{Key: priv.Public()})
	if err != nil {
		t.Fatal(err)
	}
	return &Key{Priv: priv, JKT: jkt}
}

// Proof signs a proof for htm htu issued at iat, with a fresh jti, the
// ath of token and nonce when they are set.
func (k *Key) Proof(t testing.TB, htm, htu, token, nonce string, iat time.Time) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.Priv},
		&jose.SignerOptions{EmbedJWK: true, ExtraHeaders: map[jose.HeaderKey]any{"typ": "dpop+jwt"}})
	if err != nil {
		t.Fatal(err)
	}
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	c := map[string]any{"jti": base64.RawURLEncoding.EncodeToString(jti[:]), "htm": htm, "htu": htu, "iat": iat.Unix()}
	if token != "" {
		c["ath"] = dpop.AccessTokenHash(token)
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	payload, _ := json.Marshal(c)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
