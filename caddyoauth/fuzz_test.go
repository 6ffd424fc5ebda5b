package caddyoauth

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// FuzzLimitsCaddyfile: the rate_limit and lockout options never panic the
// oauth option's parser, an error names the file and line, and accepted
// limits provision-check (RateConfig.rate) cleanly.
func FuzzLimitsCaddyfile(f *testing.F) {
	for _, s := range []string{
		"oauth {\n\trate_limit {\n\t\ttoken 20/s burst 40\n\t\tlogin 5/m\n\t\tintrospect off\n\t}\n}",
		"oauth {\n\trate_limit off\n\tlockout off\n}",
		"oauth {\n\tlockout {\n\t\twindow 10m\n\t\tslow_after 2\n\t\tlock_after 5\n\t\tlock_for 1h\n\t\taddress_lock_after 50\n\t}\n}",
		"oauth {\n\trate_limit {\n\t\ttoken 1000000000/1ms burst 1\n\t}\n}",
		"oauth {\n\trate_limit {\n\t\ttoken 20/s burst\n\t}\n}", "oauth {\n\tlockout {\n\t\tlock_after\n\t}\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		tokens, err := caddyfile.Tokenize([]byte(in), "Caddyfile")
		if err != nil || len(tokens) == 0 {
			return
		}
		a := new(App)
		if err := a.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)); err != nil {
			if !strings.Contains(err.Error(), "Caddyfile:") {
				t.Fatalf("error without file and line: %v", err)
			}
			return
		}
		if rl := a.RateLimit; rl != nil {
			for name, rc := range map[string]*RateConfig{"token": rl.Token, "login": rl.Login, "introspect": rl.Introspect, "revoke": rl.Revoke} {
				if rc != nil && !rc.Off {
					if _, err := rc.rate(name); err != nil {
						t.Fatalf("the parser accepted a rate Provision refuses: %v", err)
					}
				}
			}
		}
	})
}

// FuzzProtectCaddyfile: the oauth_protect directive's parser never panics,
// and a header name it accepts is a valid one.
func FuzzProtectCaddyfile(f *testing.F) {
	for _, s := range []string{
		"oauth_protect", "oauth_protect {\n\tscope read write\n\toptional\n}",
		"oauth_protect {\n\tuser_header X-Remote-User\n\trealm legacy\n}",
		"oauth_protect {\n\tuser_header \"bad header\"\n}", "oauth_protect x", "oauth_protect {\n\tscope\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		tokens, err := caddyfile.Tokenize([]byte(in), "Caddyfile")
		if err != nil || len(tokens) == 0 {
			return
		}
		p := new(Protect)
		if err := p.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)); err != nil {
			return
		}
		for _, h := range []string{p.UserHeader, p.ClientHeader, p.ScopeHeader} {
			if h != "" && !validHeaderName(h) {
				t.Fatalf("accepted header name %q", h)
			}
		}
	})
}
