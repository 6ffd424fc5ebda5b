package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
)

// t0 is the server's clock in the tests.
var t0 = time.Unix(1_700_000_000, 0)

const (
	testURL    = "https://api.example.com/resource"
	testMethod = "GET"
)

// testKey is a client key pair signing proofs with alg.
type testKey struct {
	alg  string
	priv crypto.Signer
}

var (
	keysOnce sync.Once
	keys     map[string]*testKey
)

// keyFor returns the process's key for alg; RSA keys are slow to make.
func keyFor(t testing.TB, alg string) *testKey {
	t.Helper()
	keysOnce.Do(func() {
		p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		_, ed, _ := ed25519.GenerateKey(rand.Reader)
		rs, _ := rsa.GenerateKey(rand.Reader, 2048)
		keys = map[string]*testKey{
			"ES256": {"ES256", p256},
			"ES384": {"ES384", p384},
			"EdDSA": {"EdDSA", ed},
			"RS256": {"RS256", rs},
			"PS256": {"PS256", rs},
		}
	})
	k, ok := keys[alg]
	if !ok {
		t.Fatalf("no test key for %s", alg)
	}
	return k
}

// jwk returns the key's JWK as a JSON object; private includes the
// private members.
func (k *testKey) jwk(t testing.TB, private bool) map[string]any {
	t.Helper()
	var key any = k.priv.Public()
	if private {
		key = k.priv
	}
	b, err := json.Marshal(jose.JSONWebKey{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func (k *testKey) jkt(t testing.TB) string {
	t.Helper()
	s, err := Thumbprint(&jose.JSONWebKey{Key: k.priv.Public()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims returns the claims of a good proof for testMethod testURL at t0.
func claims() map[string]any {
	var b [16]byte
	rand.Read(b[:])
	return map[string]any{
		"jti": base64.RawURLEncoding.EncodeToString(b[:]),
		"htm": testMethod,
		"htu": testURL,
		"iat": t0.Unix(),
	}
}

// header returns the JOSE header of a good proof signed by k.
func (k *testKey) header(t testing.TB) map[string]any {
	return map[string]any{"typ": "dpop+jwt", "alg": k.alg, "jwk": k.jwk(t, false)}
}

// proof signs claims under header with k, whatever the header says.
func (k *testKey) proof(t testing.TB, header, claims map[string]any) string {
	t.Helper()
	hb, _ := json.Marshal(header)
	cb, _ := json.Marshal(claims)
	input := b64(hb) + "." + b64(cb)
	return input + "." + b64(k.sign(t, []byte(input)))
}

// good returns a good proof for claims with k's default header.
func (k *testKey) good(t testing.TB, c map[string]any) string {
	t.Helper()
	return k.proof(t, k.header(t), c)
}

func (k *testKey) sign(t testing.TB, input []byte) []byte {
	t.Helper()
	var sig []byte
	var err error
	switch k.alg {
	case "ES256", "ES384":
		var digest []byte
		size := 32
		if k.alg == "ES256" {
			d := sha256.Sum256(input)
			digest = d[:]
		} else {
			d := sha512.Sum384(input)
			digest, size = d[:], 48
		}
		r, s, e := ecdsa.Sign(rand.Reader, k.priv.(*ecdsa.PrivateKey), digest)
		sig, err = make([]byte, 2*size), e
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
	case "EdDSA":
		sig = ed25519.Sign(k.priv.(ed25519.PrivateKey), input)
	case "RS256":
		d := sha256.Sum256(input)
		sig, err = rsa.SignPKCS1v15(rand.Reader, k.priv.(*rsa.PrivateKey), crypto.SHA256, d[:])
	case "PS256":
		d := sha256.Sum256(input)
		sig, err = rsa.SignPSS(rand.Reader, k.priv.(*rsa.PrivateKey), crypto.SHA256, d[:],
			&rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	default:
		t.Fatalf("cannot sign with %s", k.alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func hs256(key, input []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(input)
	return m.Sum(nil)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// memStore is the gateway's in-memory store, as a single instance uses.
func memReplay(t testing.TB) ReplayCache {
	t.Helper()
	db, err := filestore.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return StoreReplayCache(db)
}

// clock is a settable server clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// newVerifier returns a verifier at t0 over an in-memory store; edit
// adjusts its config.
func newVerifier(t testing.TB, edit func(*Config)) *Verifier {
	t.Helper()
	c := Config{Replay: memReplay(t), Now: func() time.Time { return t0 }}
	if edit != nil {
		edit(&c)
	}
	v, err := NewVerifier(c)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func req(proofs ...string) Request {
	return Request{Method: testMethod, URL: testURL, Proofs: proofs}
}

// wantRefused checks that err refuses the proof with code, for the reason
// described by a part of its description.
func wantRefused(t *testing.T, p *Proof, err error, code, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("proof accepted (jkt %s), want %s: %s", p.JKT, code, reason)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *Error", err)
	}
	if e.Code != code || !strings.Contains(e.Description, reason) {
		t.Fatalf("refused with %s %q, want %s %q", e.Code, e.Description, code, reason)
	}
}

func mustAccept(t *testing.T, v *Verifier, r Request) *Proof {
	t.Helper()
	p, err := v.Verify(context.Background(), r)
	if err != nil {
		t.Fatalf("good proof refused: %v", err)
	}
	return p
}
