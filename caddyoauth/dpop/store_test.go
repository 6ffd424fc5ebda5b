package dpop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
)

// TestStoreNoncesShareTheirKey: instances over one store, starting at
// once, accept each other's nonces; an instance over another store does
// not.
func TestStoreNoncesShareTheirKey(t *testing.T) {
	db, err := filestore.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	now := func() time.Time { return t0 }
	if _, err := db.Get(ctx, NonceKeyRecord); err == nil {
		t.Fatal("the key exists before any nonce was asked for")
	}
	srcs := make([]NonceSource, 8)
	nonces := make([]string, len(srcs))
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	for i := range srcs {
		srcs[i] = StoreNonces(db, 0, now)
		wg.Add(1)
		go func() {
			defer wg.Done()
			nonces[i], errs[i] = srcs[i].Nonce(ctx)
		}()
	}
	wg.Wait()
	for i, n := range nonces {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if n != nonces[0] {
			t.Fatalf("instance %d issued %q, instance 0 %q", i, n, nonces[0])
		}
		if ok, err := srcs[(i+1)%len(srcs)].Valid(ctx, n); !ok || err != nil {
			t.Fatalf("a nonce of instance %d refused by another: %v", i, err)
		}
	}
	other, _ := filestore.Open(":memory:")
	defer other.Close()
	if ok, _ := StoreNonces(other, 0, now).Valid(ctx, nonces[0]); ok {
		t.Fatal("a store with another key accepted the nonce")
	}
}

func TestIsReplayRecord(t *testing.T) {
	k := replayKey("jkt", "GET", "https://a/", "jti")
	if !IsReplayRecord(k) || IsReplayRecord(NonceKeyRecord) || IsReplayRecord("at:x") {
		t.Fatal("IsReplayRecord misjudges keys")
	}
}

// BenchmarkECDSAVerifyP256 is the floor of BenchmarkVerifyES256: one
// ecdsa.Verify of a SHA-256 digest, what a proof's signature costs alone.
func BenchmarkECDSAVerifyP256(b *testing.B) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	d := sha256.Sum256([]byte("eyJ0eXAiOiJkcG9wK2p3dCJ9.eyJqdGkiOiJ4In0"))
	r, s, err := ecdsa.Sign(rand.Reader, priv, d[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !ecdsa.Verify(&priv.PublicKey, d[:], r, s) {
			b.Fatal("does not verify")
		}
	}
}

// TestVerifyRefusesOversizedRSAKey: an RSA key above 4096 bits, whose
// verification would cost the gateway many times a normal one, is refused
// before any signature check.
func TestVerifyRefusesOversizedRSAKey(t *testing.T) {
	n := make([]byte, 4104/8)
	_, _ = rand.Read(n)
	n[0] |= 0x80
	h := map[string]any{"typ": "dpop+jwt", "alg": "RS256", "jwk": map[string]any{"kty": "RSA", "n": b64(n), "e": "AQAB"}}
	hb, _ := json.Marshal(h)
	cb, _ := json.Marshal(claims())
	proof := b64(hb) + "." + b64(cb) + "." + b64(make([]byte, len(n)))
	p, err := newVerifier(t, nil).Verify(context.Background(), req(proof))
	wantRefused(t, p, err, CodeInvalidProof, "does not fit its alg")
}
