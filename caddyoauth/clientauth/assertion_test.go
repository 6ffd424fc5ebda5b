package clientauth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestVerifyAssertionAlgorithms: an assertion signed with each accepted
// alg by a key of the client's set is accepted, with or without a kid.
func TestVerifyAssertionAlgorithms(t *testing.T) {
	v, now := newTestVerifier(t, Options{})
	for _, alg := range []string{"RS256", "PS256", "ES256", "EdDSA"} {
		for _, kid := range []string{"k1", ""} {
			k := newTestKey(t, alg, kid)
			c := inlineClient(t, newTestKey(t, "ES256", "other"), k)
			if err := v.VerifyAssertion(context.Background(), c, k.sign(t, nil, goodClaims(*now)), testIssuer); err != nil {
				t.Errorf("%s kid %q: %v", alg, kid, err)
			}
		}
	}
}

// TestVerifyAssertionRefusals: each broken rule gets an *Error, and the
// right one.
func TestVerifyAssertionRefusals(t *testing.T) {
	v, now := newTestVerifier(t, Options{})
	key := newTestKey(t, "ES256", "k1")
	c := inlineClient(t, key)
	stranger := newTestKey(t, "ES256", "k1") // same kid, another key
	rsaKey := newTestKey(t, "RS256", "r1")
	with := func(change func(map[string]any)) map[string]any {
		cl := goodClaims(*now)
		change(cl)
		return cl
	}
	cases := []struct {
		name, assertion, want string
	}{
		{"aud is the token endpoint", key.sign(t, nil, with(func(c map[string]any) { c["aud"] = testIssuer + "/oauth/token" })), "aud"},
		{"aud has the issuer and another", key.sign(t, nil, with(func(c map[string]any) { c["aud"] = []string{testIssuer, "https://other.example"} })), "aud"},
		{"aud with a trailing slash", key.sign(t, nil, with(func(c map[string]any) { c["aud"] = testIssuer + "/" })), "aud"},
		{"no aud", key.sign(t, nil, with(func(c map[string]any) { delete(c, "aud") })), "aud"},
		{"expired", key.sign(t, nil, with(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })), "expired"},
		{"no exp", key.sign(t, nil, with(func(c map[string]any) { delete(c, "exp") })), "exp"},
		{"exp too far", key.sign(t, nil, with(func(c map[string]any) { c["exp"] = now.Add(2 * time.Hour).Unix() })), "ahead"},
		{"exp a string", key.sign(t, nil, with(func(c map[string]any) { c["exp"] = "soon" })), "malformed"},
		{"iat ahead", key.sign(t, nil, with(func(c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() })), "iat"},
		{"nbf ahead", key.sign(t, nil, with(func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() })), "nbf"},
		{"iss another client", key.sign(t, nil, with(func(c map[string]any) { c["iss"] = "other" })), "iss"},
		{"sub another client", key.sign(t, nil, with(func(c map[string]any) { c["sub"] = "other" })), "iss"},
		{"no jti", key.sign(t, nil, with(func(c map[string]any) { delete(c, "jti") })), "jti"},
		{"jti too long", key.sign(t, nil, with(func(c map[string]any) { c["jti"] = strings.Repeat("j", 300) })), "jti"},
		{"key not in the set", stranger.sign(t, nil, goodClaims(*now)), "not signed by a key"},
		{"unknown kid", stranger.sign(t, map[string]any{"kid": "k9"}, goodClaims(*now)), "not signed by a key"},
		{"key of another type", rsaKey.sign(t, map[string]any{"kid": "k1"}, goodClaims(*now)), "not signed by a key"},
		{"alg none", unsigned(goodClaims(*now)), "alg"},
		{"alg HS256", hmacSigned([]byte("a shared secret of the client"), goodClaims(*now)), "alg"},
		{"typ of a DPoP proof", key.sign(t, map[string]any{"typ": "dpop+jwt"}, goodClaims(*now)), "typ"},
		{"typ of an access token", key.sign(t, map[string]any{"typ": "at+jwt"}, goodClaims(*now)), "typ"},
		{"crit", key.sign(t, map[string]any{"crit": []string{"exp"}}, goodClaims(*now)), "header"},
		{"not a JWT", "abc", "not a signed JWT"},
		{"too large", strings.Repeat("a", MaxAssertionSize+1), "too large"},
		{"signature cut", strings.TrimRight(key.sign(t, nil, goodClaims(*now)), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), "not signed"},
	}
	for _, tc := range cases {
		err := v.VerifyAssertion(context.Background(), c, tc.assertion, testIssuer)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: got %v, want a refusal", tc.name, err)
			continue
		}
		if !strings.Contains(e.Description, tc.want) {
			t.Errorf("%s: refused with %q, want it to say %q", tc.name, e.Description, tc.want)
		}
	}
}

// TestVerifyAssertionAccepts: what the rules leave room for is accepted.
func TestVerifyAssertionAccepts(t *testing.T) {
	v, now := newTestVerifier(t, Options{})
	key := newTestKey(t, "ES256", "k1")
	c := inlineClient(t, key)
	cases := map[string]func(h, c map[string]any){
		"aud an array of the issuer":    func(_, c map[string]any) { c["aud"] = []string{testIssuer} },
		"typ JWT":                       func(h, _ map[string]any) { h["typ"] = "JWT" },
		"typ empty":                     func(h, _ map[string]any) { h["typ"] = "" },
		"typ client-authentication+jwt": func(h, _ map[string]any) { h["typ"] = "client-authentication+jwt" },
		"typ application/client-authentication+jwt": func(h, _ map[string]any) { h["typ"] = "application/client-authentication+jwt" },
		"no iat":                         func(_, c map[string]any) { delete(c, "iat") },
		"exp just past, within the skew": func(_, c map[string]any) { c["exp"] = now.Add(-10 * time.Second).Unix() },
		"exp an hour ahead":              func(_, c map[string]any) { c["exp"] = now.Add(time.Hour).Unix() },
		"fractional times": func(_, c map[string]any) {
			c["exp"] = float64(now.Unix()) + 60.5
			c["iat"] = float64(now.Unix()) - 0.25
		},
	}
	for name, change := range cases {
		h, cl := map[string]any{}, goodClaims(*now)
		change(h, cl)
		if err := v.VerifyAssertion(context.Background(), c, key.sign(t, h, cl), testIssuer); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestVerifyAssertionReplay: an assertion is accepted once; its jti is
// the client's own, so another client may use the same jti.
func TestVerifyAssertionReplay(t *testing.T) {
	v, now := newTestVerifier(t, Options{})
	key := newTestKey(t, "EdDSA", "k1")
	c := inlineClient(t, key)
	a := key.sign(t, nil, goodClaims(*now))
	if err := v.VerifyAssertion(context.Background(), c, a, testIssuer); err != nil {
		t.Fatal(err)
	}
	err := v.VerifyAssertion(context.Background(), c, a, testIssuer)
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(e.Description, "already used") {
		t.Fatalf("replayed assertion: %v", err)
	}
	// The same jti from another client is that client's own.
	other := Client{ID: "other", Method: c.Method}
	cl := goodClaims(*now)
	cl["iss"], cl["sub"], cl["jti"] = "other", "other", "shared-jti"
	if err := v.VerifyAssertion(context.Background(), other, key.sign(t, nil, cl), testIssuer); err != nil {
		t.Fatal(err)
	}
	cl["iss"], cl["sub"] = testClient, testClient
	if err := v.VerifyAssertion(context.Background(), c, key.sign(t, nil, cl), testIssuer); err != nil {
		t.Fatalf("the same jti from another client: %v", err)
	}
}

// TestVerifyAssertionConcurrentReplay: of simultaneous presentations of
// one assertion, exactly one is accepted.
func TestVerifyAssertionConcurrentReplay(t *testing.T) {
	v, now := newTestVerifier(t, Options{})
	key := newTestKey(t, "ES256", "k1")
	c := inlineClient(t, key)
	a := key.sign(t, nil, goodClaims(*now))
	const n = 16
	errs := make(chan error, n)
	for range n {
		go func() { errs <- v.VerifyAssertion(context.Background(), c, a, testIssuer) }()
	}
	ok := 0
	for range n {
		if <-errs == nil {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d simultaneous presentations accepted, want 1", ok, n)
	}
}

// TestVerifyAssertionMethod: a client of another method, and one with no
// method, is refused whatever it signs.
func TestVerifyAssertionMethod(t *testing.T) {
	v, now := newTestVerifier(t, Options{})
	key := newTestKey(t, "ES256", "k1")
	m, err := NewMethod(SelfSignedTLSClientAuth, jwks(key), "", CertMatch{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Client{{ID: testClient, Method: m}, {ID: testClient}} {
		var e *Error
		if err := v.VerifyAssertion(context.Background(), c, key.sign(t, nil, goodClaims(*now)), testIssuer); !errors.As(err, &e) {
			t.Errorf("method %v: %v", c.Method, err)
		}
	}
}

// TestSubject reads the unverified sub to find the client by.
func TestSubject(t *testing.T) {
	key := newTestKey(t, "ES256", "k1")
	if sub, err := Subject(key.sign(t, nil, goodClaims(time.Now()))); err != nil || sub != testClient {
		t.Fatalf("Subject = %q, %v", sub, err)
	}
	for _, bad := range []string{"", "a.b", "a.%%%.c", unsigned(map[string]any{"iss": "x"}), strings.Repeat("a.", MaxAssertionSize)} {
		if _, err := Subject(bad); err == nil {
			t.Errorf("Subject(%.20q) accepted", bad)
		}
	}
}
