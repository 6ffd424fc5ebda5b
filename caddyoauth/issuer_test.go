package caddyoauth_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyoauth/gateway/caddyoauth"
)

// issuerOf provisions a JSON config as Caddy does before starting it (every
// app, nothing started) and returns the issuer of its oauth app.
func issuerOf(t *testing.T, js []byte) (string, error) {
	t.Helper()
	var cfg caddy.Config
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	ctx, err := caddy.ProvisionContext(&cfg)
	if err != nil {
		t.Fatalf("provisioning: %v", err)
	}
	app, err := ctx.App("oauth")
	if err != nil {
		t.Fatal(err)
	}
	return app.(*caddyoauth.App).Service().Issuer()
}

// TestIssuerDerivation: without the issuer option, the issuer is the one
// origin of the routes serving oauth_server, from the provisioned http app
// of a Caddyfile or a JSON config; a config whose routes name none or
// several is refused with the reason.
func TestIssuerDerivation(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	const global = "{\n\toauth {\n\t\tstore memory\n\t}\n}\n\n"
	const setIssuer = "oauth: set issuer in the oauth global option: "
	server := `{"apps": {"oauth": {"store": {"module": "memory"}}, "http": {"servers": {"s": %s}}}}`
	quickstart, err := os.ReadFile(filepath.Join("..", "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, config string
		json         bool
		want, err    string
	}{
		{name: "quickstart", config: string(quickstart), want: "http://localhost:8080"},
		{name: "https by automatic HTTPS", config: global + "localhost:8443 {\n\toauth_server\n}\n", want: "https://localhost:8443"},
		{name: "https default port", config: global + "https://auth.example.com {\n\toauth_server\n}\n", want: "https://auth.example.com"},
		{name: "http default port", config: global + "http://auth.example.com {\n\toauth_server\n}\n", want: "http://auth.example.com"},
		{name: "ipv6", config: global + "http://[::1]:8080 {\n\toauth_server\n}\n", want: "http://[::1]:8080"},
		{name: "two binds, one port", config: global + "http://auth.example.com:8080 {\n\tbind 127.0.0.1 ::1\n\toauth_server\n}\n", want: "http://auth.example.com:8080"},
		{name: "nested host matcher", config: global + "http://a.example:8080, http://b.example:8080 {\n\t@a host a.example\n\thandle @a {\n\t\toauth_server\n\t}\n}\n", want: "http://a.example:8080"},
		{name: "configured", config: "{\n\toauth {\n\t\tstore memory\n\t\tissuer https://auth.example.com/\n\t}\n}\n\nhttp://:8080 {\n\toauth_server\n}\n", want: "https://auth.example.com"},
		{name: "no host", config: global + "http://:8080 {\n\toauth_server\n}\n", err: setIssuer + "oauth_server is served on a site address with no host (:8080)"},
		{name: "two hosts", config: global + "http://a.example:8080, http://b.example:8080 {\n\toauth_server\n}\n", err: setIssuer + "oauth_server is served on several origins (http://a.example:8080, http://b.example:8080)"},
		{name: "two ports", config: global + "http://a.example:8080 {\n\toauth_server\n}\n\nhttp://a.example:8081 {\n\toauth_server\n}\n", err: "several origins (http://a.example:8080, http://a.example:8081)"},
		{name: "wildcard", config: global + "http://*.example.com:8080 {\n\toauth_server\n}\n", err: setIssuer + "oauth_server is served on a host pattern (*.example.com)"},
		{name: "json, subroute under a host, TLS", json: true,
			config: `{"listen": [":8443"], "tls_connection_policies": [{}], "routes": [{"match": [{"host": ["Auth.Example.com"]}], "handle": [{"handler": "subroute", "routes": [{"match": [{"path": ["/oauth/*"]}], "handle": [{"handler": "oauth_server"}]}]}]}]}`,
			want:   "https://auth.example.com:8443"},
		{name: "json, TLS policies on the HTTP port", json: true,
			config: `{"listen": [":80"], "tls_connection_policies": [{}], "routes": [{"match": [{"host": ["a.example"]}], "handle": [{"handler": "oauth_server"}]}]}`,
			want:   "http://a.example"},
		{name: "json, no matcher", json: true,
			config: `{"listen": [":8443"], "routes": [{"handle": [{"handler": "oauth_server"}]}]}`,
			err:    setIssuer + "oauth_server is served on a site address with no host (:8443)"},
		{name: "json, one matcher set without a host", json: true,
			config: `{"listen": [":8080"], "routes": [{"match": [{"host": ["a.example"]}, {"path": ["/x"]}], "handle": [{"handler": "oauth_server"}]}]}`,
			err:    "no host (:8080)"},
		{name: "json, port range", json: true,
			config: `{"listen": [":8080-8081"], "routes": [{"match": [{"host": ["a.example"]}], "handle": [{"handler": "oauth_server"}]}]}`,
			err:    "several origins (https://a.example:8080, https://a.example:8081)"},
		{name: "json, unix socket", json: true,
			config: `{"listen": ["unix//tmp/oauth-issuer-test.sock"], "routes": [{"match": [{"host": ["a.example"]}], "handle": [{"handler": "oauth_server"}]}]}`,
			err:    "no fixed port (unix//tmp/oauth-issuer-test.sock)"},
		{name: "json, no oauth_server", json: true,
			config: `{"listen": [":8080"], "routes": [{"handle": [{"handler": "oauth_protect"}]}]}`,
			err:    "no issuer is configured"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			js := []byte(strings.Replace(server, "%s", tc.config, 1))
			if !tc.json {
				var err error
				if js, _, err = adapt(t, []byte(tc.config)); err != nil {
					t.Fatalf("adapt: %v", err)
				}
			}
			got, err := issuerOf(t, js)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("issuer %q, error %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("issuer %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	t.Run("jwt without oauth_server", func(t *testing.T) {
		_, err := issuerOf(t, []byte(`{"apps": {"oauth": {"store": {"module": "memory"}, "token_format": "jwt"}}}`))
		if err == nil || !strings.Contains(err.Error(), setIssuer+"no site serves oauth_server") {
			t.Fatalf("error %v", err)
		}
	})
}
