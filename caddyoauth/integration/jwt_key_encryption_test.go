package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

const (
	kekA = "first-key-encryption-key-of-44-characters=="
	kekB = "second-key-encryption-key-of-44-characters="
)

// kekConfig is a JWT gateway on the file store with the given
// key_encryption_key line (or none).
func kekConfig(upstream, kekLine string) string {
	return gt.Config(`
oauth {
	store `+fileStore+`
	token_format jwt
	`+kekLine+`
	client svc {
		secret svc-secret
		grants client_credentials
		scopes read
	}
}`, fmt.Sprintf(`
oauth_server
oauth_protect
reverse_proxy %s`, upstream))
}

// storeFile returns the content of a gateway's store file.
func storeFile(t *testing.T, g *gt.Gateway) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(g.Params.DataDir, "tokens.db"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// plainRing reports whether the store file holds a signing key ring in
// plain: its keys' PKCS #8 forms are under "der".
func plainRing(b []byte) bool { return bytes.Contains(b, []byte(`"der":`)) }

// TestJWTKeyEncryptionKey: with key_encryption_key the generated signing
// keys are stored encrypted, the key itself never appears in the config
// Caddy holds, and a config with another key, or none, is refused when it
// starts, naming why, while the running one keeps serving.
func TestJWTKeyEncryptionKey(t *testing.T) {
	up := gt.StartUpstream(t)
	env := gt.WithEnv("OAUTH_KEK="+kekA, "OTHER_KEK="+kekB)
	withKEK := kekConfig(up.Addr(), "key_encryption_key {env.OAUTH_KEK}")
	g := gt.Start(t, withKEK, env)
	tok := wantToken(t, clientCredentials(t, g, "svc", "svc-secret")).Str("access_token")
	if r := gt.Get(t, g.URL+"/api", tok); r.Status != 200 {
		t.Fatalf("a JWT signed with the encrypted key: %d", r.Status)
	}
	if b := storeFile(t, g); plainRing(b) || !bytes.Contains(b, []byte(`"sealed"`)) {
		t.Fatal("the store file does not hold the signing keys sealed")
	}
	cfg := gt.Get(t, g.AdminURL+"/config/", "")
	if strings.Contains(string(cfg.Body), kekA) || !strings.Contains(string(cfg.Body), "{env.OAUTH_KEK}") {
		t.Fatalf("the running config holds the key, or not its placeholder:\n%s", cfg.Body)
	}

	for kekLine, why := range map[string]string{
		"key_encryption_key {env.OTHER_KEK}": "not the key they were encrypted with",
		"":                                   "set key_encryption_key",
	} {
		r := g.Reload(kekConfig(up.Addr(), kekLine), false)
		if r.Status == 200 || !strings.Contains(string(r.Body), why) || strings.Contains(string(r.Body), "panic") {
			t.Fatalf("reload with %q: %d %s, want it refused saying %q", kekLine, r.Status, r.Body, why)
		}
	}
	if r := gt.Get(t, g.URL+"/api", tok); r.Status != 200 {
		t.Fatalf("the running config after the refused reloads: %d", r.Status)
	}
	for _, k := range []string{kekA, kekB} {
		if strings.Contains(g.Logs(), k) {
			t.Fatal("a key encryption key is in the logs")
		}
	}
}

// TestJWTPlainKeysGetEncrypted: keys a config without key_encryption_key
// stored in plain are encrypted by the first config with one, which keeps
// them (tokens they signed stay valid) and leaves no plain copy in the
// store file.
func TestJWTPlainKeysGetEncrypted(t *testing.T) {
	up := gt.StartUpstream(t)
	g := gt.Start(t, kekConfig(up.Addr(), ""), gt.WithEnv("OAUTH_KEK="+kekA))
	tok := wantToken(t, clientCredentials(t, g, "svc", "svc-secret")).Str("access_token")
	jwks := string(gt.Get(t, g.URL+"/oauth/jwks", "").Body)
	if !plainRing(storeFile(t, g)) {
		t.Fatal("without key_encryption_key the ring is not where the test looks for it")
	}
	if r := g.Reload(kekConfig(up.Addr(), "key_encryption_key {env.OAUTH_KEK}"), false); r.Status != 200 {
		t.Fatalf("reload with key_encryption_key: %d %s", r.Status, r.Body)
	}
	if plainRing(storeFile(t, g)) {
		t.Fatal("a plain copy of the signing keys stays in the store file")
	}
	if got := string(gt.Get(t, g.URL+"/oauth/jwks", "").Body); got != jwks {
		t.Fatalf("the published keys changed when encrypted:\n%s\nthen\n%s", jwks, got)
	}
	if r := gt.Get(t, g.URL+"/api", tok); r.Status != 200 {
		t.Fatalf("a token signed before the keys were encrypted: %d", r.Status)
	}
}
