package caddyoauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/dpop"
	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
	"github.com/caddyoauth/gateway/internal/dpoptest"
)

const (
	testIssuer = "https://api.example.com"
	apiURL     = testIssuer + "/api"
)

// proofKey is a client's DPoP key.
type proofKey struct{ *dpoptest.Key }

func newProofKey(t *testing.T) *proofKey { return &proofKey{dpoptest.NewKey(t)} }

// proof signs a DPoP proof for htm htu, with ath for token when set and
// nonce when set, issued iatAgo ago.
func (k *proofKey) proof(t *testing.T, htm, htu, token, nonce string, iatAgo time.Duration) string {
	t.Helper()
	return k.Proof(t, htm, htu, token, nonce, time.Now().Add(-iatAgo))
}

// dpopProtect is an oauth_protect block guarding testIssuer over a service
// that checks DPoP proofs (with nonces when withNonce), and the service.
func dpopProtect(t *testing.T, withNonce bool) (*Protect, *authz.Service) {
	t.Helper()
	db, err := filestore.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	vc := dpop.Config{Replay: dpop.StoreReplayCache(db)}
	if withNonce {
		vc.Nonces = dpop.StoreNonces(db, 0, nil)
	}
	v, err := dpop.NewVerifier(vc)
	if err != nil {
		t.Fatal(err)
	}
	c := &authz.Client{ID: "svc", Grants: []string{authz.GrantClientCredentials}, Scopes: []string{"read"}, UserID: "svc-user"}
	c.SetSecret("s")
	cb := &authz.Client{ID: "mtls", Grants: []string{authz.GrantClientCredentials}, Scopes: []string{"read"}, CertificateBound: true}
	cb.SetSecret("s")
	svc := authz.New(authz.Config{AccessTokenTTL: time.Hour, DPoP: v, TokenPath: "/oauth/token",
		Issuer: func() (string, error) { return testIssuer, nil }}, db, authz.StaticClients{"svc": c, "mtls": cb}, nil, nil)
	p := &Protect{svc: svc, logger: zap.NewNop(), resourceID: testIssuer,
		UserHeader: DefaultUserHeader, ClientHeader: DefaultClientHeader, ScopeHeader: DefaultScopeHeader,
		challenge: `Bearer realm="api"`}
	p.prepareHeaders()
	return p, svc
}

// tokenFor issues a client_credentials token of client, DPoP-bound to k
// when k is set, over a connection presenting cert when set.
func tokenFor(t *testing.T, svc *authz.Service, client string, k *proofKey, cert string) string {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, testIssuer+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(client, "s")
	if k != nil {
		r.Header.Set("DPoP", k.proof(t, http.MethodPost, testIssuer+"/oauth/token", "", "", 0))
	}
	if cert != "" {
		r.TLS = peer(cert)
	}
	w := httptest.NewRecorder()
	svc.ServeToken(w, r)
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.AccessToken == "" {
		t.Fatalf("token: %d %s", w.Code, w.Body)
	}
	return body.AccessToken
}

func peer(der string) *tls.ConnectionState {
	return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Raw: []byte(der)}}}
}

// call sends GET path through p with the Authorization value auth and
// the DPoP proof (none when empty); edit may change the request.
func call(t *testing.T, p *Protect, path, auth, proof string, edit func(*http.Request)) (*httptest.ResponseRecorder, *recorder, int) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, testIssuer+path, nil)
	r.TLS = nil
	caddyhttp.NewTestReplacer(r)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	if proof != "" {
		r.Header.Set("DPoP", proof)
	}
	if edit != nil {
		edit(r)
	}
	w := httptest.NewRecorder()
	next := &recorder{}
	err := p.ServeHTTP(w, r, next)
	return w, next, statusOf(err)
}

func wantRefused(t *testing.T, w *httptest.ResponseRecorder, next *recorder, status int, challenge ...string) {
	t.Helper()
	if next.called || status == 0 {
		t.Fatalf("passed, want a refusal with %v", challenge)
	}
	got := w.Header().Values("WWW-Authenticate")
	if len(got) != len(challenge) {
		t.Fatalf("challenges %q, want %d containing %q", got, len(challenge), challenge)
	}
	for i, c := range challenge {
		if !strings.Contains(got[i], c) {
			t.Fatalf("challenge %q, want it to contain %q", got[i], c)
		}
	}
}

func TestProtectDPoP(t *testing.T) {
	p, svc := dpopProtect(t, false)
	k := newProofKey(t)
	tok := tokenFor(t, svc, "svc", k, "")
	good := func() string { return k.proof(t, http.MethodGet, apiURL, tok, "", 0) }

	t.Run("a good proof passes, and neither header goes on", func(t *testing.T) {
		_, next, status := call(t, p, "/api", "DPoP "+tok, good(), nil)
		if !next.called || status != 0 {
			t.Fatalf("refused: %d", status)
		}
		if next.header.Get("Authorization") != "" || next.header.Get("DPoP") != "" {
			t.Fatalf("the upstream got %v", next.header)
		}
		if next.header.Get("X-User-Id") != "svc-user" {
			t.Fatalf("identity %v", next.header)
		}
	})
	t.Run("as a bearer token", func(t *testing.T) {
		w, next, status := call(t, p, "/api", "Bearer "+tok, good(), nil)
		wantRefused(t, w, next, status, `Bearer realm="api", error="invalid_token", error_description="the access token is DPoP-bound`,
			`DPoP realm="api", algs="ES256 ES384 EdDSA RS256 PS256"`)
	})
	t.Run("without a proof", func(t *testing.T) {
		w, next, status := call(t, p, "/api", "DPoP "+tok, "", nil)
		wantRefused(t, w, next, status, `DPoP realm="api", error="invalid_dpop_proof", error_description="missing DPoP proof", algs="`)
	})
	t.Run("a proof for another URL, method or token", func(t *testing.T) {
		for _, proof := range []string{
			k.proof(t, http.MethodGet, testIssuer+"/other", tok, "", 0),
			k.proof(t, http.MethodPost, apiURL, tok, "", 0),
			k.proof(t, http.MethodGet, apiURL, tok+"x", "", 0),
			k.proof(t, http.MethodGet, apiURL, tok, "", 10*time.Minute),
		} {
			w, next, status := call(t, p, "/api", "DPoP "+tok, proof, nil)
			wantRefused(t, w, next, status, `error="invalid_dpop_proof"`)
		}
	})
	t.Run("another key", func(t *testing.T) {
		w, next, status := call(t, p, "/api", "DPoP "+tok, newProofKey(t).proof(t, http.MethodGet, apiURL, tok, "", 0), nil)
		wantRefused(t, w, next, status, `DPoP realm="api", error="invalid_token"`)
	})
	t.Run("a replayed proof", func(t *testing.T) {
		proof := good()
		if _, next, _ := call(t, p, "/api", "DPoP "+tok, proof, nil); !next.called {
			t.Fatal("first use refused")
		}
		w, next, status := call(t, p, "/api", "DPoP "+tok, proof, nil)
		wantRefused(t, w, next, status, `error_description="DPoP proof was already used"`)
	})
	t.Run("a bearer token in the DPoP scheme", func(t *testing.T) {
		bearer := tokenFor(t, svc, "svc", nil, "")
		w, next, status := call(t, p, "/api", "DPoP "+bearer, k.proof(t, http.MethodGet, apiURL, bearer, "", 0), nil)
		wantRefused(t, w, next, status, `DPoP realm="api", error="invalid_token", error_description="the access token is not DPoP-bound`)
		// In the Bearer scheme it passes, a stray DPoP header dropped.
		_, next, _ = call(t, p, "/api", "Bearer "+bearer, "junk", nil)
		if !next.called || next.header.Get("DPoP") != "" {
			t.Fatalf("a bearer token with a stray DPoP header: called %v, header %v", next.called, next.header)
		}
	})
	t.Run("the path as the client sent it, before handle_path", func(t *testing.T) {
		stripped := func(r *http.Request) {
			orig := *r
			u := *r.URL
			orig.URL = &u
			r.URL.Path = "/orders"
			*r = *r.WithContext(context.WithValue(r.Context(), caddyhttp.OriginalRequestCtxKey, orig))
		}
		_, next, status := call(t, p, "/api/orders", "DPoP "+tok, k.proof(t, http.MethodGet, testIssuer+"/api/orders", tok, "", 0), stripped)
		if !next.called {
			t.Fatalf("a proof for the path the client sent refused: %d", status)
		}
		w, next, status := call(t, p, "/api/orders", "DPoP "+tok, k.proof(t, http.MethodGet, testIssuer+"/orders", tok, "", 0), stripped)
		wantRefused(t, w, next, status, `error="invalid_dpop_proof"`)
	})
	t.Run("the origin from the config, not the Host header", func(t *testing.T) {
		w, next, status := call(t, p, "/api", "DPoP "+tok, k.proof(t, http.MethodGet, "https://evil.example/api", tok, "", 0),
			func(r *http.Request) { r.Host = "evil.example" })
		wantRefused(t, w, next, status, `error="invalid_dpop_proof"`)
	})
	t.Run("a block without resource takes the connection and Host", func(t *testing.T) {
		q := *p
		q.resourceID = ""
		_, next, status := call(t, &q, "/api", "DPoP "+tok, k.proof(t, http.MethodGet, "http://other.example:8080/api", tok, "", 0),
			func(r *http.Request) { r.Host = "other.example:8080" })
		if !next.called {
			t.Fatalf("refused: %d", status)
		}
	})
}

func TestProtectDPoPRequired(t *testing.T) {
	p, svc := dpopProtect(t, false)
	p.DPoP = DPoPRequired
	k := newProofKey(t)
	tok := tokenFor(t, svc, "svc", k, "")
	bearer := tokenFor(t, svc, "svc", nil, "")
	w, next, status := call(t, p, "/api", "Bearer "+bearer, "", nil)
	wantRefused(t, w, next, status, `DPoP realm="api", error="invalid_token", error_description="this resource takes DPoP-bound access tokens only", algs="`)
	w, next, status = call(t, p, "/api", "", "", nil)
	wantRefused(t, w, next, status, `DPoP realm="api", algs="`)
	if _, next, _ := call(t, p, "/api", "DPoP "+tok, k.proof(t, http.MethodGet, apiURL, tok, "", 0), nil); !next.called {
		t.Fatal("a DPoP-bound token refused")
	}
	// Where DPoP is allowed, a request without a token is offered both.
	p.DPoP = ""
	w, next, status = call(t, p, "/api", "", "", nil)
	wantRefused(t, w, next, status, `Bearer realm="api"`, `DPoP realm="api", algs="`)
}

func TestProtectDPoPNonce(t *testing.T) {
	p, svc := dpopProtect(t, true)
	k := newProofKey(t)
	nonceOf := func(w *httptest.ResponseRecorder) string {
		n := w.Header().Get("DPoP-Nonce")
		if n == "" {
			t.Fatalf("no DPoP-Nonce in %v", w.Header())
		}
		return n
	}
	// The token endpoint hands out the first nonce.
	r := httptest.NewRequest(http.MethodPost, testIssuer+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("svc", "s")
	r.Header.Set("DPoP", k.proof(t, http.MethodPost, testIssuer+"/oauth/token", "", "", 0))
	w := httptest.NewRecorder()
	svc.ServeToken(w, r)
	if w.Code != 400 || !strings.Contains(w.Body.String(), "use_dpop_nonce") {
		t.Fatalf("token request without a nonce: %d %s", w.Code, w.Body)
	}
	nonce := nonceOf(w)
	r = httptest.NewRequest(http.MethodPost, testIssuer+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("svc", "s")
	r.Header.Set("DPoP", k.proof(t, http.MethodPost, testIssuer+"/oauth/token", "", nonce, 0))
	w = httptest.NewRecorder()
	svc.ServeToken(w, r)
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(w.Body.Bytes(), &body); body.AccessToken == "" {
		t.Fatalf("token request with the nonce: %d %s", w.Code, w.Body)
	}
	bound := body.AccessToken

	w, next, status := call(t, p, "/api", "DPoP "+bound, k.proof(t, http.MethodGet, apiURL, bound, "", 0), nil)
	wantRefused(t, w, next, status, `DPoP realm="api", error="use_dpop_nonce"`)
	nonce = nonceOf(w)
	if _, next, _ := call(t, p, "/api", "DPoP "+bound, k.proof(t, http.MethodGet, apiURL, bound, nonce, 0), nil); !next.called {
		t.Fatal("a proof with the nonce refused")
	}
}

func TestProtectCertificateBound(t *testing.T) {
	p, svc := dpopProtect(t, false)
	tok := tokenFor(t, svc, "mtls", nil, "cert-1")
	onConn := func(cs *tls.ConnectionState) func(*http.Request) { return func(r *http.Request) { r.TLS = cs } }
	if _, next, status := call(t, p, "/api", "Bearer "+tok, "", onConn(peer("cert-1"))); !next.called {
		t.Fatalf("over its certificate: %d", status)
	}
	for name, cs := range map[string]*tls.ConnectionState{"another certificate": peer("cert-2"), "no certificate": {}, "no TLS": nil} {
		w, next, status := call(t, p, "/api", "Bearer "+tok, "", onConn(cs))
		if status != http.StatusUnauthorized {
			t.Fatalf("%s: status %d", name, status)
		}
		wantRefused(t, w, next, status, `Bearer realm="api", error="invalid_token", error_description="the access token is bound to a TLS client certificate`)
	}
}

// TestDPoPTrailerDropped: a DPoP trailer or Connection option never
// reaches the upstream of a protected route.
func TestDPoPTrailerDropped(t *testing.T) {
	if !dropped("DPoP", nil, true) || !dropped("dpop", nil, true) || dropped("DPoP", nil, false) {
		t.Fatal("DPoP is not dropped on protected routes only")
	}
	if err := checkIdentityHeader("DPoP"); err == nil {
		t.Fatal("DPoP accepted as an identity header")
	}
}

// TestResourceMetadataDPoP: a resource's metadata says
// dpop_bound_access_tokens_required only when every block guarding it
// requires DPoP, lists the proof algorithms configured, and offers
// certificate-bound tokens for an https resource.
func TestResourceMetadataDPoP(t *testing.T) {
	table, _, err := resourcesOf(t, `{
	oauth {
		store memory
		dpop {
			algorithms ES256 EdDSA
		}
	}
}

https://api.example.com {
	oauth_server
	handle /pay/* {
		oauth_protect {
			resource https://api.example.com/pay
			dpop required
		}
	}
	handle /mixed/* {
		oauth_protect {
			resource https://api.example.com/mixed
			dpop required
		}
	}
	handle /mixed/open/* {
		oauth_protect {
			resource https://api.example.com/mixed
		}
	}
	oauth_protect
}
`)
	if err != nil {
		t.Fatal(err)
	}
	docs := metadataDocs(t, table)
	for path, required := range map[string]bool{"/pay": true, "/mixed": false, "": false} {
		doc := docs["/.well-known/oauth-protected-resource"+path]
		if doc == nil {
			t.Fatalf("no document for %q in %v", path, docs)
		}
		if got, _ := doc["dpop_bound_access_tokens_required"].(bool); got != required {
			t.Errorf("%q: dpop_bound_access_tokens_required %v, want %v", path, doc["dpop_bound_access_tokens_required"], required)
		}
		if !reflect.DeepEqual(doc["dpop_signing_alg_values_supported"], []any{"ES256", "EdDSA"}) || doc["tls_client_certificate_bound_access_tokens"] != true {
			t.Errorf("%q: %v", path, doc)
		}
	}
}

// TestStoreContentIgnoresDPoPRecords: the replay records and the nonce key
// a gateway writes by itself do not make a store count as holding
// something a restore would overwrite.
func TestStoreContentIgnoresDPoPRecords(t *testing.T) {
	db := memDB(t)
	ctx := context.Background()
	v, err := dpop.NewVerifier(dpop.Config{Replay: dpop.StoreReplayCache(db), Nonces: dpop.StoreNonces(db, 0, nil)})
	if err != nil {
		t.Fatal(err)
	}
	k := newProofKey(t)
	_, err = v.Verify(ctx, dpop.Request{Method: "GET", URL: apiURL, Proofs: []string{k.proof(t, "GET", apiURL, "", "", 0)}})
	if e := new(dpop.Error); !errors.As(err, &e) || e.Code != dpop.CodeUseNonce {
		t.Fatalf("a proof without a nonce: %v", err)
	}
	var nonceErr *dpop.Error
	errors.As(err, &nonceErr)
	if _, err := v.Verify(ctx, dpop.Request{Method: "GET", URL: apiURL, Proofs: []string{k.proof(t, "GET", apiURL, "", nonceErr.Nonce, 0)}}); err != nil {
		t.Fatal(err)
	}
	if kind, err := storeContent(ctx, db); err != nil || kind != "" {
		t.Fatalf("a store with DPoP records only holds %q, %v", kind, err)
	}
	_ = db.Put(ctx, "at:x", []byte("1"), time.Minute)
	if kind, _ := storeContent(ctx, db); kind != "at:" {
		t.Fatalf("a store with a token holds %q", kind)
	}
}
