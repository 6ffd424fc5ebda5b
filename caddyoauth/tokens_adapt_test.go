package caddyoauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// TestAdaptTokenOptions: the token options adapt to the JSON the app
// reads, and that JSON provisions (caddy.Validate), reading the key file;
// a bad key file fails there.
func TestAdaptTokenOptions(t *testing.T) {
	dir := t.TempDir()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	keyFile := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	badFile := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(badFile, []byte("nothing"), 0o600); err != nil {
		t.Fatal(err)
	}
	caddyfile := func(key string) string {
		return `{
	admin off
	oauth {
		store memory
		token_format jwt
		audience https://api.example.com
		signing_key ` + key + `
		client rs {
			secret_hash $2a$04$0DItAXzz1UFdGaC/tAgnR.TDvEvWlnJPKRzCsEYJdPSaXZalbgp7S
			introspect
		}
	}
}
:0 {
	oauth_server
}`
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	out, _, err := adapter.Adapt([]byte(caddyfile(keyFile)), nil)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			OAuth map[string]any `json:"oauth"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	o := cfg.Apps.OAuth
	clients, _ := o["clients"].([]any)
	if o["token_format"] != "jwt" || o["audience"] != "https://api.example.com" || o["signing_key"] != keyFile ||
		len(clients) != 1 || clients[0].(map[string]any)["introspect"] != true {
		t.Fatalf("adapted oauth app: %s", out)
	}
	if err := caddy.Validate(mustConfig(t, out)); err != nil {
		t.Fatalf("validate: %v", err)
	}

	out, _, err = adapter.Adapt([]byte(caddyfile(badFile)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(mustConfig(t, out)); err == nil || !strings.Contains(err.Error(), "signing_key") {
		t.Fatalf("a bad key file: %v", err)
	}
}

func mustConfig(t *testing.T, b []byte) *caddy.Config {
	t.Helper()
	cfg := new(caddy.Config)
	if err := json.Unmarshal(b, cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}
