package authz

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
)

const (
	testKEK  = "a key encryption key of at least thirty-two bytes"
	otherKEK = "another key encryption key, also long enough......"
)

// jwtOn builds a JWT service on st, with kek as its key encryption key
// ("" for none).
func jwtOn(t *testing.T, st store.Store, kek string) *Service {
	t.Helper()
	cfg := testConfig()
	cfg.TokenFormat = FormatJWT
	cfg.SigningKeyRotation = 720 * time.Hour
	if kek != "" {
		cfg.KeyEncryptionKey = []byte(kek)
	}
	return New(cfg, st, testClients(), testUsers(t), nil)
}

// storedKeyDER returns the PKCS #8 form of the ring's current key, as it
// would appear in a plain ring (JSON gives it in base64).
func storedKeyDER(t *testing.T, s *Service) string {
	t.Helper()
	k, err := s.keys.current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

func kids(t *testing.T, s *Service) string {
	t.Helper()
	keys, err := s.JWKS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		out = append(out, k.Kid)
	}
	return strings.Join(out, " ")
}

// TestSigningKeysEncryptedAtRest: with a key encryption key, the
// generated signing keys are stored encrypted; a second instance with the
// same key publishes and signs with the same keys; one with another key or
// none refuses to load them with an error saying so.
func TestSigningKeysEncryptedAtRest(t *testing.T) {
	ctx := context.Background()
	st := memStore(t)
	a := jwtOn(t, st, testKEK)
	if err := a.LoadSigningKeys(ctx); err != nil {
		t.Fatal(err)
	}
	der := storedKeyDER(t, a)
	raw, err := st.Get(ctx, keyRingKey)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(der)) || bytes.Contains(raw, []byte(`"keys"`)) {
		t.Fatalf("the stored ring holds the signing key in plain: %s", raw)
	}

	b := jwtOn(t, st, testKEK)
	if err := b.LoadSigningKeys(ctx); err != nil {
		t.Fatalf("an instance with the same key: %v", err)
	}
	if kids(t, a) != kids(t, b) {
		t.Fatalf("instances with the same key publish %q and %q", kids(t, a), kids(t, b))
	}
	access, _ := aliceTokens(t, b)
	if !valid(a, access) {
		t.Fatal("a token signed by one instance is refused by the other")
	}

	for kek, want := range map[string]string{otherKEK: "not the key they were encrypted with", "": "set key_encryption_key"} {
		err := jwtOn(t, st, kek).LoadSigningKeys(ctx)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("loading with key %q: %v, want an error saying %q", kek, err, want)
		}
		if strings.Contains(err.Error(), testKEK) || strings.Contains(err.Error(), otherKEK) {
			t.Fatalf("the error names a key: %v", err)
		}
	}
}

// TestPlainSigningKeysGetEncrypted: keys an earlier config stored in plain
// are kept (same kid) and rewritten encrypted once a key encryption key is
// set, and no plain copy stays in the file store's log.
func TestPlainSigningKeysGetEncrypted(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "oauth.db")
	st, err := filestore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	plain := jwtOn(t, st, "")
	if err := plain.LoadSigningKeys(ctx); err != nil {
		t.Fatal(err)
	}
	der := storedKeyDER(t, plain)
	before := kids(t, plain)
	if b, _ := os.ReadFile(path); !bytes.Contains(b, []byte(der)) {
		t.Fatal("the test's plain ring is not in the file as expected")
	}

	enc := jwtOn(t, st, testKEK)
	if err := enc.LoadSigningKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if after := kids(t, enc); after != before {
		t.Fatalf("the keys changed when encrypted: %q, then %q", before, after)
	}
	raw, _ := st.Get(ctx, keyRingKey)
	if bytes.Contains(raw, []byte(der)) {
		t.Fatal("the ring is still stored in plain")
	}
	if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(der)) {
		t.Fatal("a plain copy of the signing key stays in the store file")
	}
	if err := jwtOn(t, st, "").LoadSigningKeys(ctx); err == nil {
		t.Fatal("an instance without the key read the encrypted ring")
	}
}
