package clientauth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestParseKeySet: private or symmetric material refuses the set; keys
// the gateway cannot use are left out; a set with none usable is refused.
func TestParseKeySet(t *testing.T) {
	good := newTestKey(t, "ES256", "k1").jwk()
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallJWK := (&testKey{alg: "RS256", signer: small}).jwk()
	enc := newTestKey(t, "RS256", "e1").jwk()
	enc["use"] = "enc"
	withD := newTestKey(t, "ES256", "p1").jwk()
	withD["d"] = "AAAA"
	set := func(keys ...any) []byte {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return b
	}
	many := make([]any, MaxKeys+1)
	for i := range many {
		many[i] = good
	}
	for name, tc := range map[string]struct {
		body []byte
		want string // "" for accepted
		n    int
	}{
		"one key":            {set(good), "", 1},
		"unusable left out":  {set(good, smallJWK, enc, map[string]any{"kty": "XYZ"}), "", 1},
		"private member":     {set(good, withD), "private", 0},
		"symmetric key":      {set(good, map[string]any{"kty": "oct", "k": "c2VjcmV0"}), "private", 0},
		"nothing usable":     {set(smallJWK, enc), "no usable", 0},
		"empty":              {set(), "no usable", 0},
		"too many":           {set(many...), "more than", 0},
		"not JSON":           {[]byte("<html>"), "JSON", 0},
		"keys not an array":  {[]byte(`{"keys":{}}`), "JSON", 0},
		"a key not a object": {[]byte(`{"keys":[1]}`), "object", 0},
	} {
		ks, err := ParseKeySet(tc.body)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.want == "" && ks.Len() != tc.n:
			t.Errorf("%s: %d keys, want %d", name, ks.Len(), tc.n)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want an error saying %q", name, err, tc.want)
		}
	}
}

// TestNewMethod checks the shape of each method's registration.
func TestNewMethod(t *testing.T) {
	keys := jwks(newTestKey(t, "ES256", "k1"))
	ok := []struct {
		name string
		jwks []byte
		uri  string
		cert CertMatch
	}{
		{PrivateKeyJWT, keys, "", CertMatch{}},
		{PrivateKeyJWT, nil, "https://client.example/jwks.json", CertMatch{}},
		{SelfSignedTLSClientAuth, keys, "", CertMatch{}},
		{TLSClientAuth, nil, "", CertMatch{SubjectDN: "CN=client, O=Example"}},
		{TLSClientAuth, nil, "", CertMatch{DNS: "client.example"}},
		{TLSClientAuth, nil, "", CertMatch{IP: "192.0.2.7"}},
		{TLSClientAuth, nil, "", CertMatch{URI: "spiffe://example/client"}},
		{TLSClientAuth, nil, "", CertMatch{Email: "ops@client.example"}},
	}
	for _, tc := range ok {
		if _, err := NewMethod(tc.name, tc.jwks, tc.uri, tc.cert); err != nil {
			t.Errorf("%s %s %+v: %v", tc.name, tc.uri, tc.cert, err)
		}
	}
	bad := []struct {
		name string
		jwks []byte
		uri  string
		cert CertMatch
	}{
		{PrivateKeyJWT, nil, "", CertMatch{}},
		{PrivateKeyJWT, keys, "https://client.example/jwks.json", CertMatch{}},
		{PrivateKeyJWT, nil, "http://client.example/jwks.json", CertMatch{}},
		{PrivateKeyJWT, nil, "https://client.example/jwks.json#k", CertMatch{}},
		{PrivateKeyJWT, nil, "https://2130706433/jwks.json", CertMatch{}},
		{PrivateKeyJWT, []byte(`{"keys":[]}`), "", CertMatch{}},
		{PrivateKeyJWT, keys, "", CertMatch{DNS: "client.example"}},
		{TLSClientAuth, nil, "", CertMatch{}},
		{TLSClientAuth, nil, "", CertMatch{DNS: "a.example", IP: "192.0.2.7"}},
		{TLSClientAuth, keys, "", CertMatch{DNS: "a.example"}},
		{TLSClientAuth, nil, "", CertMatch{SubjectDN: "client"}},
		{TLSClientAuth, nil, "", CertMatch{SubjectDN: "XYZ=client"}},
		{TLSClientAuth, nil, "", CertMatch{IP: "not-an-ip"}},
		{"client_secret_jwt", keys, "", CertMatch{}},
	}
	for _, tc := range bad {
		if _, err := NewMethod(tc.name, tc.jwks, tc.uri, tc.cert); err == nil {
			t.Errorf("%s %q %s %+v accepted", tc.name, tc.jwks, tc.uri, tc.cert)
		}
	}
}

// keyHost serves a JWK Set over https on loopback and counts its fetches.
type keyHost struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	fetches atomic.Int32
}

func startKeyHost(t *testing.T, body []byte) *keyHost {
	h := &keyHost{body: body}
	h.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.fetches.Add(1)
		h.mu.Lock()
		defer h.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "max-age=600")
		_, _ = w.Write(h.body)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *keyHost) set(body []byte) {
	h.mu.Lock()
	h.body = body
	h.mu.Unlock()
}

func uriClient(t *testing.T, uri string, vetted bool) Client {
	t.Helper()
	m, err := NewMethod(PrivateKeyJWT, nil, uri, CertMatch{})
	if err != nil {
		t.Fatal(err)
	}
	return Client{ID: testClient, Method: m, Vetted: vetted}
}

// TestJWKSURIRotation: the set at a jwks_uri is fetched once and kept;
// a signature by a key it lacks fetches it again, so a client that
// rotates its keys goes on working, but at most once per
// RefreshInterval, so requests naming unknown keys cannot make the
// gateway fetch on each one.
func TestJWKSURIRotation(t *testing.T) {
	k1, k2, k3 := newTestKey(t, "ES256", "k1"), newTestKey(t, "RS256", "k2"), newTestKey(t, "EdDSA", "k3")
	host := startKeyHost(t, jwks(k1))
	roots := host.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	v, now := newTestVerifier(t, Options{RootCAs: roots})
	c := uriClient(t, host.URL+"/jwks.json", true)
	ctx := context.Background()
	verify := func(k *testKey) error { return v.VerifyAssertion(ctx, c, k.sign(t, nil, goodClaims(*now)), testIssuer) }

	for range 3 {
		if err := verify(k1); err != nil {
			t.Fatal(err)
		}
	}
	if n := host.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for three assertions, want 1", n)
	}
	// The client rotates to k2: the first assertion with it fetches the
	// set again.
	host.set(jwks(k2))
	if err := verify(k2); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if n := host.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after the rotation, want 2", n)
	}
	// k1 was withdrawn and is refused at once, as the set was fetched.
	if err := verify(k1); err == nil {
		t.Fatal("a withdrawn key is still accepted")
	}
	// Another rotation within RefreshInterval is not fetched...
	host.set(jwks(k3))
	for range 3 {
		if err := verify(k3); err == nil {
			t.Fatal("a key was fetched again within RefreshInterval")
		}
	}
	if n := host.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches within RefreshInterval, want 2", n)
	}
	// ...until it has passed.
	*now = now.Add(RefreshInterval)
	if err := verify(k3); err != nil {
		t.Fatalf("after RefreshInterval: %v", err)
	}
	// The set expires after its max-age and is fetched again.
	*now = now.Add(10*time.Minute + time.Second)
	if err := verify(k3); err != nil {
		t.Fatal(err)
	}
	if n := host.fetches.Load(); n != 4 {
		t.Fatalf("%d fetches after the set expired, want 4", n)
	}
}

// TestJWKSURIPrivateAddress: the jwks_uri of a client the operator did not
// vet is not fetched from loopback unless AllowPrivateAddresses says so;
// that of a vetted client is.
func TestJWKSURIPrivateAddress(t *testing.T) {
	k1 := newTestKey(t, "ES256", "k1")
	host := startKeyHost(t, jwks(k1))
	roots := host.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	for _, tc := range []struct {
		allow, vetted, ok bool
	}{{false, false, false}, {false, true, true}, {true, false, true}} {
		v, now := newTestVerifier(t, Options{RootCAs: roots, AllowPrivateAddresses: tc.allow})
		err := v.VerifyAssertion(context.Background(), uriClient(t, host.URL+"/jwks.json", tc.vetted), k1.sign(t, nil, goodClaims(*now)), testIssuer)
		var e *Error
		switch {
		case tc.ok && err != nil:
			t.Errorf("allow %v vetted %v: %v", tc.allow, tc.vetted, err)
		case !tc.ok && (!errors.As(err, &e) || !strings.Contains(e.Description, "could not be fetched")):
			t.Errorf("allow %v vetted %v: got %v, want the fetch refused", tc.allow, tc.vetted, err)
		}
	}
	if n := host.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (none for the refused address)", n)
	}
}

// TestJWKSURIFailure: a failed fetch or a bad set refuses the client and
// is kept FailureTTL, so each request does not fetch again.
func TestJWKSURIFailure(t *testing.T) {
	k1 := newTestKey(t, "ES256", "k1")
	host := startKeyHost(t, []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	roots := host.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	v, now := newTestVerifier(t, Options{RootCAs: roots})
	c := uriClient(t, host.URL+"/jwks.json", true)
	for range 3 {
		err := v.VerifyAssertion(context.Background(), c, k1.sign(t, nil, goodClaims(*now)), testIssuer)
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(e.Description, "no acceptable key set") {
			t.Fatalf("got %v", err)
		}
	}
	if n := host.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches of a failing set within FailureTTL, want 1", n)
	}
	host.set(jwks(k1))
	*now = now.Add(FailureTTL)
	if err := v.VerifyAssertion(context.Background(), c, k1.sign(t, nil, goodClaims(*now)), testIssuer); err != nil {
		t.Fatalf("after FailureTTL: %v", err)
	}
}

// TestKeysTTL bounds a set's lifetime.
func TestKeysTTL(t *testing.T) {
	for cc, want := range map[string]time.Duration{
		"":                 DefaultKeysTTL,
		"max-age=120":      2 * time.Minute,
		"max-age=5":        MinKeysTTL,
		"max-age=99999999": MaxKeysTTL,
		"no-store":         MinKeysTTL,
		"max-age=bad":      MinKeysTTL,
	} {
		h := http.Header{}
		if cc != "" {
			h.Set("Cache-Control", cc)
		}
		if got := keysTTL(h, time.Now()); got != want {
			t.Errorf("%q: %s, want %s", cc, got, want)
		}
	}
	h := http.Header{"Cache-Control": {"max-age=600"}, "Age": {"300"}}
	if got := keysTTL(h, time.Now()); got != 5*time.Minute {
		t.Errorf("with Age: %s", got)
	}
}

func ExampleAlgorithms() {
	fmt.Println(Algorithms())
	// Output: [RS256 PS256 ES256 EdDSA]
}
