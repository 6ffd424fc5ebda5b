package clients

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/clientauth"
)

func testJWKS(t *testing.T) json.RawMessage {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	b, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{"kty": "EC", "crv": "P-256", "kid": "k1",
		"x": enc.EncodeToString(k.X.FillBytes(make([]byte, 32))), "y": enc.EncodeToString(k.Y.FillBytes(make([]byte, 32)))}}})
	return b
}

// TestKeyMethodsMetadata: who may register which method without a secret,
// and what each needs.
func TestKeyMethodsMetadata(t *testing.T) {
	str := func(s string) *string { return &s }
	raw := func(b json.RawMessage) *json.RawMessage { return &b }
	jwks := testJWKS(t)
	op := Rules{Grants: authz.KnownGrants, Operator: true}
	reg := Rules{Grants: []string{authz.GrantClientCredentials}, RegisteredBy: ByRegistration, KeyMethods: true}
	user := Rules{Grants: []string{authz.GrantClientCredentials}}
	cc := &[]string{authz.GrantClientCredentials}
	meta := func(method string, keys keyMetadata) Metadata {
		return Metadata{GrantTypes: cc, TokenEndpointAuthMethod: str(method), keyMetadata: keys}
	}
	cases := []struct {
		name  string
		m     Metadata
		rules Rules
		ok    bool
	}{
		{"operator, private_key_jwt, jwks", meta(clientauth.PrivateKeyJWT, keyMetadata{JWKS: raw(jwks)}), op, true},
		{"registration, private_key_jwt, jwks_uri", meta(clientauth.PrivateKeyJWT, keyMetadata{JWKSURI: str("https://agent.example/jwks.json")}), reg, true},
		{"registration, self-signed, jwks", meta(clientauth.SelfSignedTLSClientAuth, keyMetadata{JWKS: raw(jwks)}), reg, true},
		{"operator, tls_client_auth, subject", meta(clientauth.TLSClientAuth, keyMetadata{TLSClientAuthSubjectDN: str("CN=partner,O=Partner")}), op, true},
		{"operator, tls_client_auth, san_dns", meta(clientauth.TLSClientAuth, keyMetadata{TLSClientAuthSANDNS: str("partner.example")}), op, true},
		{"registration, tls_client_auth", meta(clientauth.TLSClientAuth, keyMetadata{TLSClientAuthSANDNS: str("partner.example")}), reg, false},
		{"self-service, private_key_jwt", meta(clientauth.PrivateKeyJWT, keyMetadata{JWKS: raw(jwks)}), user, false},
		{"private_key_jwt without keys", meta(clientauth.PrivateKeyJWT, keyMetadata{}), op, false},
		{"private_key_jwt with jwks and jwks_uri", meta(clientauth.PrivateKeyJWT, keyMetadata{JWKS: raw(jwks), JWKSURI: str("https://a.example/j")}), op, false},
		{"jwks_uri over http", meta(clientauth.PrivateKeyJWT, keyMetadata{JWKSURI: str("http://agent.example/jwks.json")}), reg, false},
		{"private key in jwks", meta(clientauth.PrivateKeyJWT, keyMetadata{JWKS: raw(json.RawMessage(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))}), op, false},
		{"keys with a secret method", meta(AuthMethodBasic, keyMetadata{JWKS: raw(jwks)}), op, false},
		{"tls_client_auth with two attributes", meta(clientauth.TLSClientAuth, keyMetadata{TLSClientAuthSANDNS: str("a.example"), TLSClientAuthSANIP: str("192.0.2.1")}), op, false},
		{"client_secret_jwt", meta("client_secret_jwt", keyMetadata{}), op, false},
	}
	for _, tc := range cases {
		c := new(Client)
		err := tc.m.Apply(c, tc.rules, true)
		var re *RegError
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case !tc.ok && (!errors.As(err, &re) || re.Code != "invalid_client_metadata"):
			t.Errorf("%s: got %v, want invalid_client_metadata", tc.name, err)
		case tc.ok && (!c.KeyBased() || c.Public):
			t.Errorf("%s: method %q public %v", tc.name, c.AuthMethod, c.Public)
		}
	}
}

// TestKeyClientLifecycle: a private_key_jwt client gets no secret, reads
// back as the authorization server's client with its keys, has its keys
// replaced by an update, cannot change its method, and has no secret to
// rotate.
func TestKeyClientLifecycle(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	op := Rules{Grants: authz.KnownGrants, Operator: true}
	jwks := testJWKS(t)
	m, err := ParseMetadata([]byte(`{"client_name":"Partner","grant_types":["client_credentials"],
		"token_endpoint_auth_method":"private_key_jwt","jwks":` + string(jwks) + `}`))
	if err != nil {
		t.Fatal(err)
	}
	c := new(Client)
	if err := m.Apply(c, op, true); err != nil {
		t.Fatal(err)
	}
	secret, err := r.Create(ctx, c)
	if err != nil || secret != "" || c.SecretSHA256 != "" {
		t.Fatalf("created with secret %q digest %q: %v", secret, c.SecretSHA256, err)
	}
	ac, err := r.Client(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ac.Auth == nil || ac.Auth.Name != clientauth.PrivateKeyJWT || ac.Auth.JWKS.Len() != 1 || ac.HasSecret() || ac.Public {
		t.Fatalf("authz client: %+v", ac)
	}
	info, _ := json.Marshal(InfoOf(c, ""))
	if !strings.Contains(string(info), `"token_endpoint_auth_method":"private_key_jwt"`) || !strings.Contains(string(info), `"jwks":{"keys"`) ||
		strings.Contains(string(info), "client_secret") {
		t.Fatalf("info: %s", info)
	}

	// An update moves to a jwks_uri: the inline keys go.
	upd, _ := ParseMetadata([]byte(`{"jwks_uri":"https://partner.example/jwks.json"}`))
	got, err := r.Update(ctx, c.ID, func(c *Client) error { return upd.Apply(c, op, false) })
	if err != nil || got.JWKSURI != "https://partner.example/jwks.json" || got.JWKS != nil {
		t.Fatalf("update: %+v %v", got, err)
	}
	for _, method := range []string{AuthMethodBasic, AuthMethodNone, clientauth.TLSClientAuth} {
		m := &Metadata{TokenEndpointAuthMethod: &method}
		if _, err := r.Update(ctx, c.ID, func(c *Client) error { return m.Apply(c, op, false) }); err == nil {
			t.Errorf("method changed to %s", method)
		}
	}
	if _, _, err := r.RotateSecret(ctx, c.ID); !IsPublicClientError(err) {
		t.Fatalf("rotating the secret of a key client: %v", err)
	}
}

// TestSettingsKeyMethods: the config's rules for clients without a
// secret.
func TestSettingsKeyMethods(t *testing.T) {
	jwks := testJWKS(t)
	base := func(change func(*Settings)) *Settings {
		s := &Settings{ID: "c", Grants: []string{authz.GrantClientCredentials}, AuthMethod: clientauth.PrivateKeyJWT, KeyAuth: KeyAuth{JWKS: jwks}}
		change(s)
		return s
	}
	if err := base(func(*Settings) {}).Check(); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*Settings){
		"and a secret":     func(s *Settings) { s.Secret = "x" },
		"and public":       func(s *Settings) { s.Public = true },
		"no keys":          func(s *Settings) { s.KeyAuth = KeyAuth{} },
		"keys, no method":  func(s *Settings) { s.AuthMethod = ""; s.Secret = "x" },
		"unknown method":   func(s *Settings) { s.AuthMethod = "client_secret_jwt" },
		"none, not public": func(s *Settings) { s.AuthMethod = AuthMethodNone; s.KeyAuth = KeyAuth{}; s.Secret = "x" },
		"jwks too large":   func(s *Settings) { s.KeyAuth.JWKS = json.RawMessage(strings.Repeat(" ", MaxInlineJWKS) + string(jwks)) },
		"tls, subject typo": func(s *Settings) {
			s.AuthMethod = clientauth.TLSClientAuth
			s.KeyAuth = KeyAuth{TLSClientAuthSubjectDN: "partner"}
		},
	} {
		if err := base(change).Check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
