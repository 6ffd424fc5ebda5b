package authz

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/dpop"
	"github.com/caddyoauth/gateway/internal/dpoptest"
)

const tokenURL = "https://auth.example.com/oauth/token"

// dpopKey is a client's DPoP key pair.
type dpopKey struct{ *dpoptest.Key }

func newDPoPKey(t testing.TB) *dpopKey { return &dpopKey{dpoptest.NewKey(t)} }

// proof makes a proof for htm htu, with ath for token and nonce when set.
func (k *dpopKey) proof(t testing.TB, htm, htu, token, nonce string) string {
	t.Helper()
	return k.Proof(t, htm, htu, token, nonce, time.Now())
}

// withProof adds a DPoP proof for the token endpoint to a test request.
func (k *dpopKey) withProof(t testing.TB) auth {
	p := k.proof(t, http.MethodPost, tokenURL, "", "")
	return header("DPoP", p)
}

// withCert makes a test request come over a TLS connection presenting der
// as its client certificate.
func withCert(der string) auth {
	return func(r *http.Request) {
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Raw: []byte(der)}}}
	}
}

// newDPoPService is the test service with DPoP proofs checked; edit
// changes the verifier's config.
func newDPoPService(t testing.TB, edit func(*dpop.Config)) (*Service, StaticClients) {
	t.Helper()
	return newTestService(t, func(c *Config) {
		vc := dpop.Config{Replay: dpop.StoreReplayCache(memStore(t))}
		if edit != nil {
			edit(&vc)
		}
		v, err := dpop.NewVerifier(vc)
		if err != nil {
			t.Fatal(err)
		}
		c.DPoP, c.TokenPath = v, "/oauth/token"
	})
}

// wantBound checks a token answer of token_type DPoP whose access token
// is bound to jkt.
func wantBound(t testing.TB, s *Service, r *reply, jkt string) *Identity {
	t.Helper()
	if r.status != 200 || r.str("token_type") != TokenTypeDPoP {
		t.Fatalf("got %d %s, want a DPoP token", r.status, r.body)
	}
	id, err := s.Validate(context.Background(), r.str("access_token"))
	if err != nil {
		t.Fatal(err)
	}
	if id.Cnf == nil || id.Cnf.JKT != jkt {
		t.Fatalf("the access token's cnf is %+v, want jkt %s", id.Cnf, jkt)
	}
	return id
}

func TestTokenEndpointBindsTokensToTheProofKey(t *testing.T) {
	s, _ := newDPoPService(t, nil)
	k := newDPoPKey(t)
	cc := post(t, s, form("grant_type", "client_credentials"), as("svc"), k.withProof(t))
	wantBound(t, s, cc, k.JKT)

	pw := post(t, s, form("grant_type", "password", "username", "alice", "password", alicePass), as("app"), k.withProof(t))
	wantBound(t, s, pw, k.JKT)
	// A confidential client's refresh token is bound to its authentication
	// (RFC 9449 §5): it refreshes without a proof, to a bearer token.
	r := refreshGrant(t, s, pw.str("refresh_token"), "", as("app")).wantToken(t)
	if id, err := s.Validate(context.Background(), r.str("access_token")); err != nil || id.Cnf != nil {
		t.Fatalf("a refresh without a proof: %+v, %v", id, err)
	}

	code := mintCode(t, s, "app", appRedirect, "user-1", "read")
	ac := post(t, s, form("grant_type", "authorization_code", "code", code, "redirect_uri", appRedirect), as("app"), k.withProof(t))
	wantBound(t, s, ac, k.JKT)

	// Without a proof, a bearer token, as before.
	bearer := post(t, s, form("grant_type", "client_credentials"), as("svc")).wantToken(t)
	if id, _ := s.Validate(context.Background(), bearer.str("access_token")); id.Cnf != nil {
		t.Fatalf("a bearer token has cnf %+v", id.Cnf)
	}
}

// TestDPoPBoundTokenShowsItsKey: introspection and JWT access tokens carry
// cnf.JKT (RFC 9449 §6), and introspection says token_type DPoP.
func TestDPoPBoundTokenShowsItsKey(t *testing.T) {
	s, clients := newDPoPService(t, nil)
	s.cfg.TokenFormat = FormatJWT
	s.keys = &keyRing{svc: s}
	k := newDPoPKey(t)
	r := post(t, s, form("grant_type", "client_credentials"), as("svc"), k.withProof(t))
	wantBound(t, s, r, k.JKT)
	c, ok := jwtClaimsOf(r.str("access_token"))
	if !ok || c.Cnf == nil || c.Cnf.JKT != k.JKT {
		t.Fatalf("the JWT's cnf is %+v", c)
	}
	in, err := s.Introspect(context.Background(), clients["rs"], r.str("access_token"), "")
	if err != nil || !in.Active || in.TokenType != TokenTypeDPoP || in.Cnf == nil || in.Cnf.JKT != k.JKT {
		t.Fatalf("introspection: %+v, %v", in, err)
	}
	b, _ := json.Marshal(in)
	if !strings.Contains(string(b), `"cnf":{"jkt":"`+k.JKT+`"}`) {
		t.Fatalf("introspection answer %s has no cnf.JKT", b)
	}
	bearer := post(t, s, form("grant_type", "client_credentials"), as("svc")).wantToken(t)
	if c, _ := jwtClaimsOf(bearer.str("access_token")); c.Cnf != nil {
		t.Fatalf("a bearer JWT has cnf %+v", c.Cnf)
	}
}

func TestTokenEndpointRefusesBadProofs(t *testing.T) {
	s, _ := newDPoPService(t, nil)
	k := newDPoPKey(t)
	for name, proof := range map[string]string{
		"another URL":    k.proof(t, http.MethodPost, "https://auth.example.com/oauth/revoke", "", ""),
		"another method": k.proof(t, http.MethodGet, tokenURL, "", ""),
		"not a JWT":      "nonsense",
	} {
		r := post(t, s, form("grant_type", "client_credentials"), as("svc"), header("DPoP", proof))
		r.wantError(t, 400, "invalid_dpop_proof")
		if strings.Contains(r.body, proof) {
			t.Fatalf("%s: the answer repeats the proof", name)
		}
	}
	// A proof is good once.
	p := header("DPoP", k.proof(t, http.MethodPost, tokenURL, "", ""))
	wantBound(t, s, post(t, s, form("grant_type", "client_credentials"), as("svc"), p), k.JKT)
	post(t, s, form("grant_type", "client_credentials"), as("svc"), p).wantError(t, 400, "invalid_dpop_proof")
}

// TestRefusedProofSpendsNoCode: the proof is checked before the grant, so
// a code presented with a bad proof can still be redeemed.
func TestRefusedProofSpendsNoCode(t *testing.T) {
	s, _ := newDPoPService(t, nil)
	k := newDPoPKey(t)
	code := mintCode(t, s, "app", appRedirect, "user-1", "read")
	f := form("grant_type", "authorization_code", "code", code, "redirect_uri", appRedirect)
	post(t, s, f, as("app"), header("DPoP", k.proof(t, http.MethodGet, tokenURL, "", ""))).wantError(t, 400, "invalid_dpop_proof")
	wantBound(t, s, post(t, s, f, as("app"), k.withProof(t)), k.JKT)
}

func TestClientRequiringDPoP(t *testing.T) {
	s, clients := newDPoPService(t, nil)
	clients["svc"].DPoPRequired = true
	post(t, s, form("grant_type", "client_credentials"), as("svc")).wantError(t, 400, "invalid_dpop_proof")
	k := newDPoPKey(t)
	wantBound(t, s, post(t, s, form("grant_type", "client_credentials"), as("svc"), k.withProof(t)), k.JKT)

	// Without a verifier no token can be bound, so none is issued.
	plain, clients := newTestService(t, nil)
	clients["svc"].DPoPRequired = true
	post(t, plain, form("grant_type", "client_credentials"), as("svc"), k.withProof(t)).wantError(t, 400, "invalid_dpop_proof")
}

func TestTokenEndpointNonce(t *testing.T) {
	nonces, err := dpop.NewHMACNonces(make([]byte, 32), time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newDPoPService(t, func(c *dpop.Config) { c.Nonces = nonces })
	k := newDPoPKey(t)
	r := post(t, s, form("grant_type", "client_credentials"), as("svc"), k.withProof(t))
	r.wantError(t, 400, "use_dpop_nonce")
	nonce := r.header.Get("DPoP-Nonce")
	if nonce == "" {
		t.Fatal("use_dpop_nonce without a DPoP-Nonce header")
	}
	p := k.proof(t, http.MethodPost, tokenURL, "", nonce)
	wantBound(t, s, post(t, s, form("grant_type", "client_credentials"), as("svc"), header("DPoP", p)), k.JKT)
}

// TestPublicClientRefreshTokenIsBound: a public client's refresh token is
// bound to its DPoP key (RFC 9449 §5): refused without a proof or with
// another key, unspent then, and refreshed with a proof of that key,
// the new refresh token bound to it again.
func TestPublicClientRefreshTokenIsBound(t *testing.T) {
	s, _ := newDPoPService(t, nil)
	k := newDPoPKey(t)
	code := mintCode(t, s, "pub", appRedirect, "user-1", "read")
	r := post(t, s, form("grant_type", "authorization_code", "code", code, "redirect_uri", appRedirect, "client_id", "pub"), k.withProof(t))
	wantBound(t, s, r, k.JKT)
	rt := r.str("refresh_token")
	f := form("grant_type", "refresh_token", "refresh_token", rt, "client_id", "pub")
	post(t, s, f).wantError(t, 400, "invalid_dpop_proof")
	post(t, s, f, newDPoPKey(t).withProof(t)).wantError(t, 400, "invalid_dpop_proof")
	next := post(t, s, f, k.withProof(t))
	wantBound(t, s, next, k.JKT)
	post(t, s, form("grant_type", "refresh_token", "refresh_token", next.str("refresh_token"), "client_id", "pub")).
		wantError(t, 400, "invalid_dpop_proof")
	wantBound(t, s, post(t, s, form("grant_type", "refresh_token", "refresh_token", next.str("refresh_token"), "client_id", "pub"),
		k.withProof(t)), k.JKT)
}

// TestCertificateBoundClient: a certificate-bound client's tokens carry
// the x5t#S256 of its connection's certificate; without one it gets none.
func TestCertificateBoundClient(t *testing.T) {
	s, clients := newDPoPService(t, nil)
	clients["svc"].CertificateBound = true
	post(t, s, form("grant_type", "client_credentials"), as("svc")).wantError(t, 400, "invalid_request")
	r := post(t, s, form("grant_type", "client_credentials"), as("svc"), withCert("cert-1")).wantToken(t)
	id, err := s.Validate(context.Background(), r.str("access_token"))
	if err != nil || id.Cnf == nil || id.Cnf.X5T != CertificateThumbprint([]byte("cert-1")) || id.Cnf.JKT != "" {
		t.Fatalf("cnf %+v, %v", id.Cnf, err)
	}
	in, _ := s.Introspect(context.Background(), clients["rs"], r.str("access_token"), "")
	b, _ := json.Marshal(in)
	if !strings.Contains(string(b), `"cnf":{"x5t#S256":"`+id.Cnf.X5T+`"}`) || in.TokenType != TokenTypeBearer {
		t.Fatalf("introspection %s", b)
	}
	// Both: a DPoP proof over a certificate.
	k := newDPoPKey(t)
	both := wantBound(t, s, post(t, s, form("grant_type", "client_credentials"), as("svc"), withCert("cert-1"), k.withProof(t)), k.JKT)
	if both.Cnf.X5T == "" {
		t.Fatal("a proof over a certificate dropped the certificate's binding")
	}
	// Another client presenting a certificate gets a bearer token.
	plain := post(t, s, form("grant_type", "password", "username", "alice", "password", alicePass), as("app"), withCert("cert-1")).wantToken(t)
	if id, _ := s.Validate(context.Background(), plain.str("access_token")); id.Cnf != nil {
		t.Fatalf("a client that is not certificate-bound got cnf %+v", id.Cnf)
	}
}

// TestPublicCertificateBoundRefresh: a public certificate-bound client's
// refresh token works only over its certificate.
func TestPublicCertificateBoundRefresh(t *testing.T) {
	s, clients := newDPoPService(t, nil)
	clients["pub"].CertificateBound = true
	code := mintCode(t, s, "pub", appRedirect, "user-1", "read")
	r := post(t, s, form("grant_type", "authorization_code", "code", code, "redirect_uri", appRedirect, "client_id", "pub"), withCert("c1")).wantToken(t)
	f := form("grant_type", "refresh_token", "refresh_token", r.str("refresh_token"), "client_id", "pub")
	post(t, s, f).wantError(t, 400, "invalid_request")
	post(t, s, f, withCert("c2")).wantError(t, 400, "invalid_grant")
	post(t, s, f, withCert("c1")).wantToken(t)
}

func TestCheckSender(t *testing.T) {
	s, _ := newDPoPService(t, nil)
	ctx := context.Background()
	k := newDPoPKey(t)
	const api = "https://api.example.com/orders"
	bound := &Identity{Cnf: &Confirmation{JKT: k.JKT}}
	req := func(dpopScheme bool, proof string, cs *tls.ConnectionState) SenderRequest {
		h := http.Header{}
		if proof != "" {
			h.Set("DPoP", proof)
		}
		return SenderRequest{Method: http.MethodGet, URL: api, Header: h, TLS: cs, Token: "tok", DPoP: dpopScheme}
	}
	if _, err := s.CheckSender(ctx, req(false, "", nil), &Identity{}); err != nil {
		t.Fatalf("a bearer token refused: %v", err)
	}
	if _, err := s.CheckSender(ctx, req(true, k.proof(t, "GET", api, "tok", ""), nil), &Identity{}); !errors.Is(err, ErrNotDPoPBound) {
		t.Fatalf("an unbound token in the DPoP scheme: %v", err)
	}
	if _, err := s.CheckSender(ctx, req(false, k.proof(t, "GET", api, "tok", ""), nil), bound); !errors.Is(err, ErrDPoPBoundAsBearer) {
		t.Fatalf("a DPoP-bound token as a bearer token: %v", err)
	}
	if _, err := s.CheckSender(ctx, req(true, k.proof(t, "GET", api, "tok", ""), nil), bound); err != nil {
		t.Fatalf("a good proof refused: %v", err)
	}
	var de *dpop.Error
	if _, err := s.CheckSender(ctx, req(true, "", nil), bound); !errors.As(err, &de) || de.Code != dpop.CodeInvalidProof {
		t.Fatalf("no proof: %v", err)
	}
	if _, err := s.CheckSender(ctx, req(true, newDPoPKey(t).proof(t, "GET", api, "tok", ""), nil), bound); !errors.As(err, &de) || de.Code != dpop.CodeInvalidToken {
		t.Fatalf("another key: %v", err)
	}
	if _, err := s.CheckSender(ctx, req(true, k.proof(t, "GET", api, "other", ""), nil), bound); !errors.As(err, &de) || de.Code != dpop.CodeInvalidProof {
		t.Fatalf("another token's ath: %v", err)
	}
	certBound := &Identity{Cnf: &Confirmation{X5T: CertificateThumbprint([]byte("c1"))}}
	conn := func(der string) *tls.ConnectionState {
		return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Raw: []byte(der)}}}
	}
	if _, err := s.CheckSender(ctx, req(false, "", conn("c1")), certBound); err != nil {
		t.Fatalf("the right certificate refused: %v", err)
	}
	for name, cs := range map[string]*tls.ConnectionState{"another certificate": conn("c2"), "no certificate": {}, "no TLS": nil} {
		if _, err := s.CheckSender(ctx, req(false, "", cs), certBound); !errors.Is(err, ErrCertificateBound) {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func TestAccessTokenSchemes(t *testing.T) {
	for _, tc := range []struct {
		header          []string
		token           string
		dpop, found, ok bool
	}{
		{nil, "", false, false, true},
		{[]string{"Bearer abc"}, "abc", false, true, true},
		{[]string{"bearer abc"}, "abc", false, true, true},
		{[]string{"DPoP abc"}, "abc", true, true, true},
		{[]string{"dpop abc"}, "abc", true, true, true},
		{[]string{"Basic abc"}, "", false, false, true},
		{[]string{"DPoP a b"}, "", true, true, false},
		{[]string{"DPoP abc", "DPoP abc"}, "", false, true, false},
	} {
		h := http.Header{"Authorization": tc.header}
		token, d, found, ok := AccessToken(h)
		if token != tc.token || d != tc.dpop || found != tc.found || ok != tc.ok {
			t.Errorf("%q: got %q %v %v %v", tc.header, token, d, found, ok)
		}
	}
}
