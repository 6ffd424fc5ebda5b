package authz

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/clientauth"
)

// The clients without a shared secret of these tests: "kj" signs client
// assertions (private_key_jwt) with kjKey, "pki" presents a certificate
// whose chain the TLS server verified (tls_client_auth, subject
// CN=pki-client,O=Partner), "self" a self-signed certificate of selfKey
// (self_signed_tls_client_auth). Assertions are signed here with the
// standard library, not with the JOSE library the gateway uses.

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecJWKS(kid string, k *ecdsa.PrivateKey) []byte {
	b, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{"kty": "EC", "crv": "P-256", "kid": kid,
		"x": b64url(k.X.FillBytes(make([]byte, 32))), "y": b64url(k.Y.FillBytes(make([]byte, 32)))}}})
	return b
}

// es256 signs claims with k under header {"alg":"ES256","kid":kid}.
func es256(t testing.TB, k *ecdsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	hb, _ := json.Marshal(map[string]any{"alg": "ES256", "kid": kid})
	cb, _ := json.Marshal(claims)
	input := b64url(hb) + "." + b64url(cb)
	d := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64url(append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...))
}

var assertionSeq int

// assertionClaims are valid claims of client id for the test issuer.
func assertionClaims(id string) map[string]any {
	assertionSeq++
	now := time.Now()
	return map[string]any{"iss": id, "sub": id, "aud": "https://auth.example.com", "iat": now.Unix(),
		"exp": now.Add(time.Minute).Unix(), "jti": fmt.Sprintf("a-%d", assertionSeq)}
}

// withAssertion adds a client assertion to a form.
func withAssertion(f url.Values, assertion string) url.Values {
	f.Set("client_assertion_type", clientauth.AssertionType)
	f.Set("client_assertion", assertion)
	return f
}

type keyFixture struct {
	svc     *Service
	kjKey   *ecdsa.PrivateKey
	selfKey *ecdsa.PrivateKey
	pkiCert *x509.Certificate
	selfCrt *x509.Certificate
}

func method(t testing.TB, name string, jwks []byte, cert clientauth.CertMatch) *clientauth.Method {
	t.Helper()
	m, err := clientauth.NewMethod(name, jwks, "", cert)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func selfSignedCert(t testing.TB, k *ecdsa.PrivateKey, subject pkix.Name) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: subject, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newKeyFixture(t testing.TB) *keyFixture {
	f := &keyFixture{kjKey: ecKey(t), selfKey: ecKey(t)}
	f.pkiCert = selfSignedCert(t, ecKey(t), pkix.Name{CommonName: "pki-client", Organization: []string{"Partner"}})
	f.selfCrt = selfSignedCert(t, f.selfKey, pkix.Name{CommonName: "anything"})
	clients := testClients()
	for id, m := range map[string]*clientauth.Method{
		"kj":   method(t, clientauth.PrivateKeyJWT, ecJWKS("k1", f.kjKey), clientauth.CertMatch{}),
		"pki":  method(t, clientauth.TLSClientAuth, nil, clientauth.CertMatch{SubjectDN: "CN=pki-client,O=Partner"}),
		"self": method(t, clientauth.SelfSignedTLSClientAuth, ecJWKS("s1", f.selfKey), clientauth.CertMatch{}),
	} {
		clients[id] = &Client{ID: id, Grants: []string{GrantClientCredentials}, Scopes: []string{"read"}, Auth: m}
	}
	f.svc = New(testConfig(), memStore(t), clients, testUsers(t), nil)
	return f
}

// tlsState sets the TLS connection state of a request: peer certificates,
// verified or not.
func tlsState(cert *x509.Certificate, verified bool) auth {
	return func(r *http.Request) {
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
		if verified {
			r.TLS.VerifiedChains = [][]*x509.Certificate{{cert}}
		}
	}
}

func credsForm(kv ...string) url.Values {
	return form(append([]string{"grant_type", "client_credentials"}, kv...)...)
}

// TestPrivateKeyJWTTokenEndpoint: a private_key_jwt client gets tokens
// with a good assertion, named by client_id or by the assertion's sub
// alone, and is refused invalid_client (401, no Basic challenge) for a
// wrong aud, an expired or replayed assertion, a key not its own, alg
// none or HS256, and any other way of authenticating.
func TestPrivateKeyJWTTokenEndpoint(t *testing.T) {
	f := newKeyFixture(t)
	s := f.svc
	good := func() string { return es256(t, f.kjKey, "k1", assertionClaims("kj")) }
	post(t, s, withAssertion(credsForm("client_id", "kj"), good())).wantToken(t)
	r := post(t, s, withAssertion(credsForm(), good())).wantToken(t)
	if r.str("scope") != "read" {
		t.Fatalf("scope %q", r.str("scope"))
	}

	claims := func(change func(map[string]any)) map[string]any {
		c := assertionClaims("kj")
		change(c)
		return c
	}
	replayed := good()
	post(t, s, withAssertion(credsForm(), replayed)).wantToken(t)
	hb, _ := json.Marshal(map[string]any{"alg": "none"})
	cb, _ := json.Marshal(assertionClaims("kj"))
	none := b64url(hb) + "." + b64url(cb) + "."
	hb, _ = json.Marshal(map[string]any{"alg": "HS256"})
	hs256 := b64url(hb) + "." + b64url(cb) + "." + b64url(make([]byte, 32))
	for name, a := range map[string]string{
		"wrong aud":        es256(t, f.kjKey, "k1", claims(func(c map[string]any) { c["aud"] = "https://auth.example.com/oauth/token" })),
		"expired":          es256(t, f.kjKey, "k1", claims(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })),
		"replayed jti":     replayed,
		"key not in JWKS":  es256(t, ecKey(t), "k1", assertionClaims("kj")),
		"alg none":         none,
		"alg HS256":        hs256,
		"another client's": es256(t, f.kjKey, "k1", claims(func(c map[string]any) { c["iss"], c["sub"] = "app", "app" })),
	} {
		r := post(t, s, withAssertion(credsForm(), a))
		r.wantError(t, http.StatusUnauthorized, "invalid_client")
		if r.header.Get("WWW-Authenticate") != "" {
			t.Errorf("%s: a Basic challenge for an assertion", name)
		}
		if strings.Contains(r.body, a) {
			t.Errorf("%s: the answer echoes the assertion", name)
		}
	}
	// client_id naming another client than the assertion.
	post(t, s, withAssertion(credsForm("client_id", "app"), good())).wantError(t, 401, "invalid_client")
	// Other ways for kj: a secret, Basic, client_id alone.
	post(t, s, credsForm(), basic("kj", "anything")).wantError(t, 401, "invalid_client")
	post(t, s, credsForm("client_id", "kj", "client_secret", "anything")).wantError(t, 401, "invalid_client")
	post(t, s, credsForm("client_id", "kj")).wantError(t, 401, "invalid_client")
	// Two methods at once, or half an assertion.
	post(t, s, withAssertion(credsForm(), good()), as("app")).wantError(t, 400, "invalid_request")
	post(t, s, withAssertion(credsForm("client_secret", "x"), good())).wantError(t, 400, "invalid_request")
	post(t, s, credsForm("client_assertion", good())).wantError(t, 400, "invalid_request")
	p := withAssertion(credsForm(), good())
	p.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
	post(t, s, p).wantError(t, 401, "invalid_client")
	// A secret client cannot use an assertion, nor can an unknown one.
	post(t, s, withAssertion(credsForm(), es256(t, f.kjKey, "k1", assertionClaims("app")))).wantError(t, 401, "invalid_client")
	post(t, s, withAssertion(credsForm(), es256(t, f.kjKey, "k1", assertionClaims("nobody")))).wantError(t, 401, "invalid_client")
	// Never in the URL, where access logs keep it.
	w := httptest.NewRecorder()
	s.ServeToken(w, newFormRequest("/oauth/token?client_assertion="+good(), credsForm().Encode()))
	if w.Code != 400 || !strings.Contains(w.Body.String(), "invalid_request") {
		t.Fatalf("assertion in the URL: %d %s", w.Code, w.Body)
	}
}

// TestPrivateKeyJWTIntrospectionAndRevocation: the same assertion rules
// hold at the introspection and revocation endpoints.
func TestPrivateKeyJWTIntrospectionAndRevocation(t *testing.T) {
	f := newKeyFixture(t)
	s := f.svc
	good := func() string { return es256(t, f.kjKey, "k1", assertionClaims("kj")) }
	tok := post(t, s, withAssertion(credsForm(), good())).wantToken(t).str("access_token")

	r := call(t, s.ServeIntrospect, withAssertion(form("token", tok), good()))
	if r.status != 200 || r.json["active"] != true || r.str("client_id") != "kj" {
		t.Fatalf("introspection: %d %s", r.status, r.body)
	}
	used := good()
	call(t, s.ServeIntrospect, withAssertion(form("token", tok), used))
	for name, a := range map[string]string{
		"replayed":  used,
		"wrong aud": es256(t, f.kjKey, "k1", map[string]any{"iss": "kj", "sub": "kj", "aud": "https://auth.example.com/oauth/introspect", "exp": time.Now().Add(time.Minute).Unix(), "jti": "i-1"}),
		"not its":   es256(t, ecKey(t), "k1", assertionClaims("kj")),
	} {
		for _, h := range []http.HandlerFunc{s.ServeIntrospect, s.ServeRevoke} {
			if r := call(t, h, withAssertion(form("token", tok), a)); r.status != 401 || r.str("error") != "invalid_client" {
				t.Fatalf("%s: %d %s", name, r.status, r.body)
			}
		}
	}
	if !valid(s, tok) {
		t.Fatal("a refused revocation revoked the token")
	}
	if r := call(t, s.ServeRevoke, withAssertion(form("token", tok), good())); r.status != 200 {
		t.Fatalf("revocation: %d %s", r.status, r.body)
	}
	if valid(s, tok) {
		t.Fatal("the token survived its revocation")
	}
}

// TestTLSClientAuth: a tls_client_auth client authenticates with a
// certificate whose chain the TLS server verified and whose subject is
// the registered one, with its client_id in the form; an unverified
// chain, another subject, no certificate or a secret are refused.
func TestTLSClientAuth(t *testing.T) {
	f := newKeyFixture(t)
	s := f.svc
	tok := post(t, s, credsForm("client_id", "pki"), tlsState(f.pkiCert, true)).wantToken(t).str("access_token")
	other := selfSignedCert(t, ecKey(t), pkix.Name{CommonName: "pki-client", Organization: []string{"Another"}})
	post(t, s, credsForm("client_id", "pki"), tlsState(f.pkiCert, false)).wantError(t, 401, "invalid_client")
	post(t, s, credsForm("client_id", "pki"), tlsState(other, true)).wantError(t, 401, "invalid_client")
	post(t, s, credsForm("client_id", "pki")).wantError(t, 401, "invalid_client")
	post(t, s, credsForm("client_id", "pki", "client_secret", "x"), tlsState(f.pkiCert, true)).wantError(t, 401, "invalid_client")
	post(t, s, credsForm(), basic("pki", "x"), tlsState(f.pkiCert, true)).wantError(t, 401, "invalid_client")
	// The certificate authenticates pki only: a secret client presenting
	// it still needs its secret, and kj its assertion.
	post(t, s, credsForm("client_id", "kj"), tlsState(f.pkiCert, true)).wantError(t, 401, "invalid_client")
	// Introspection and revocation take it too.
	if r := call(t, s.ServeIntrospect, form("client_id", "pki", "token", tok), tlsState(f.pkiCert, true)); r.json["active"] != true {
		t.Fatalf("introspection: %d %s", r.status, r.body)
	}
	if r := call(t, s.ServeIntrospect, form("client_id", "pki", "token", tok), tlsState(other, true)); r.status != 401 {
		t.Fatalf("introspection with another certificate: %d %s", r.status, r.body)
	}
	if r := call(t, s.ServeRevoke, form("client_id", "pki", "token", tok), tlsState(f.pkiCert, true)); r.status != 200 || valid(s, tok) {
		t.Fatalf("revocation: %d %s", r.status, r.body)
	}
}

// TestSelfSignedTLSClientAuth: the certificate's key must be in the
// client's JWK Set; its chain is not checked.
func TestSelfSignedTLSClientAuth(t *testing.T) {
	f := newKeyFixture(t)
	s := f.svc
	post(t, s, credsForm("client_id", "self"), tlsState(f.selfCrt, false)).wantToken(t)
	stranger := selfSignedCert(t, ecKey(t), pkix.Name{CommonName: "anything"})
	post(t, s, credsForm("client_id", "self"), tlsState(stranger, false)).wantError(t, 401, "invalid_client")
	post(t, s, credsForm("client_id", "self")).wantError(t, 401, "invalid_client")
}

// TestActingFingerprintKeys: a client suspended with a revoked user acts
// again once its keys change, as one with a new secret does.
func TestActingFingerprintKeys(t *testing.T) {
	k1, k2 := ecKey(t), ecKey(t)
	a := &Client{ID: "c", UserID: "u", Auth: method(t, clientauth.PrivateKeyJWT, ecJWKS("k", k1), clientauth.CertMatch{})}
	b := &Client{ID: "c", UserID: "u", Auth: method(t, clientauth.PrivateKeyJWT, ecJWKS("k", k2), clientauth.CertMatch{})}
	if string(a.actingFingerprint()) == string(b.actingFingerprint()) {
		t.Fatal("new keys leave the fingerprint unchanged")
	}
}
