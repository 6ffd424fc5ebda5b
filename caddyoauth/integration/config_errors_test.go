package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// TestConfigErrorsNameTheLine runs `caddy validate` on broken Caddyfiles:
// each is refused with an error naming the file and the line.
func TestConfigErrorsNameTheLine(t *testing.T) {
	hash := gt.BcryptHash(t, "pw")
	tests := []struct {
		name, caddyfile, where, msg string
	}{
		{"unknown oauth option", "{\n\toauth {\n\t\ttoken_ttl 1h\n\t}\n}\n", "Caddyfile:3", "unrecognized oauth option 'token_ttl'"},
		{"client without secret", "{\n\toauth {\n\t\tclient c {\n\t\t\tgrants password\n\t\t}\n\t}\n}\n", "Caddyfile:5", "needs a secret"},
		{"unknown grant", "{\n\toauth {\n\t\tclient c {\n\t\t\tsecret s\n\t\t\tgrants implicit\n\t\t}\n\t}\n}\n", "Caddyfile:6", "unknown grant"},
		{"duplicate client", "{\n\toauth {\n\t\tclient c {\n\t\t\tsecret s\n\t\t\tgrants password\n\t\t}\n\t\tclient c {\n\t\t\tsecret s\n\t\t\tgrants password\n\t\t}\n\t}\n}\n", "Caddyfile:7", "defined twice"},
		{"bad user hash", "{\n\toauth {\n\t\tuser alice plaintext\n\t}\n}\n", "Caddyfile:3", "not a bcrypt hash"},
		{"duplicate user", "{\n\toauth {\n\t\tuser alice " + hash + "\n\t\tuser alice " + hash + "\n\t}\n}\n", "Caddyfile:4", "defined twice"},
		{"unknown store", "{\n\toauth {\n\t\tstore mongo\n\t}\n}\n", "Caddyfile:3", "oauth.stores.mongo"},
		{"bad duration", "{\n\toauth {\n\t\tcode_ttl forever\n\t}\n}\n", "Caddyfile:3", "bad duration"},
		{"protect without oauth", ":8080 {\n\toauth_protect\n\trespond ok\n}\n", "Caddyfile:2", "needs the oauth global option"},
		{"protect bad scope", "{\n\toauth {\n\t\tstore memory\n\t}\n}\n:8080 {\n\toauth_protect {\n\t\tscope \"a b\"\n\t}\n}\n", "Caddyfile:8", "not a valid scope"},
		{"protect unknown option", "{\n\toauth {\n\t\tstore memory\n\t}\n}\n:8080 {\n\toauth_protect {\n\t\trequire read\n\t}\n}\n", "Caddyfile:8", "unrecognized oauth_protect option"},
		{"server with a block", "{\n\toauth {\n\t\tstore memory\n\t}\n}\n:8080 {\n\toauth_server {\n\t\tpath /auth\n\t}\n}\n", "Caddyfile:8", "takes no block"},
	}
	dir := t.TempDir()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"), "Caddyfile")
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(tc.caddyfile), 0o600); err != nil {
				t.Fatal(err)
			}
			out, ok := gt.ValidateConfig(t, path)
			if ok {
				t.Fatalf("caddy validate accepted it:\n%s", out)
			}
			if !strings.Contains(out, tc.where) || !strings.Contains(out, tc.msg) {
				t.Fatalf("output does not name %s with %q:\n%s", tc.where, tc.msg, out)
			}
			if strings.Contains(out, "panic") {
				t.Fatalf("panic:\n%s", out)
			}
		})
	}
	t.Run("the root Caddyfile validates", func(t *testing.T) {
		if out, ok := gt.ValidateConfig(t, filepath.Join(gt.RepoRoot(), "Caddyfile")); !ok {
			t.Fatalf("caddy validate refused the quickstart Caddyfile:\n%s", out)
		}
	})
	t.Run("a good config validates", func(t *testing.T) {
		path := filepath.Join(dir, "good", "Caddyfile")
		_ = os.MkdirAll(filepath.Dir(path), 0o700)
		good := "{\n\toauth {\n\t\tstore memory\n\t\tclient c {\n\t\t\tsecret s\n\t\t\tgrants password\n\t\t}\n\t\tuser alice " + hash + "\n\t}\n}\nhttp://localhost:8080 {\n\toauth_server\n\toauth_protect\n\trespond ok\n}\n"
		if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, ok := gt.ValidateConfig(t, path); !ok {
			t.Fatalf("caddy validate refused a good config:\n%s", out)
		}
	})
}
