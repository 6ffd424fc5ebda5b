package integration

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2/jws"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// Clients that authenticate with a key: their assertions are signed here
// with golang.org/x/oauth2/jws, another JOSE implementation than the
// gateway's.

const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// jwksHost serves a client's JWK Set over https on loopback, with a
// certificate the gateway trusts through SSL_CERT_FILE, and counts its
// fetches.
type jwksHost struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	fetches atomic.Int32
}

func startJWKSHost(t *testing.T, body []byte) (*jwksHost, string) {
	t.Helper()
	h := &jwksHost{body: body}
	h.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.fetches.Add(1)
		h.mu.Lock()
		defer h.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "max-age=3600")
		_, _ = w.Write(h.body)
	}))
	t.Cleanup(h.Close)
	certFile := filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return h, certFile
}

func (h *jwksHost) publish(body []byte) {
	h.mu.Lock()
	h.body = body
	h.mu.Unlock()
}

// rsaSigner is a client's RSA key and its kid.
type rsaSigner struct {
	kid string
	key *rsa.PrivateKey
}

func newRSASigner(t *testing.T, kid string) *rsaSigner {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &rsaSigner{kid: kid, key: k}
}

func rsaJWKS(signers ...*rsaSigner) []byte {
	keys := make([]any, len(signers))
	for i, s := range signers {
		keys[i] = map[string]any{"kty": "RSA", "kid": s.kid, "use": "sig", "alg": "RS256",
			"n": base64.RawURLEncoding.EncodeToString(s.key.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(s.key.E)).Bytes())}
	}
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

var keyJTI atomic.Int64

// assert signs a client assertion of clientID for aud, valid for ttl
// (negative: expired), with a fresh jti.
func (s *rsaSigner) assert(t *testing.T, clientID, aud string, ttl time.Duration) string {
	t.Helper()
	now := time.Now()
	iat := now.Add(min(ttl, 0) - time.Second)
	a, err := jws.Encode(&jws.Header{Algorithm: "RS256", Typ: "JWT", KeyID: s.kid}, &jws.ClaimSet{
		Iss: clientID, Sub: clientID, Aud: aud, Iat: iat.Unix(), Exp: now.Add(ttl).Unix(),
		PrivateClaims: map[string]any{"jti": fmt.Sprintf("jti-%d-%d", now.UnixNano(), keyJTI.Add(1))},
	}, s.key)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// unsignedAssertion is an assertion with alg (none or HS256) and a
// signature that is no RSA one.
func unsignedAssertion(alg, clientID, aud string) string {
	h, _ := json.Marshal(map[string]any{"alg": alg, "typ": "JWT"})
	c, _ := json.Marshal(map[string]any{"iss": clientID, "sub": clientID, "aud": aud, "exp": time.Now().Add(time.Minute).Unix(), "jti": alg + "-jti"})
	sig := ""
	if alg != "none" {
		sig = base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	}
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "." + sig
}

func assertionForm(assertion string, kv ...string) url.Values {
	f := url.Values{"client_assertion_type": {jwtBearer}, "client_assertion": {assertion}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

func wantInvalidClient(t *testing.T, what string, r *gt.Response, assertion string) {
	t.Helper()
	if r.Status != http.StatusUnauthorized || r.Str("error") != "invalid_client" {
		t.Fatalf("%s: %d %s, want 401 invalid_client", what, r.Status, r.Body)
	}
	if r.Header.Get("WWW-Authenticate") != "" {
		t.Fatalf("%s: a Basic challenge answers an assertion", what)
	}
	if assertion != "" && strings.Contains(string(r.Body), assertion) {
		t.Fatalf("%s: the answer echoes the assertion", what)
	}
}

// TestPrivateKeyJWT: a client configured with a jwks_uri authenticates
// at the token, introspection and revocation endpoints with assertions
// its key signed for the issuer; a wrong aud (the token endpoint URL), an
// expired or replayed assertion, a key not in its JWK Set, and alg none
// or HS256 are refused with 401 invalid_client at each of them. When the
// client rotates its key, the first assertion with the new key fetches
// its set again and is accepted; the old key stops working. Neither the
// answers nor the log hold an assertion.
func TestPrivateKeyJWT(t *testing.T) {
	k1, k2, stranger := newRSASigner(t, "k1"), newRSASigner(t, "k2"), newRSASigner(t, "k1")
	host, certFile := startJWKSHost(t, rsaJWKS(k1))
	up := gt.StartUpstream(t)
	g := gt.Start(t, gt.Config(fmt.Sprintf(`
oauth {
	store memory
	client partner {
		grants client_credentials
		scopes read
		user partner-user
		token_endpoint_auth_method private_key_jwt
		jwks_uri %s/jwks.json
	}
}`, host.URL), fmt.Sprintf(`
oauth_server
oauth_protect
reverse_proxy %s`, up.Addr())), gt.WithEnv("SSL_CERT_FILE="+certFile))

	md := gt.Get(t, g.URL+"/.well-known/oauth-authorization-server", "")
	iss := md.Str("issuer")
	if !strings.Contains(string(md.Body), `"private_key_jwt"`) || !strings.Contains(string(md.Body), `"token_endpoint_auth_signing_alg_values_supported":["RS256","PS256","ES256","EdDSA"]`) {
		t.Fatalf("metadata: %s", md.Body)
	}
	token := func(a string, kv ...string) *gt.Response {
		return gt.PostForm(t, g.URL+"/oauth/token", "", "", assertionForm(a, append([]string{"grant_type", "client_credentials"}, kv...)...))
	}
	var seen []string // every assertion sent, none of which may be logged
	sign := func(s *rsaSigner, aud string, ttl time.Duration) string {
		a := s.assert(t, "partner", aud, ttl)
		seen = append(seen, a)
		return a
	}

	// A good assertion, with or without client_id.
	r := token(sign(k1, iss, time.Minute), "client_id", "partner")
	if r.Status != 200 || r.Str("access_token") == "" {
		t.Fatalf("good assertion: %d %s", r.Status, r.Body)
	}
	access := r.Str("access_token")
	if r := token(sign(k1, iss, time.Minute)); r.Status != 200 {
		t.Fatalf("without client_id: %d %s", r.Status, r.Body)
	}
	if r := gt.Get(t, g.URL+"/api", access); r.Status != 200 || up.Last().Get("X-User-ID") != "partner-user" || up.Last().Get("X-OAuth-Client-ID") != "partner" {
		t.Fatalf("the token through the gateway: %d %v", r.Status, up.Last())
	}

	// The client rotates to k2: its set is fetched again once.
	before := host.fetches.Load()
	host.publish(rsaJWKS(k2))
	if r := token(sign(k2, iss, time.Minute)); r.Status != 200 {
		t.Fatalf("rotated key: %d %s", r.Status, r.Body)
	}
	if n := host.fetches.Load(); n != before+1 {
		t.Fatalf("%d fetches for the rotation, want 1", n-before)
	}
	a := sign(k1, iss, time.Minute)
	wantInvalidClient(t, "withdrawn key", token(a), a)

	replayed := sign(k2, iss, time.Minute)
	if r := token(replayed); r.Status != 200 {
		t.Fatalf("first use: %d %s", r.Status, r.Body)
	}
	refused := map[string]string{
		"wrong aud (the token endpoint)": sign(k2, iss+"/oauth/token", time.Minute),
		"expired":                        sign(k2, iss, -2*time.Minute),
		"replayed jti":                   replayed,
		"key not in the JWK Set":         sign(stranger, iss, time.Minute),
		"alg none":                       unsignedAssertion("none", "partner", iss),
		"alg HS256":                      unsignedAssertion("HS256", "partner", iss),
	}
	for what, a := range refused {
		wantInvalidClient(t, "token endpoint, "+what, token(a), a)
	}

	// Introspection and revocation take assertions under the same rules.
	introspect := func(a, tok string) *gt.Response {
		return gt.PostForm(t, g.URL+"/oauth/introspect", "", "", assertionForm(a, "token", tok))
	}
	revoke := func(a, tok string) *gt.Response {
		return gt.PostForm(t, g.URL+"/oauth/revoke", "", "", assertionForm(a, "token", tok))
	}
	if r := introspect(sign(k2, iss, time.Minute), access); r.Status != 200 || r.JSON["active"] != true {
		t.Fatalf("introspection: %d %s", r.Status, r.Body)
	}
	for what, a := range refused {
		wantInvalidClient(t, "introspection, "+what, introspect(a, access), a)
		wantInvalidClient(t, "revocation, "+what, revoke(a, access), a)
	}
	if r := gt.Get(t, g.URL+"/api", access); r.Status != 200 {
		t.Fatalf("a refused revocation revoked the token: %d", r.Status)
	}
	if r := revoke(sign(k2, iss, time.Minute), access); r.Status != 200 {
		t.Fatalf("revocation: %d %s", r.Status, r.Body)
	}
	if r := gt.Get(t, g.URL+"/api", access); r.Status != 401 {
		t.Fatalf("the revoked token still passes: %d", r.Status)
	}

	for _, a := range seen {
		if strings.Contains(g.Logs(), a) || strings.Contains(g.Logs(), strings.Split(a, ".")[2]) {
			t.Fatal("the log holds an assertion")
		}
	}
}

// TestPrivateKeyJWTRegistered: a client that registers itself with
// private_key_jwt and a jwks_uri gets no secret and authenticates with
// its key; its jwks_uri on loopback is fetched because
// allow_private_addresses says so.
func TestPrivateKeyJWTRegistered(t *testing.T) {
	k1 := newRSASigner(t, "agent-1")
	host, certFile := startJWKSHost(t, rsaJWKS(k1))
	g := gt.Start(t, gt.Config(`
oauth {
	store memory
	scopes read
	dynamic_clients {
		registration token {env.REGISTRATION_TOKEN}
		grants client_credentials
		scopes read
		allow_private_addresses
	}
}`, `oauth_server`), gt.WithEnv("SSL_CERT_FILE="+certFile, "REGISTRATION_TOKEN=an-initial-access-token"))
	body := fmt.Sprintf(`{"client_name":"Agent","grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":%q}`, host.URL+"/jwks.json")
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/oauth/register", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer an-initial-access-token")
	reg := gt.Do(t, req)
	if reg.Status != 201 || reg.Str("client_secret") != "" || reg.Str("token_endpoint_auth_method") != "private_key_jwt" || reg.Str("jwks_uri") == "" {
		t.Fatalf("registration: %d %s", reg.Status, reg.Body)
	}
	id := reg.Str("client_id")
	iss := gt.Get(t, g.URL+"/.well-known/oauth-authorization-server", "").Str("issuer")
	r := gt.PostForm(t, g.URL+"/oauth/token", "", "", assertionForm(k1.assert(t, id, iss, time.Minute), "grant_type", "client_credentials"))
	if r.Status != 200 || r.Str("scope") != "read" {
		t.Fatalf("token: %d %s", r.Status, r.Body)
	}
	// No secret authenticates it.
	if r := gt.PostForm(t, g.URL+"/oauth/token", id, "", url.Values{"grant_type": {"client_credentials"}}); r.Status != 401 {
		t.Fatalf("without an assertion: %d %s", r.Status, r.Body)
	}
}
