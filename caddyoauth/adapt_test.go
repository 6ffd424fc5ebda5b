package caddyoauth_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddyoauth/gateway/caddyoauth"
)

var update = flag.Bool("update", false, "rewrite the JSON of the adapt golden files")

// adapt runs the Caddyfile adapter as `caddy adapt` does and returns the
// indented JSON.
func adapt(t *testing.T, body []byte) ([]byte, []caddyconfig.Warning, error) {
	t.Helper()
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return nil, warnings, err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, out, "", "\t"); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), warnings, nil
}

// validate provisions the adapted config as `caddy validate` does, so the
// parser, the JSON tags and Provision agree. Nothing is started.
func validate(t *testing.T, js []byte) error {
	t.Helper()
	var cfg caddy.Config
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return err
	}
	return caddy.Validate(&cfg)
}

var errLine = regexp.MustCompile(`^(Caddyfile:\d+): (.*)$`)

// TestAdaptGolden adapts every testdata/adapt/*.caddyfiletest: a Caddyfile,
// a line of dashes, then the JSON it must adapt to, or the error it must
// fail with as "Caddyfile:LINE: message". Adapted configs must also pass
// caddy.Validate. Run with -update to rewrite the JSON parts.
func TestAdaptGolden(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("OAUTH_DB", filepath.Join(t.TempDir(), "tokens.db"))
	t.Setenv("SVC_SECRET", "svc-secret")
	t.Setenv("REPORTS_SECRET", "reports-secret")
	t.Setenv("OAUTH_KEK", "a-key-encryption-key-of-at-least-32-bytes")
	t.Setenv("REGISTRATION_TOKEN", "an-initial-access-token")
	files, err := filepath.Glob("testdata/adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			caddyfileText, want, ok := strings.Cut(string(raw), "----------\n")
			if !ok {
				t.Fatal("no ---------- separator")
			}
			if formatted := caddyfile.Format([]byte(caddyfileText)); !bytes.Equal(formatted, []byte(caddyfileText)) {
				t.Errorf("the Caddyfile part is not `caddy fmt` clean:\n%s", formatted)
			}
			got, warnings, err := adapt(t, []byte(caddyfileText))
			want = strings.TrimSpace(want)
			if strings.HasPrefix(want, "{") || (*update && want == "") {
				if err != nil {
					t.Fatalf("adapt: %v", err)
				}
				for _, w := range warnings {
					t.Errorf("warning: Caddyfile:%d: %s", w.Line, w.Message)
				}
				if *update {
					if err := os.WriteFile(file, []byte(caddyfileText+"----------\n"+string(got)+"\n"), 0o644); err != nil {
						t.Fatal(err)
					}
				} else if string(got) != want {
					t.Fatalf("adapted JSON differs:\n%s", got)
				}
				if err := validate(t, got); err != nil {
					t.Fatalf("caddy.Validate: %v", err)
				}
				return
			}
			m := errLine.FindStringSubmatch(want)
			if m == nil {
				t.Fatalf("expected part is neither JSON nor Caddyfile:LINE: message: %q", want)
			}
			if err == nil {
				t.Fatalf("adapted, want error %q:\n%s", want, got)
			}
			if !strings.Contains(err.Error(), m[1]) || !strings.Contains(err.Error(), m[2]) {
				t.Fatalf("error %q, want %q at %s", err, m[2], m[1])
			}
		})
	}
}

// TestQuickstartCaddyfile: the root Caddyfile is fmt-clean, adapts without
// warnings, and its JSON provisions.
func TestQuickstartCaddyfile(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	raw, err := os.ReadFile(filepath.Join("..", "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	if formatted := caddyfile.Format(raw); !bytes.Equal(formatted, raw) {
		t.Errorf("the root Caddyfile is not `caddy fmt` clean")
	}
	js, warnings, err := adapt(t, raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		t.Errorf("warning: Caddyfile:%d: %s", w.Line, w.Message)
	}
	if err := validate(t, js); err != nil {
		t.Fatalf("caddy.Validate: %v", err)
	}
}

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
