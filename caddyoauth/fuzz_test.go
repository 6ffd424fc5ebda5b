package caddyoauth

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// FuzzBearerToken: bearerToken never panics; a token it finds is a valid
// b64token found in the one Authorization header, under a Bearer scheme
// in any case.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer abc.def-ghi_jkl~mno+pqr/stu==", "Bearer", "Bearer ",
		"Bearer  a", "Basic dXNlcjpwYXNz", "Bearer a b", "Bearer =abc", "Bearer ab=c", "BEARER x", "Bearer\ta", ""} {
		f.Add(s, "")
	}
	f.Add("Bearer a", "Bearer b")
	f.Fuzz(func(t *testing.T, first, second string) {
		h := http.Header{}
		if first != "" {
			h.Add("Authorization", first)
		}
		if second != "" {
			h.Add("Authorization", second)
		}
		token, found, ok := bearerToken(h)
		if !ok {
			if !found || token != "" {
				t.Fatalf("malformed credentials gave token=%q found=%v", token, found)
			}
			return
		}
		if !found {
			if token != "" {
				t.Fatalf("no bearer credentials, yet token %q", token)
			}
			return
		}
		if len(h.Values("Authorization")) != 1 {
			t.Fatalf("a token came out of %d Authorization headers", len(h.Values("Authorization")))
		}
		if !isB64Token(token) || !strings.HasSuffix(first, token) || !strings.EqualFold(first[:6], "bearer") {
			t.Fatalf("bearerToken(%q) = %q, not a b64token of a Bearer header", first, token)
		}
	})
}

// FuzzRedirectURICheck: checkRedirectURI never panics and never accepts a
// URI with a fragment, a relative one, or plain http to a host other than
// loopback.
func FuzzRedirectURICheck(f *testing.F) {
	for _, s := range []string{"https://zapier.com/dashboard/auth/oauth/return/App123CLIAPI/", "http://localhost:8080/cb",
		"http://evil.example/cb", "https://a.example/cb#frag", "/relative", "com.example.app:/cb", "javascript:alert(1)",
		"http://127.0.0.1.evil.example/", "HTTPS://A.EXAMPLE/", "https://[::1]:80/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if err := checkRedirectURI(raw); err != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || !u.IsAbs() || strings.Contains(raw, "#") {
			t.Fatalf("checkRedirectURI accepted %q", raw)
		}
		if u.Scheme == "http" {
			if h := u.Hostname(); h != "localhost" && h != "127.0.0.1" && h != "::1" {
				t.Fatalf("checkRedirectURI accepted http to %q", h)
			}
		}
	})
}

// FuzzAppCaddyfile: the oauth global option's parser never panics on any
// input, and an error it returns names the file and line.
func FuzzAppCaddyfile(f *testing.F) {
	seeds := []string{
		"oauth {\n\tstore memory\n\tclient a {\n\t\tsecret s\n\t\tgrants client_credentials\n\t\tscopes read\n\t}\n}",
		"oauth {\n\tuser alice $2a$04$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01 u1\n}",
		"oauth {\n\trate_limit {\n\t\ttoken 20/s burst 40\n\t\tlogin 5/m\n\t}\n\tlockout {\n\t\tlock_after 5\n\t}\n}",
		"oauth {\n\taccess_token_ttl 1h\n\trefresh_token_rotation off\n\trefresh_token_grace 5s\n}",
		"oauth {\n\tclient x {\n\t\tredirect_uri https://a/cb\n\t\tpublic\n\t\tgrants authorization_code\n\t}\n}",
		"oauth {\n\trate_limit off\n\tlockout off\n}",
		"oauth { {", "oauth {\n\tclient\n}", "oauth x",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		tokens, err := caddyfile.Tokenize([]byte(in), "Caddyfile")
		if err != nil || len(tokens) == 0 {
			return
		}
		d := caddyfile.NewDispenser(tokens)
		if err := new(App).UnmarshalCaddyfile(d); err != nil && !strings.Contains(err.Error(), "Caddyfile:") {
			t.Fatalf("error without file and line: %v", err)
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
