package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func jwtService(t testing.TB, change func(*Config)) (*Service, StaticClients) {
	return newTestService(t, func(c *Config) {
		c.TokenFormat = FormatJWT
		c.SigningKeyRotation = 720 * time.Hour
		if change != nil {
			change(c)
		}
	})
}

func decodePart(t testing.TB, part string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// TestJWTAccessTokenClaims: RFC 9068 §2: typ at+jwt, and iss, sub, aud,
// client_id, scope, exp, iat, jti.
func TestJWTAccessTokenClaims(t *testing.T) {
	s, _ := jwtService(t, func(c *Config) { c.Audience = "https://api.example.com" })
	access, _ := aliceTokens(t, s)
	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", access)
	}
	var h map[string]any
	var c map[string]any
	decodePart(t, parts[0], &h)
	decodePart(t, parts[1], &c)
	keys, _ := s.JWKS(context.Background())
	if h["typ"] != "at+jwt" || h["alg"] != "ES256" || len(keys) != 1 || h["kid"] != keys[0].Kid {
		t.Fatalf("header %v, keys %v", h, keys)
	}
	want := map[string]any{"iss": "https://auth.example.com", "sub": "user-1", "aud": "https://api.example.com",
		"client_id": "app", "scope": "read write"}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("%s = %v, want %v", k, c[k], v)
		}
	}
	iat, exp := c["iat"].(float64), c["exp"].(float64)
	if exp-iat != 3600 || c["jti"] == "" {
		t.Errorf("iat %v exp %v jti %v", c["iat"], c["exp"], c["jti"])
	}
	if !valid(s, access) {
		t.Fatal("a fresh JWT does not validate")
	}
	// Introspection adds iss, aud and jti.
	r := introspect(t, s, "app", url.Values{"token": {access}})
	if r.str("jti") != c["jti"] || r.str("iss") != c["iss"] || r.str("aud") != c["aud"] {
		t.Fatalf("introspection %s", r.body)
	}
}

// TestJWTRefreshIssuesJWT: the refresh path makes its access tokens with
// the same generator, sub being the client for client_credentials.
func TestJWTRefreshIssuesJWT(t *testing.T) {
	s, _ := jwtService(t, nil)
	_, refresh := aliceTokens(t, s)
	r := refreshGrant(t, s, refresh, "", as("app"))
	if !looksLikeJWT(r.str("access_token")) || !valid(s, r.str("access_token")) {
		t.Fatalf("refresh gave %q", r.str("access_token"))
	}
	cc := call(t, s.ServeToken, url.Values{"grant_type": {"client_credentials"}}, as("app"))
	var c map[string]any
	decodePart(t, strings.Split(cc.str("access_token"), ".")[1], &c)
	if c["sub"] != "app" || c["aud"] != "https://auth.example.com" {
		t.Fatalf("client_credentials claims %v", c)
	}
}

// TestJWTTamperedAndRevoked: a changed claim breaks the signature; a
// revoked JWT is refused although its signature is fine.
func TestJWTTamperedAndRevoked(t *testing.T) {
	s, _ := jwtService(t, nil)
	access, _ := aliceTokens(t, s)
	parts := strings.Split(access, ".")
	var c map[string]any
	decodePart(t, parts[1], &c)
	c["scope"] = "read write admin"
	b, _ := json.Marshal(c)
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
	if _, err := s.Validate(context.Background(), forged); err != ErrTokenInvalid {
		t.Fatalf("forged token: %v", err)
	}
	// alg none, with the signature dropped.
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + parts[1] + "."
	if valid(s, none) {
		t.Fatal("alg none accepted")
	}
	wantRevoked200(t, revoke(t, s, "app", url.Values{"token": {access}}))
	if _, err := s.Validate(context.Background(), access); err != ErrTokenInvalid {
		t.Fatalf("revoked JWT: %v", err)
	}
}

// TestJWTKeySharedAcrossInstances: two services on one store sign with the
// same generated key, so each validates the other's tokens.
func TestJWTKeySharedAcrossInstances(t *testing.T) {
	db := memStore(t)
	cfg := Config{AccessTokenTTL: time.Hour, RefreshTokenTTL: time.Hour, CodeTTL: time.Minute, TokenFormat: FormatJWT,
		Issuer: fixedIssuer("https://auth.example.com"), SigningKeyRotation: time.Hour}
	a := New(cfg, db, testClients(), testUsers(t), nil)
	b := New(cfg, db, testClients(), testUsers(t), nil)
	tok := call(t, a.ServeToken, url.Values{"grant_type": {"client_credentials"}}, as("app"))
	if !valid(b, tok.str("access_token")) {
		t.Fatal("instance b refuses instance a's JWT")
	}
	ka, _ := a.JWKS(context.Background())
	kb, _ := b.JWKS(context.Background())
	if len(ka) != 1 || len(kb) != 1 || ka[0].Kid != kb[0].Kid {
		t.Fatalf("JWKS differ: %v %v", ka, kb)
	}
	// An instance of another issuer on the same store refuses it: its iss
	// and aud are not that issuer's.
	other := cfg
	other.Issuer = fixedIssuer("https://other.example.com")
	o := New(other, db, testClients(), testUsers(t), nil)
	if valid(o, tok.str("access_token")) {
		t.Fatal("an instance with another issuer accepts the JWT")
	}
	if in, err := o.Introspect(context.Background(), &Client{ID: "app", Introspect: true}, tok.str("access_token"), ""); err != nil || in.Active {
		t.Fatalf("introspection by another issuer: %+v, %v", in, err)
	}
}

// TestJWTOfAnotherIssuerRefused: a JWT whose iss or aud is not the
// service's current one is refused by Validate (oauth_protect) and
// inactive at introspection; while the issuer is unknown, nothing is
// issued or accepted under an empty one.
func TestJWTOfAnotherIssuerRefused(t *testing.T) {
	iss := "https://a.example"
	var issErr error
	s, _ := jwtService(t, func(c *Config) { c.Issuer = func() (string, error) { return iss, issErr } })
	tok := call(t, s.ServeToken, url.Values{"grant_type": {"client_credentials"}}, as("app")).str("access_token")
	if !valid(s, tok) {
		t.Fatal("a JWT of the current issuer is refused")
	}
	inactive := func(why string) {
		t.Helper()
		if _, err := s.Validate(context.Background(), tok); err != ErrTokenInvalid {
			t.Fatalf("%s: Validate gives %v", why, err)
		}
		if r := introspect(t, s, "rs", url.Values{"token": {tok}}); r.status != 200 || r.json["active"] != false {
			t.Fatalf("%s: introspection %d %s", why, r.status, r.body)
		}
	}
	iss = "https://b.example"
	inactive("another issuer")
	iss = "https://a.example"
	s.cfg.Audience = "https://api.example"
	inactive("another audience")
	s.cfg.Audience = ""
	if !valid(s, tok) {
		t.Fatal("the JWT is refused under its own issuer and audience again")
	}

	issErr = errors.New("issuer not resolved")
	if _, err := s.Validate(context.Background(), tok); err == nil || err == ErrTokenInvalid {
		t.Fatalf("with no issuer, Validate gives %v, want an unavailable error", err)
	}
	call(t, s.ServeToken, url.Values{"grant_type": {"client_credentials"}}, as("app")).wantError(t, 503, "temporarily_unavailable")
}

// TestJWTKeyRotation: a key older than the rotation period is replaced;
// the previous one stays published while its tokens may live, then goes.
func TestJWTKeyRotation(t *testing.T) {
	s, _ := jwtService(t, func(c *Config) { c.SigningKeyRotation = 24 * time.Hour })
	ctx := context.Background()
	old := call(t, s.ServeToken, url.Values{"grant_type": {"client_credentials"}}, as("app")).str("access_token")

	// Age the stored key by two days, as if it had been made then.
	s.keys.mu.Lock()
	s.keys.keys[0].created = time.Now().Add(-48 * time.Hour)
	raw, err := encodeRing(s.keys.keys)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.Put(ctx, keyRingKey, raw, 0); err != nil {
		t.Fatal(err)
	}
	s.keys.loaded = time.Time{}
	s.keys.mu.Unlock()

	fresh := call(t, s.ServeToken, url.Values{"grant_type": {"client_credentials"}}, as("app")).str("access_token")
	var hOld, hNew jwtHeader
	decodePart(t, strings.Split(old, ".")[0], &hOld)
	decodePart(t, strings.Split(fresh, ".")[0], &hNew)
	if hOld.Kid == hNew.Kid {
		t.Fatal("the key did not rotate")
	}
	keys, _ := s.JWKS(ctx)
	if len(keys) != 2 || keys[0].Kid != hNew.Kid || keys[1].Kid != hOld.Kid {
		t.Fatalf("JWKS after rotation: %v", keys)
	}
	if !valid(s, old) || !valid(s, fresh) {
		t.Fatal("tokens of the current and the previous key must both validate")
	}

	// Once the old key retired longer ago than a token lifetime, it is
	// unpublished and its tokens refused.
	s.keys.mu.Lock()
	s.keys.keys[1].retired = time.Now().Add(-2 * time.Hour)
	s.keys.mu.Unlock()
	keys, _ = s.JWKS(ctx)
	if len(keys) != 1 || keys[0].Kid != hNew.Kid {
		t.Fatalf("JWKS still lists the expired key: %v", keys)
	}
	if valid(s, old) {
		t.Fatal("a token of an unpublished key validates")
	}
}

// TestJWTStaticRSAKey: an RSA signing_key signs RS256 and is published.
func TestJWTStaticRSAKey(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	signer, err := ParseSigningKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := jwtService(t, func(c *Config) { c.SigningKey = signer })
	tok := call(t, s.ServeToken, url.Values{"grant_type": {"client_credentials"}}, as("app")).str("access_token")
	var h jwtHeader
	decodePart(t, strings.Split(tok, ".")[0], &h)
	keys, _ := s.JWKS(context.Background())
	if h.Alg != "RS256" || len(keys) != 1 || keys[0].Kty != "RSA" || keys[0].Kid != h.Kid || !valid(s, tok) {
		t.Fatalf("header %+v keys %+v", h, keys)
	}
}

// TestParseSigningKey refuses what cannot sign ES256 or RS256.
func TestParseSigningKey(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der384, _ := x509.MarshalECPrivateKey(p384)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der256, _ := x509.MarshalECPrivateKey(p256)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	cases := []struct {
		name string
		pem  []byte
		ok   bool
	}{
		{"p256 sec1", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der256}), true},
		{"p384", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der384}), false},
		{"rsa 1024", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)}), false},
		{"certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), false},
		{"garbage", []byte("not pem"), false},
	}
	for _, c := range cases {
		if _, err := ParseSigningKey(c.pem); (err == nil) != c.ok {
			t.Errorf("%s: err = %v", c.name, err)
		}
	}
}
