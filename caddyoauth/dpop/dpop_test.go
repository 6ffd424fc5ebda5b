package dpop

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func TestVerifyAcceptsEachAlgorithm(t *testing.T) {
	for _, alg := range SupportedAlgorithms() {
		t.Run(alg, func(t *testing.T) {
			k := keyFor(t, alg)
			v := newVerifier(t, nil)
			p := mustAccept(t, v, req(k.good(t, claims())))
			if p.JKT != k.jkt(t) {
				t.Fatalf("jkt %s, want the key's thumbprint %s", p.JKT, k.jkt(t))
			}
			if !p.IssuedAt.Equal(t0) {
				t.Fatalf("IssuedAt %v, want %v", p.IssuedAt, t0)
			}
		})
	}
}

func TestVerifyRefusesWrongTyp(t *testing.T) {
	k := keyFor(t, "ES256")
	for _, typ := range []any{"jwt", "JWT", "DPoP+JWT", "dpop+jwt ", "application/dpop+jwt", nil} {
		h := k.header(t)
		if typ == nil {
			delete(h, "typ")
		} else {
			h["typ"] = typ
		}
		p, err := newVerifier(t, nil).Verify(context.Background(), req(k.proof(t, h, claims())))
		wantRefused(t, p, err, CodeInvalidProof, "typ must be dpop+jwt")
	}
}

func TestVerifyRefusesAlgNone(t *testing.T) {
	k := keyFor(t, "ES256")
	h := k.header(t)
	h["alg"] = "none"
	hb, _ := json.Marshal(h)
	cb, _ := json.Marshal(claims())
	for _, proof := range []string{b64(hb) + "." + b64(cb) + ".", k.proof(t, h, claims())} {
		p, err := newVerifier(t, nil).Verify(context.Background(), req(proof))
		wantRefused(t, p, err, CodeInvalidProof, "alg is not accepted")
	}
}

func TestVerifyRefusesHS256(t *testing.T) {
	secret := []byte("a shared secret of thirty-two by")
	h := map[string]any{"typ": "dpop+jwt", "alg": "HS256", "jwk": map[string]any{"kty": "oct", "k": b64(secret)}}
	hb, _ := json.Marshal(h)
	cb, _ := json.Marshal(claims())
	input := b64(hb) + "." + b64(cb)
	p, err := newVerifier(t, nil).Verify(context.Background(), req(input+"."+b64(hs256(secret, []byte(input)))))
	wantRefused(t, p, err, CodeInvalidProof, "alg is not accepted")
}

func TestVerifyRefusesAlgorithmNotConfigured(t *testing.T) {
	v := newVerifier(t, func(c *Config) { c.Algorithms = []string{"ES256"} })
	p, err := v.Verify(context.Background(), req(keyFor(t, "RS256").good(t, claims())))
	wantRefused(t, p, err, CodeInvalidProof, "alg is not accepted")
	mustAccept(t, v, req(keyFor(t, "ES256").good(t, claims())))
}

func TestVerifyRefusesMissingJWK(t *testing.T) {
	k := keyFor(t, "ES256")
	for _, jwk := range []any{"absent", nil} {
		h := k.header(t)
		if jwk == "absent" {
			delete(h, "jwk")
		} else {
			h["jwk"] = jwk
		}
		p, err := newVerifier(t, nil).Verify(context.Background(), req(k.proof(t, h, claims())))
		wantRefused(t, p, err, CodeInvalidProof, "no jwk header")
	}
}

func TestVerifyRefusesPrivateKeyInJWK(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			k := keyFor(t, alg)
			h := k.header(t)
			h["jwk"] = k.jwk(t, true)
			if _, ok := h["jwk"].(map[string]any)["d"]; !ok {
				t.Fatal("the private JWK has no d")
			}
			p, err := newVerifier(t, nil).Verify(context.Background(), req(k.proof(t, h, claims())))
			wantRefused(t, p, err, CodeInvalidProof, "jwk must be a public key")
		})
	}
}

func TestVerifyRefusesJWKNotFittingAlg(t *testing.T) {
	p384 := keyFor(t, "ES384")
	h := p384.header(t)
	h["alg"] = "ES256" // a P-384 key cannot make ES256 signatures
	p, err := newVerifier(t, nil).Verify(context.Background(), req(p384.proof(t, h, claims())))
	wantRefused(t, p, err, CodeInvalidProof, "does not fit its alg")

	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	k := &testKey{alg: "RS256", priv: small}
	p, err = newVerifier(t, nil).Verify(context.Background(), req(k.good(t, claims())))
	wantRefused(t, p, err, CodeInvalidProof, "does not fit its alg")
}

func TestVerifyRefusesBadSignature(t *testing.T) {
	k := keyFor(t, "ES256")
	proof := k.good(t, claims())
	dot := strings.LastIndexByte(proof, '.')
	sig, _ := base64.RawURLEncoding.DecodeString(proof[dot+1:])
	sig[10] ^= 1
	p, err := newVerifier(t, nil).Verify(context.Background(), req(proof[:dot+1]+b64(sig)))
	wantRefused(t, p, err, CodeInvalidProof, "signature does not verify")

	// Signed by another key than the one in jwk.
	other, _ := ecdsa.GenerateKey(k.priv.(*ecdsa.PrivateKey).Curve, rand.Reader)
	thief := &testKey{alg: "ES256", priv: other}
	p, err = newVerifier(t, nil).Verify(context.Background(), req(thief.proof(t, k.header(t), claims())))
	wantRefused(t, p, err, CodeInvalidProof, "signature does not verify")

	// Claims changed after signing.
	parts := strings.Split(proof, ".")
	c := claims()
	c["htm"] = "DELETE"
	cb, _ := json.Marshal(c)
	p, err = newVerifier(t, nil).Verify(context.Background(),
		Request{Method: "DELETE", URL: testURL, Proofs: []string{parts[0] + "." + b64(cb) + "." + parts[2]}})
	wantRefused(t, p, err, CodeInvalidProof, "signature does not verify")
}

func TestVerifyRefusesHTMMismatch(t *testing.T) {
	k := keyFor(t, "ES256")
	for _, htm := range []string{"POST", "get", ""} {
		c := claims()
		c["htm"] = htm
		p, err := newVerifier(t, nil).Verify(context.Background(), req(k.good(t, c)))
		wantRefused(t, p, err, CodeInvalidProof, "htm does not match")
	}
}

func TestVerifyHTU(t *testing.T) {
	k := keyFor(t, "ES256")
	for _, tc := range []struct {
		name, htu, url string
		accept         bool
	}{
		{"same", testURL, testURL, true},
		{"other path", "https://api.example.com/other", testURL, false},
		{"path prefix", "https://api.example.com/res", testURL, false},
		{"path case", "https://api.example.com/Resource", testURL, false},
		{"other host", "https://evil.example.com/resource", testURL, false},
		{"other scheme", "http://api.example.com/resource", testURL, false},
		{"other port", "https://api.example.com:8443/resource", testURL, false},
		{"request query ignored", testURL, testURL + "?page=2", true},
		{"htu query ignored", testURL + "?a=b", testURL + "?page=2", true},
		{"fragment ignored", testURL + "#top", testURL, true},
		{"default https port", "https://api.example.com:443/resource", testURL, true},
		{"default port in request", testURL, "https://api.example.com:443/resource", true},
		{"default http port", "http://api.example.com:80/resource", "http://api.example.com/resource", true},
		{"https port 80 is not default", "https://api.example.com:80/resource", testURL, false},
		{"empty port", "https://api.example.com:/resource", testURL, true},
		{"scheme and host case", "HTTPS://API.Example.COM/resource", testURL, true},
		{"empty path", "https://api.example.com", "https://api.example.com/", true},
		{"encoded unreserved", "https://api.example.com/%72esource", testURL, true},
		{"hex case", "https://api.example.com/a%2fb", "https://api.example.com/a%2Fb", true},
		{"encoded slash differs", "https://api.example.com/a%2Fb", "https://api.example.com/a/b", false},
		{"dot segments", "https://api.example.com/x/../resource", testURL, true},
		{"user info", "https://user@api.example.com/resource", testURL, false},
		{"relative", "/resource", testURL, false},
		{"other URI scheme", "urn:example:resource", testURL, false},
		{"not a URI", "https://api.example.com/%zz", testURL, false},
		{"missing", "", testURL, false},
		{"IPv6", "https://[::1]:443/resource", "https://[::1]/resource", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := claims()
			c["htu"] = tc.htu
			r := req(k.good(t, c))
			r.URL = tc.url
			p, err := newVerifier(t, nil).Verify(context.Background(), r)
			if tc.accept {
				if err != nil {
					t.Fatalf("htu %q for %q refused: %v", tc.htu, tc.url, err)
				}
				return
			}
			wantRefused(t, p, err, CodeInvalidProof, "htu does not match")
		})
	}
}

func TestNormalizeHTUIsIdempotent(t *testing.T) {
	for _, u := range []string{
		"HTTPS://A.example:443/%7e/./x/../%2f%41?q#f",
		"http://h:8080/a/b/../../../c",
		"https://h/a/%2E%2E/b",
		"https://[::1]:443/",
	} {
		n, ok := normalizeHTU(u)
		if !ok {
			t.Fatalf("%q refused", u)
		}
		if again, ok := normalizeHTU(n); !ok || again != n {
			t.Fatalf("%q normalises to %q, then to %q", u, n, again)
		}
	}
}

func TestVerifyIATWindow(t *testing.T) {
	k := keyFor(t, "ES256")
	for _, tc := range []struct {
		name   string
		iat    any
		reason string // "" accepts
	}{
		{"now", t0.Unix(), ""},
		{"59s old", t0.Add(-59 * time.Second).Unix(), ""},
		{"60s old", t0.Add(-60 * time.Second).Unix(), ""},
		{"stale", t0.Add(-61 * time.Second).Unix(), "too old"},
		{"hours old", t0.Add(-5 * time.Hour).Unix(), "too old"},
		{"4s ahead", t0.Add(4 * time.Second).Unix(), ""},
		{"future", t0.Add(6 * time.Second).Unix(), "in the future"},
		{"far future", t0.Add(24 * time.Hour).Unix(), "in the future"},
		{"fractional", float64(t0.Unix()) - 0.5, ""},
		{"missing", nil, "no iat"},
		{"string", "1700000000", "claims are malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := claims()
			if tc.iat == nil {
				delete(c, "iat")
			} else {
				c["iat"] = tc.iat
			}
			p, err := newVerifier(t, nil).Verify(context.Background(), req(k.good(t, c)))
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantRefused(t, p, err, CodeInvalidProof, tc.reason)
		})
	}
}

func TestVerifyIATWindowIsConfigurable(t *testing.T) {
	k := keyFor(t, "ES256")
	v := newVerifier(t, func(c *Config) { c.MaxAge = 10 * time.Second; c.MaxSkew = time.Second })
	c := claims()
	c["iat"] = t0.Add(-11 * time.Second).Unix()
	p, err := v.Verify(context.Background(), req(k.good(t, c)))
	wantRefused(t, p, err, CodeInvalidProof, "too old")
	c = claims()
	c["iat"] = t0.Add(2 * time.Second).Unix()
	p, err = v.Verify(context.Background(), req(k.good(t, c)))
	wantRefused(t, p, err, CodeInvalidProof, "in the future")
}

func TestVerifyRefusesMissingOrLongJTI(t *testing.T) {
	k := keyFor(t, "ES256")
	for jti, reason := range map[any]string{
		nil:                                 "no jti",
		"":                                  "no jti",
		strings.Repeat("j", MaxJTILength+1): "jti is too long",
		42:                                  "claims are malformed",
	} {
		c := claims()
		if jti == nil {
			delete(c, "jti")
		} else {
			c["jti"] = jti
		}
		p, err := newVerifier(t, nil).Verify(context.Background(), req(k.good(t, c)))
		wantRefused(t, p, err, CodeInvalidProof, reason)
	}
	c := claims()
	c["jti"] = strings.Repeat("j", MaxJTILength)
	mustAccept(t, newVerifier(t, nil), req(k.good(t, c)))
}

func TestVerifyRefusesReplayedJTI(t *testing.T) {
	k := keyFor(t, "ES256")
	v := newVerifier(t, nil)
	c := claims()
	mustAccept(t, v, req(k.good(t, c)))
	// The same proof, and another proof re-using its jti for the same key,
	// method and URI.
	for _, proof := range []string{k.good(t, c), k.good(t, c)} {
		p, err := v.Verify(context.Background(), req(proof))
		wantRefused(t, p, err, CodeInvalidProof, "already used")
	}
}

// gate holds every FirstUse call until n of them are waiting, so that the
// presentations race at the replay cache itself.
type gate struct {
	inner   ReplayCache
	arrived sync.WaitGroup
}

func newGate(inner ReplayCache, n int) *gate {
	g := &gate{inner: inner}
	g.arrived.Add(n)
	return g
}

func (g *gate) FirstUse(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	g.arrived.Done()
	g.arrived.Wait()
	return g.inner.FirstUse(ctx, key, ttl)
}

func TestVerifyRefusesReplayedJTIConcurrently(t *testing.T) {
	const n = 50
	k := keyFor(t, "ES256")
	proof := k.good(t, claims())
	// Every presentation passes all checks but the replay one.
	mustAccept(t, newVerifier(t, nil), req(proof))

	v := newVerifier(t, func(c *Config) { c.Replay = newGate(c.Replay, n) })
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = v.Verify(context.Background(), req(proof))
		}()
	}
	wg.Wait()
	accepted := 0
	for _, err := range errs {
		if err == nil {
			accepted++
			continue
		}
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(e.Description, "already used") {
			t.Fatalf("refused for another reason than replay: %v", err)
		}
	}
	if accepted != 1 {
		t.Fatalf("%d of %d presentations of one proof accepted, want exactly 1", accepted, n)
	}
}

func TestStoreReplayCacheFirstUseIsAtomic(t *testing.T) {
	const n = 50
	c := newGate(memReplay(t), n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	first := 0
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := c.FirstUse(context.Background(), "dpop:k", time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				first++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first != 1 {
		t.Fatalf("%d first uses of one key, want 1", first)
	}
}

func TestVerifyATH(t *testing.T) {
	k := keyFor(t, "ES256")
	const token = "an-access-token"
	withToken := func(proof string) Request {
		r := req(proof)
		r.AccessToken = token
		return r
	}

	p, err := newVerifier(t, nil).Verify(context.Background(), withToken(k.good(t, claims())))
	wantRefused(t, p, err, CodeInvalidProof, "no ath")

	c := claims()
	c["ath"] = AccessTokenHash("another-access-token")
	p, err = newVerifier(t, nil).Verify(context.Background(), withToken(k.good(t, c)))
	wantRefused(t, p, err, CodeInvalidProof, "ath does not match")

	c = claims()
	c["ath"] = AccessTokenHash(token)
	mustAccept(t, newVerifier(t, nil), withToken(k.good(t, c)))
}

func TestAccessTokenHash(t *testing.T) {
	// RFC 9449 §7.1's example token and ath.
	const tok = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
	if got := AccessTokenHash(tok); got != "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo" {
		t.Fatalf("ath %s", got)
	}
}

func TestVerifyRefusesKeyOtherThanBoundOne(t *testing.T) {
	k := keyFor(t, "ES256")
	other := keyFor(t, "EdDSA")
	c := claims()
	c["ath"] = AccessTokenHash("tok")
	r := req(other.good(t, c))
	r.AccessToken, r.BoundKey = "tok", k.jkt(t)
	p, err := newVerifier(t, nil).Verify(context.Background(), r)
	wantRefused(t, p, err, CodeInvalidToken, "key binding")

	r = req(k.good(t, c))
	r.AccessToken, r.BoundKey = "tok", k.jkt(t)
	mustAccept(t, newVerifier(t, nil), r)
}

func TestVerifyRefusesTwoOrNoDPoPHeaders(t *testing.T) {
	k := keyFor(t, "ES256")
	v := newVerifier(t, nil)
	p, err := v.Verify(context.Background(), req(k.good(t, claims()), k.good(t, claims())))
	wantRefused(t, p, err, CodeInvalidProof, "more than one DPoP header")
	good := k.good(t, claims())
	p, err = v.Verify(context.Background(), req(good, good))
	wantRefused(t, p, err, CodeInvalidProof, "more than one DPoP header")
	p, err = v.Verify(context.Background(), req())
	wantRefused(t, p, err, CodeInvalidProof, "missing")
	p, err = v.Verify(context.Background(), req(""))
	wantRefused(t, p, err, CodeInvalidProof, "missing")
	// Two proofs in one field value are not a JWT.
	p, err = v.Verify(context.Background(), req(good+", "+k.good(t, claims())))
	wantRefused(t, p, err, CodeInvalidProof, "malformed")
}

func TestVerifyRefusesOversizedProof(t *testing.T) {
	k := keyFor(t, "ES256")
	c := claims()
	c["pad"] = ""
	pad := (MaxProofSize-len(k.good(t, c)))*3/4 - 8
	var below string
	for ; ; pad++ {
		c["pad"] = strings.Repeat("x", pad)
		proof := k.good(t, c)
		if len(proof) > MaxProofSize {
			p, err := newVerifier(t, nil).Verify(context.Background(), req(proof))
			wantRefused(t, p, err, CodeInvalidProof, "too large")
			break
		}
		below = proof
	}
	mustAccept(t, newVerifier(t, nil), req(below))

	p, err := newVerifier(t, nil).Verify(context.Background(), req(strings.Repeat("A", 1<<20)))
	wantRefused(t, p, err, CodeInvalidProof, "too large")
}

func TestVerifyRefusesUnsupportedHeaders(t *testing.T) {
	k := keyFor(t, "ES256")
	for name, value := range map[string]any{"crit": []string{"exp"}, "b64": false} {
		h := k.header(t)
		h[name] = value
		p, err := newVerifier(t, nil).Verify(context.Background(), req(k.proof(t, h, claims())))
		wantRefused(t, p, err, CodeInvalidProof, "unsupported header")
	}
}

func TestVerifyNonce(t *testing.T) {
	k := keyFor(t, "ES256")
	clk := &clock{now: t0}
	nonces, err := NewHMACNonces([]byte(strings.Repeat("k", 32)), time.Minute, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, func(c *Config) { c.Nonces = nonces; c.Now = clk.Now })
	ctx := context.Background()
	old, _ := nonces.Nonce(ctx)

	withNonce := func(n any) Request {
		c := claims()
		c["iat"] = clk.Now().Unix()
		if n != nil {
			c["nonce"] = n
		}
		return req(k.good(t, c))
	}
	wantNonce := func(t *testing.T, r Request) {
		t.Helper()
		p, err := v.Verify(ctx, r)
		wantRefused(t, p, err, CodeUseNonce, "nonce")
		current, _ := nonces.Nonce(ctx)
		if e := err.(*Error); e.Nonce != current {
			t.Fatalf("use_dpop_nonce hands %q, want the current nonce %q", e.Nonce, current)
		}
	}

	t.Run("required", func(t *testing.T) {
		wantNonce(t, withNonce(nil))
		wantNonce(t, withNonce(""))
	})
	t.Run("forged", func(t *testing.T) {
		wantNonce(t, withNonce("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
		wantNonce(t, withNonce(old[:len(old)-2]+"AA"))
	})
	t.Run("current", func(t *testing.T) {
		if p := mustAccept(t, v, withNonce(old)); p.NextNonce != "" {
			t.Fatalf("NextNonce %q for a proof with the current nonce", p.NextNonce)
		}
	})
	t.Run("previous period", func(t *testing.T) {
		clk.set(t0.Add(time.Minute))
		current, _ := nonces.Nonce(ctx)
		if current == old {
			t.Fatal("the nonce did not change with the period")
		}
		if p := mustAccept(t, v, withNonce(old)); p.NextNonce != current {
			t.Fatalf("NextNonce %q, want the current nonce %q", p.NextNonce, current)
		}
	})
	t.Run("stale", func(t *testing.T) {
		clk.set(t0.Add(2 * time.Minute))
		wantNonce(t, withNonce(old))
	})
	t.Run("other key", func(t *testing.T) {
		others, _ := NewHMACNonces([]byte(strings.Repeat("o", 32)), time.Minute, clk.Now)
		n, _ := others.Nonce(ctx)
		wantNonce(t, withNonce(n))
	})
}

func TestThumbprintRFC7638Example(t *testing.T) {
	// RFC 7638 §3.1.
	const key = `{"kty":"RSA",
		"n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
		"e":"AQAB","alg":"RS256","kid":"2011-04-29"}`
	var jwk jose.JSONWebKey
	if err := json.Unmarshal([]byte(key), &jwk); err != nil {
		t.Fatal(err)
	}
	got, err := Thumbprint(&jwk)
	if err != nil {
		t.Fatal(err)
	}
	if got != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Fatalf("thumbprint %s", got)
	}
	if _, err := Thumbprint(&jose.JSONWebKey{Key: []byte("secret")}); err == nil {
		t.Fatal("a symmetric key got a thumbprint")
	}
}

func TestChallenge(t *testing.T) {
	v := newVerifier(t, func(c *Config) { c.Algorithms = []string{"ES256", "PS256"} })
	if got, want := v.Challenge(nil), `DPoP algs="ES256 PS256"`; got != want {
		t.Fatalf("challenge %s, want %s", got, want)
	}
	_, err := v.Verify(context.Background(), req())
	if got, want := v.Challenge(err), `DPoP error="invalid_dpop_proof", error_description="missing DPoP proof", algs="ES256 PS256"`; got != want {
		t.Fatalf("challenge %s, want %s", got, want)
	}
	e := &Error{Code: CodeInvalidToken, Description: `a "quoted" \ one`}
	if got, want := Challenge(e, []string{"EdDSA"}), `DPoP error="invalid_token", error_description="a \"quoted\" \\ one", algs="EdDSA"`; got != want {
		t.Fatalf("challenge %s, want %s", got, want)
	}
	if e.HTTPStatus(true) != 401 || e.HTTPStatus(false) != 400 {
		t.Fatal("statuses")
	}
}

// TestErrorsHoldNoSecret: no refusal's message repeats the proof, the
// access token or a claim.
func TestErrorsHoldNoSecret(t *testing.T) {
	k := keyFor(t, "ES256")
	const token = "secret-access-token-value"
	c := claims()
	c["jti"] = "jti-value-in-the-proof"
	c["ath"] = "ath-value-in-the-proof"
	c["htu"] = "https://api.example.com/htu-value"
	c["htm"] = "HTMVALUE"
	proof := k.good(t, c)
	for _, r := range []Request{
		{Method: "HTMVALUE", URL: "https://api.example.com/htu-value", Proofs: []string{proof}, AccessToken: token},
		{Method: "GET", URL: testURL, Proofs: []string{proof}, AccessToken: token},
		{Method: "HTMVALUE", URL: testURL, Proofs: []string{proof}},
		{Method: "GET", URL: testURL, Proofs: []string{proof, proof}, AccessToken: token},
		{Method: "GET", URL: testURL, Proofs: []string{proof[:len(proof)-3]}, AccessToken: token},
		{Method: "GET", URL: testURL, Proofs: []string{token}, AccessToken: token},
	} {
		v := newVerifier(t, nil)
		_, err := v.Verify(context.Background(), r)
		if err == nil {
			t.Fatal("accepted")
		}
		for _, s := range []string{err.Error(), v.Challenge(err)} {
			for _, secret := range []string{proof[:20], proof[len(proof)-20:], token, "jti-value", "ath-value", "htu-value", "HTMVALUE"} {
				if strings.Contains(s, secret) {
					t.Fatalf("%q repeats %q", s, secret)
				}
			}
		}
	}
}

func TestNewVerifierChecksConfig(t *testing.T) {
	for name, c := range map[string]Config{
		"no replay cache":   {},
		"unknown algorithm": {Replay: memReplay(t), Algorithms: []string{"HS256"}},
		"none":              {Replay: memReplay(t), Algorithms: []string{"none"}},
		"negative age":      {Replay: memReplay(t), MaxAge: -time.Second},
	} {
		if _, err := NewVerifier(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewHMACNonces([]byte("short"), 0, nil); err == nil {
		t.Error("a short nonce key accepted")
	}
}

func BenchmarkVerifyES256(b *testing.B) {
	k := keyFor(b, "ES256")
	v := newVerifier(b, nil)
	const token = "an-access-token"
	reqs := make([]Request, b.N)
	for i := range reqs {
		c := claims()
		c["ath"] = AccessTokenHash(token)
		reqs[i] = Request{Method: testMethod, URL: testURL + "?q=1", Proofs: []string{k.good(b, c)}, AccessToken: token, BoundKey: k.jkt(b)}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range reqs {
		if _, err := v.Verify(ctx, reqs[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVerifyReadsMembersByExactName: JOSE member names are case-sensitive
// and unique, as go-jose reads them, so a proof cannot show one checker a
// member another does not see.
func TestVerifyReadsMembersByExactName(t *testing.T) {
	k := keyFor(t, "ES256")
	h := k.header(t)
	delete(h, "typ")
	h["Typ"] = "dpop+jwt"
	p, err := newVerifier(t, nil).Verify(context.Background(), req(k.proof(t, h, claims())))
	wantRefused(t, p, err, CodeInvalidProof, "typ must be dpop+jwt")

	c := claims()
	c["JTI"] = c["jti"]
	delete(c, "jti")
	p, err = newVerifier(t, nil).Verify(context.Background(), req(k.good(t, c)))
	wantRefused(t, p, err, CodeInvalidProof, "no jti")

	// A duplicated member.
	hb, _ := json.Marshal(k.header(t))
	hb = append([]byte(`{"typ":"jwt",`), hb[1:]...)
	cb, _ := json.Marshal(claims())
	input := b64(hb) + "." + b64(cb)
	p, err = newVerifier(t, nil).Verify(context.Background(), req(input+"."+b64(k.sign(t, []byte(input)))))
	wantRefused(t, p, err, CodeInvalidProof, "header is malformed")

	cb, _ = json.Marshal(claims())
	cb = append([]byte(`{"htm":"POST",`), cb[1:]...)
	hb, _ = json.Marshal(k.header(t))
	input = b64(hb) + "." + b64(cb)
	p, err = newVerifier(t, nil).Verify(context.Background(), req(input+"."+b64(k.sign(t, []byte(input)))))
	wantRefused(t, p, err, CodeInvalidProof, "claims are malformed")
}
