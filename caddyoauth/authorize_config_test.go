package caddyoauth

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// The adapt round trip of these options, with caddy.Validate, is the
// golden file testdata/adapt/authorize_options.caddyfiletest.

func TestParseAuthorizeOptions(t *testing.T) {
	good := []struct {
		name, input string
		check       func(a *App) bool
	}{
		{"session_ttl", "oauth {\n session_ttl 30m\n}", func(a *App) bool { return a.SessionTTL == caddy.Duration(30*60e9) }},
		{"pkce required", "oauth {\n pkce required\n}", func(a *App) bool { return a.PKCERequired && !a.PKCEAllowPlain }},
		{"pkce optional allow_plain", "oauth {\n pkce optional allow_plain\n}", func(a *App) bool { return !a.PKCERequired && a.PKCEAllowPlain }},
		{"templates", "oauth {\n templates /etc/gw/pages\n}", func(a *App) bool { return a.Templates == "/etc/gw/pages" }},
		{"users_file", "oauth {\n users_file {env.USERS}\n}", func(a *App) bool { return a.UsersFile == "{env.USERS}" }},
		{"login_upstream bare", "oauth {\n login_upstream https://legacy.example/login\n}", func(a *App) bool {
			return a.LoginUpstream != nil && a.LoginUpstream.URL == "https://legacy.example/login" && a.LoginUpstream.Format == ""
		}},
		{"login_upstream block", "oauth {\n login_upstream {env.LOGIN_URL} {\n  format form\n  id_field uid\n  timeout 2s\n }\n}", func(a *App) bool {
			lu := a.LoginUpstream
			return lu.URL == "{env.LOGIN_URL}" && lu.Format == "form" && lu.IDField == "uid" && lu.Timeout == caddy.Duration(2e9)
		}},
		{"client consent", "oauth {\n client a {\n  public\n  redirect_uri https://a.example/cb\n  grants authorization_code\n  consent skip\n }\n}", func(a *App) bool {
			return a.Clients[0].Consent == "skip"
		}},
	}
	for _, c := range good {
		t.Run(c.name, func(t *testing.T) {
			a := new(App)
			if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.input)); err != nil {
				t.Fatal(err)
			}
			if !c.check(a) {
				b, _ := json.Marshal(a)
				t.Fatalf("parsed as %s", b)
			}
		})
	}

	bad := []struct{ name, input, want string }{
		{"session_ttl negative", "oauth {\n session_ttl -1h\n}", "Testfile:2"},
		{"session_ttl twice", "oauth {\n session_ttl 1h\n session_ttl 2h\n}", "Testfile:3"},
		{"session_ttl no arg", "oauth {\n session_ttl\n}", "Testfile:2"},
		{"pkce no arg", "oauth {\n pkce\n}", "Testfile:2"},
		{"pkce unknown", "oauth {\n pkce sometimes\n}", "Testfile:2"},
		{"pkce bad second", "oauth {\n pkce required plain\n}", "Testfile:2"},
		{"pkce three args", "oauth {\n pkce required allow_plain x\n}", "Testfile:2"},
		{"templates two args", "oauth {\n templates a b\n}", "Testfile:2"},
		{"users_file no arg", "oauth {\n users_file\n}", "Testfile:2"},
		{"login_upstream no url", "oauth {\n login_upstream\n}", "Testfile:2"},
		{"login_upstream relative", "oauth {\n login_upstream /login\n}", "Testfile:2"},
		{"login_upstream ftp", "oauth {\n login_upstream ftp://x/login\n}", "Testfile:2"},
		{"login_upstream format", "oauth {\n login_upstream http://x/l {\n  format xml\n }\n}", "Testfile:3"},
		{"login_upstream timeout", "oauth {\n login_upstream http://x/l {\n  timeout soon\n }\n}", "Testfile:3"},
		{"login_upstream zero timeout", "oauth {\n login_upstream http://x/l {\n  timeout 0s\n }\n}", "Testfile:3"},
		{"login_upstream unknown", "oauth {\n login_upstream http://x/l {\n  retries 3\n }\n}", "Testfile:3"},
		{"login_upstream dup", "oauth {\n login_upstream http://x/l {\n  format json\n  format form\n }\n}", "Testfile:4"},
		{"consent unknown", "oauth {\n client a {\n  public\n  consent never\n }\n}", "Testfile:4"},
		{"consent no arg", "oauth {\n client a {\n  public\n  consent\n }\n}", "Testfile:4"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			err := new(App).UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.input))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one at %s", err, c.want)
			}
		})
	}
}
