package caddyoauth

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

const testHash = "$2a$04$Ey3oG7kY0lPp7LwQzY9qUeqzZ5zF1bJ3g6eH9mYxH6l8vJ1l2lD5a"

func TestAppCaddyfile(t *testing.T) {
	in := `oauth {
	store memory
	access_token_ttl 15m
	refresh_token_ttl 0
	code_ttl 30s
	refresh_token_rotation off
	refresh_token_grace 5s
	issuer https://auth.example.com
	client zapier {
		name "Zapier"
		secret {env.ZAPIER_SECRET}
		redirect_uri https://zapier.com/a https://zapier.com/b
		redirect_uri https://zapier.com/c
		grants authorization_code refresh_token
		scopes read write
		default_scope read
	}
	client svc {
		secret_hash ` + testHash + `
		grants client_credentials
		scopes read
		user service-7
	}
	client app {
		public
		redirect_uri com.example.app:/cb
		grants authorization_code
	}
	user alice ` + testHash + ` user-42
	user bob ` + testHash + `
}`
	var a App
	if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(a)
	want := `{"store":{"module":"memory"},"access_token_ttl":900000000000,"refresh_token_ttl":0,"code_ttl":30000000000,"refresh_token_rotation":false,"refresh_token_grace":5000000000,"issuer":"https://auth.example.com","clients":[{"client_id":"zapier","name":"Zapier","secret":"{env.ZAPIER_SECRET}","redirect_uris":["https://zapier.com/a","https://zapier.com/b","https://zapier.com/c"],"grants":["authorization_code","refresh_token"],"scopes":["read","write"],"default_scope":["read"]},{"client_id":"svc","secret_hash":"` + testHash + `","grants":["client_credentials"],"scopes":["read"],"user":"service-7"},{"client_id":"app","public":true,"redirect_uris":["com.example.app:/cb"],"grants":["authorization_code"]}],"users":[{"username":"alice","password_hash":"` + testHash + `","user_id":"user-42"},{"username":"bob","password_hash":"` + testHash + `"}]}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestAppCaddyfileErrors(t *testing.T) {
	client := func(body string) string {
		return "oauth {\n\tclient c {\n" + body + "\n\t}\n}"
	}
	tests := []struct {
		name, in string
		line     int
		msg      string
	}{
		{"argument", "oauth x {\n}", 1, "wrong argument"},
		{"unknown option", "oauth {\n\tbogus 1\n}", 2, "unrecognized oauth option 'bogus'"},
		{"option twice", "oauth {\n\tcode_ttl 1s\n\tcode_ttl 2s\n}", 3, "given twice"},
		{"bad duration", "oauth {\n\taccess_token_ttl soon\n}", 2, "bad duration"},
		{"negative duration", "oauth {\n\tcode_ttl -1s\n}", 2, "negative"},
		{"duration extra arg", "oauth {\n\tcode_ttl 1s 2s\n}", 2, "wrong argument"},
		{"rotation not on/off", "oauth {\n\trefresh_token_rotation yes\n}", 2, "expected on or off"},
		{"client without id", "oauth {\n\tclient {\n\t}\n}", 2, "needs a client_id"},
		{"client twice", "oauth {\n\tclient c {\n\t\tsecret s\n\t\tgrants password\n\t}\n\tclient c {\n\t\tsecret s\n\t\tgrants password\n\t}\n}", 6, "defined twice"},
		{"unknown client option", client("\t\tsecret s\n\t\tcolour red"), 4, "unrecognized client option 'colour'"},
		{"client option twice", client("\t\tsecret s\n\t\tsecret t"), 4, "given twice"},
		{"no secret", client("\t\tgrants password"), 4, "needs a secret"},
		{"public with secret", client("\t\tpublic\n\t\tsecret s\n\t\tgrants authorization_code\n\t\tredirect_uri https://a.example.com/cb"), 7, "public client has no secret"},
		{"bad secret hash", client("\t\tsecret_hash nope\n\t\tgrants password"), 5, "not a bcrypt hash"},
		{"no grants", client("\t\tsecret s"), 4, "lists no grants"},
		{"unknown grant", client("\t\tsecret s\n\t\tgrants implicit"), 5, `unknown grant "implicit"`},
		{"public client_credentials", client("\t\tpublic\n\t\tgrants client_credentials"), 5, "cannot use client_credentials"},
		{"code without redirect", client("\t\tsecret s\n\t\tgrants authorization_code"), 5, "no redirect_uri"},
		{"relative redirect", client("\t\tsecret s\n\t\tgrants authorization_code\n\t\tredirect_uri /cb"), 6, "not an absolute URI"},
		{"http redirect", client("\t\tsecret s\n\t\tgrants authorization_code\n\t\tredirect_uri http://a.example.com/cb"), 6, "must use https"},
		{"fragment redirect", client("\t\tsecret s\n\t\tgrants authorization_code\n\t\tredirect_uri https://a.example.com/cb#x"), 6, "fragment"},
		{"javascript redirect", client("\t\tsecret s\n\t\tgrants authorization_code\n\t\tredirect_uri javascript:alert(1)"), 6, "forbidden scheme"},
		{"bad scope", client("\t\tsecret s\n\t\tgrants password\n\t\tscopes re\"ad"), 6, "not a valid scope"},
		{"default scope outside scopes", client("\t\tsecret s\n\t\tgrants password\n\t\tscopes read\n\t\tdefault_scope write"), 7, "not among its scopes"},
		{"client user with control character", client("\t\tsecret s\n\t\tgrants client_credentials\n\t\tuser \"a\nb\""), 7, "control character"},
		{"client id with colon", "oauth {\n\tclient a:b {\n\t\tsecret s\n\t\tgrants password\n\t}\n}", 5, "may not contain ':'"},
		{"user missing hash", "oauth {\n\tuser alice\n}", 2, "user takes"},
		{"user bad hash", "oauth {\n\tuser alice secret\n}", 2, "not a bcrypt hash"},
		{"user twice", "oauth {\n\tuser alice " + testHash + "\n\tuser alice " + testHash + "\n}", 3, "defined twice"},
		{"user id with control character", "oauth {\n\tuser alice " + testHash + " \"a\tb\"\n}", 2, "control character"},
		{"unknown store", "oauth {\n\tstore nosuch\n}", 2, "nosuch"},
		{"store without name", "oauth {\n\tstore\n}", 2, "wrong argument"},
		{"tls_client_auth kind", client("\t\tgrants client_credentials\n\t\ttls_client_auth cn x"), 4, "tls_client_auth takes"},
		{"tls_client_auth twice", client("\t\tgrants client_credentials\n\t\ttls_client_auth san_dns a.example\n\t\ttls_client_auth san_ip 192.0.2.1"), 5, "given twice"},
		{"jwks file missing", client("\t\tgrants client_credentials\n\t\ttoken_endpoint_auth_method private_key_jwt\n\t\tjwks /nonexistent/jwks.json"), 5, "jwks:"},
		{"keys without a method", client("\t\tsecret s\n\t\tgrants client_credentials\n\t\tjwks_uri https://a.example/jwks.json"), 6, "go with token_endpoint_auth_method"},
		{"unknown method", client("\t\tgrants client_credentials\n\t\ttoken_endpoint_auth_method client_secret_jwt"), 5, "token_endpoint_auth_method must be one of"},
		{"private key in jwks", client("\t\tgrants client_credentials\n\t\ttoken_endpoint_auth_method private_key_jwt\n\t\tjwks `{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}`"), 6, "private or symmetric"},
		{"scope without description", "oauth {\n\tscope read\n}", 2, `scope <name> "<description>"`},
		{"scope described twice", "oauth {\n\tscope read R\n\tscope read S\n}", 3, "described twice"},
		{"scope language twice", "oauth {\n\tscope read R {\n\t\tde L\n\t\tde M\n\t}\n}", 4, "given twice"},
		{"scope language without text", "oauth {\n\tscope read R {\n\t\tde\n\t}\n}", 3, `expected de "<description>"`},
		{"unknown branding option", "oauth {\n\tbranding {\n\t\tfont serif\n\t}\n}", 3, "unrecognized branding option 'font'"},
		{"branding option twice", "oauth {\n\tbranding {\n\t\tname A\n\t\tname B\n\t}\n}", 4, "given twice"},
		{"branding color not hex", "oauth {\n\tbranding {\n\t\tcolor blue\n\t}\n}", 3, "hex colour"},
		{"branding support over http", "oauth {\n\tbranding {\n\t\tsupport_url http://help.example.com\n\t}\n}", 3, "https"},
		{"language bad tag", "oauth {\n\tlanguage italian it.json\n}", 2, "not a language tag"},
		{"language twice", "oauth {\n\tlanguage it a.json\n\tlanguage IT b.json\n}", 3, "given twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a App
			err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.in))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q does not say %q", err, tc.msg)
			}
			if !strings.Contains(err.Error(), "Testfile:"+itoa(tc.line)) {
				t.Fatalf("error %q does not name Testfile:%d", err, tc.line)
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestProtectCaddyfile(t *testing.T) {
	var p Protect
	in := "oauth_protect {\n\tscope read write\n\tuser_header X-Remote-User\n\tclient_header X-Client\n\tscope_header X_Scopes\n\trealm legacy\n\toptional\n\tforward_token\n}"
	if err := p.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(p)
	want := `{"scopes":["read","write"],"user_header":"X-Remote-User","client_header":"X-Client","scope_header":"X_Scopes","optional":true,"realm":"legacy","forward_token":true}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	for name, tc := range map[string]struct {
		in, msg string
	}{
		"argument":               {"oauth_protect read", "wrong argument"},
		"unknown option":         {"oauth_protect {\n\tscopes read\n}", "unrecognized oauth_protect option 'scopes'"},
		"twice":                  {"oauth_protect {\n\trealm a\n\trealm b\n}", "given twice"},
		"forward_token argument": {"oauth_protect {\n\tforward_token yes\n}", "wrong argument"},
		"no scope":               {"oauth_protect {\n\tscope\n}", "wrong argument"},
		"bad scope":              {"oauth_protect {\n\tscope re\\ad\n}", "not a valid scope"},
		"bad header":             {"oauth_protect {\n\tuser_header \"X User\"\n}", "not a valid header name"},
		"hop-by-hop header":      {"oauth_protect {\n\tscope_header Keep-Alive\n}", "cannot carry an identity"},
		"credential header":      {"oauth_protect {\n\tuser_header authorization\n}", "cannot carry an identity"},
		"realm quote":            {"oauth_protect {\n\trealm \"a\\\"b\"\n}", "realm may not contain"},
		"optional arg":           {"oauth_protect {\n\toptional yes\n}", "wrong argument"},
	} {
		t.Run(name, func(t *testing.T) {
			var p Protect
			err := p.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "Testfile:") {
				t.Fatalf("error %v, want %q with its line", err, tc.msg)
			}
		})
	}
}

func TestServerCaddyfile(t *testing.T) {
	var s Server
	if err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser("oauth_server")); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{"oauth_server x", "oauth_server {\n\tpath /auth\n}"} {
		if err := (&Server{}).UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err == nil || !strings.Contains(err.Error(), "Testfile:") {
			t.Errorf("%q: error %v", in, err)
		}
	}
}

// FuzzAppCaddyfile: the oauth option's parser never panics, and what it
// accepts marshals to JSON that unmarshals strictly into an App again.
func FuzzAppCaddyfile(f *testing.F) {
	f.Add("oauth {\n\tstore memory\n\tclient c {\n\t\tsecret s\n\t\tgrants password\n\t}\n\tuser a " + testHash + "\n}")
	f.Add("oauth {\n\tclient c {\n\t\tpublic\n\t\tredirect_uri com.x.y:/cb\n\t\tgrants authorization_code\n\t}\n}")
	f.Add("oauth {\n\tcode_ttl 1s\n\trefresh_token_rotation on\n\tissuer x\n}")
	f.Add("oauth {\n\tclient {\n\t\t}\n}\n}")
	f.Fuzz(func(t *testing.T, in string) {
		tokens, err := caddyfile.Tokenize([]byte(in), "Testfile")
		if err != nil {
			return
		}
		var a App
		if err := a.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)); err != nil {
			return
		}
		b, err := json.Marshal(&a)
		if err != nil {
			t.Fatal(err)
		}
		var again App
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&again); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		for _, c := range a.Clients {
			if err := c.check(); err != nil {
				t.Fatalf("the parser accepted a client that check refuses: %v", err)
			}
		}
	})
}

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

func TestParseTokenOptions(t *testing.T) {
	good := `oauth {
		token_format jwt
		signing_key_rotation 48h
		audience https://api.example.com
		client rs {
			secret s3cret
			introspect
		}
	}`
	a := new(App)
	if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(good)); err != nil {
		t.Fatal(err)
	}
	if a.TokenFormat != "jwt" || a.Audience != "https://api.example.com" || a.SigningKeyRotation == nil ||
		time.Duration(*a.SigningKeyRotation) != 48*time.Hour || len(a.Clients) != 1 || !a.Clients[0].Introspect {
		t.Fatalf("parsed %+v", a)
	}

	for _, iss := range []string{"https://auth.example.com", "https://auth.example.com/", "http://localhost:8080"} {
		if err := new(App).UnmarshalCaddyfile(caddyfile.NewTestDispenser("oauth {\n\tissuer " + iss + "\n}")); err != nil {
			t.Errorf("issuer %s: %v", iss, err)
		}
	}

	a = new(App)
	if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser("oauth {\n\ttoken_format jwt\n\tsigning_key /etc/key.pem\n}")); err != nil || a.SigningKey != "/etc/key.pem" {
		t.Fatalf("signing_key: %v %+v", err, a)
	}

	bad := []struct{ in, msg string }{
		{"oauth {\n\ttoken_format paseto\n}", "token_format must be opaque or jwt"},
		{"oauth {\n\ttoken_format\n}", "wrong argument count"},
		{"oauth {\n\ttoken_format jwt jwt\n}", "wrong argument count"},
		{"oauth {\n\ttoken_format jwt\n\tsigning_key_rotation soon\n}", "bad duration"},
		{"oauth {\n\ttoken_format jwt\n\tsigning_key_rotation -1h\n}", "negative"},
		{"oauth {\n\ttoken_format jwt\n\taudience \"a b\"\n}", "may not contain spaces"},
		{"oauth {\n\tsigning_key /k.pem\n}", "signing_key needs token_format jwt, at Testfile:2"},
		{"oauth {\n\tclient a {\n\t\tsecret s\n\t\tgrants password\n\t}\n\taudience x\n\ttoken_format opaque\n}", "audience needs token_format jwt, at Testfile:6"},
		{"oauth {\n\taudience x\n}", "needs token_format jwt"},
		{"oauth {\n\ttoken_format jwt\n\tsigning_key /k.pem\n\tsigning_key_rotation 1h\n}", "by replacing it, at Testfile:4"},
		{"oauth {\n\tclient rs {\n\t\tsecret s\n\t\tintrospect yes\n\t}\n}", "wrong argument count"},
		{"oauth {\n\tclient rs {\n\t\tpublic\n\t\tintrospect\n\t}\n}", "public client cannot introspect"},
		{"oauth {\n\tclient rs {\n\t\tsecret s\n\t}\n}", "lists no grants"},
		{"oauth {\n\tissuer http://auth.example.com\n}", "must be an https URL"},
		{"oauth {\n\tissuer https://auth.example.com/?x=1\n}", "must be an https URL"},
		{"oauth {\n\tissuer auth.example.com\n}", "must be an https URL"},
		{"oauth {\n\tissuer https://example.com/tenant\n}", "must be an https URL"},
	}
	for _, c := range bad {
		err := new(App).UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.in))
		if err == nil || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "Testfile:") {
			t.Errorf("%q: err = %v, want one mentioning %q and the line", c.in, err, c.msg)
		}
	}
}

func TestRateLimitCaddyfile(t *testing.T) {
	good := []struct {
		in   string
		want string // JSON of the rate_limit field
	}{
		{`oauth {
	rate_limit off
}`, `{"off":true}`},
		{`oauth {
	rate_limit {
		token 20/s burst 40
		login 5/m
		introspect off
	}
}`, `{"token":{"events":20,"per":1000000000,"burst":40},"login":{"events":5,"per":60000000000},"introspect":{"off":true}}`},
		{`oauth {
	rate_limit {
		token 100/10s
	}
}`, `{"token":{"events":100,"per":10000000000}}`},
		{`oauth {
	rate_limit {
		revoke 10/s burst 30
	}
}`, `{"revoke":{"events":10,"per":1000000000,"burst":30}}`},
	}
	for _, c := range good {
		a := new(App)
		if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.in)); err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		got, _ := json.Marshal(a.RateLimit)
		if string(got) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.in, got, c.want)
		}
	}
	bad := map[string]string{
		"rate_limit on":                                     "takes 'off' or a block",
		"rate_limit off extra":                              "wrong argument count",
		"rate_limit {\n\t\ttoken 20\n\t}":                   "is not <events>/<period>",
		"rate_limit {\n\t\ttoken 0/s\n\t}":                  "positive integer",
		"rate_limit {\n\t\ttoken 20/s burst\n\t}":           "takes <events>/<period>",
		"rate_limit {\n\t\ttoken 20/s bust 4\n\t}":          "expected 'burst'",
		"rate_limit {\n\t\ttoken 20/s burst -1\n\t}":        "not a positive integer",
		"rate_limit {\n\t\ttoken 20/s\n\t\ttoken 30/s\n\t}": "given twice",
		"rate_limit {\n\t\tsignup 20/s\n\t}":                "unrecognized rate_limit option",
		"rate_limit {\n\t\tlogin 5/fortnight\n\t}":          "the period must be",
		"rate_limit {\n\t}\n\trate_limit off":               "given twice",
	}
	for body, want := range bad {
		in := "oauth {\n\t" + body + "\n}"
		err := new(App).UnmarshalCaddyfile(caddyfile.NewTestDispenser(in))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "Testfile:") {
			t.Errorf("%q: error %v, want one containing %q and the file and line", body, err, want)
		}
	}
}

func TestLockoutCaddyfile(t *testing.T) {
	a := new(App)
	in := `oauth {
	lockout {
		window 10m
		slow_after 2
		lock_after 6
		lock_for 30m
		address_lock_after 50
	}
}`
	if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
		t.Fatal(err)
	}
	want := LockoutConfig{Window: caddy.Duration(10 * time.Minute), SlowAfter: 2, LockAfter: 6,
		LockFor: caddy.Duration(30 * time.Minute), AddressLockAfter: 50}
	if a.Lockout == nil || *a.Lockout != want {
		t.Fatalf("lockout = %+v, want %+v", a.Lockout, want)
	}
	a = new(App)
	if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser("oauth {\n\tlockout off\n}")); err != nil || !a.Lockout.Off {
		t.Fatalf("lockout off: %+v, %v", a.Lockout, err)
	}
	bad := map[string]string{
		"lockout yes":                                      "takes 'off' or a block",
		"lockout {\n\t\twindow 0s\n\t}":                    "must be positive",
		"lockout {\n\t\twindow soon\n\t}":                  "bad duration",
		"lockout {\n\t\tslow_after 0\n\t}":                 "not a positive integer",
		"lockout {\n\t\tlock_after x\n\t}":                 "not a positive integer",
		"lockout {\n\t\tlock_after 2\n\t}":                 "must not exceed lock_after",
		"lockout {\n\t\tlock_for 1m\n\t\tlock_for 2m\n\t}": "given twice",
		"lockout {\n\t\tban_after 3\n\t}":                  "unrecognized lockout option",
		"lockout {\n\t\tslow_after 1 2\n\t}":               "wrong argument count",
	}
	for body, want := range bad {
		in := "oauth {\n\t" + body + "\n}"
		err := new(App).UnmarshalCaddyfile(caddyfile.NewTestDispenser(in))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "Testfile:") {
			t.Errorf("%q: error %v, want one containing %q and the file and line", body, err, want)
		}
	}
}

func TestParseClientManagementOptions(t *testing.T) {
	d := caddyfile.NewTestDispenser(`oauth {
		scopes read write admin
		self_service
		apps_allowed_grants authorization_code refresh_token client_credentials
	}`)
	a := new(App)
	if err := a.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Scopes, []string{"read", "write", "admin"}) {
		t.Fatalf("scopes %v", a.Scopes)
	}
	if !a.SelfService || len(a.SelfServiceGrants) != 3 {
		t.Fatalf("self_service %v apps_allowed_grants %v", a.SelfService, a.SelfServiceGrants)
	}
}

func TestParseClientManagementOptionsErrors(t *testing.T) {
	for name, tc := range map[string]struct{ input, want string }{
		"scopes without args":   {"oauth {\n\tscopes\n}", "Testfile:2"},
		"bad scope":             {"oauth {\n\tscopes re\"ad\n}", "Testfile:2"},
		"self_service with arg": {"oauth {\n\tself_service on\n}", "Testfile:2"},
		"scopes twice":          {"oauth {\n\tscopes a\n\tscopes b\n}", "Testfile:3"},
		"self_service twice":    {"oauth {\n\tself_service\n\tself_service\n}", "Testfile:3"},
		"unknown apps grant":    {"oauth {\n\tapps_allowed_grants implicit\n}", "Testfile:2"},
		"apps grants empty":     {"oauth {\n\tapps_allowed_grants\n}", "Testfile:2"},
	} {
		t.Run(name, func(t *testing.T) {
			err := new(App).UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error at %s", err, tc.want)
			}
		})
	}
}

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

// TestClientJWKSFile: a jwks file is read when the Caddyfile is adapted,
// so the config holds the keys.
func TestClientJWKSFile(t *testing.T) {
	jwks := `{"keys":[{"kty":"EC","crv":"P-256","kid":"partner-1","x":"HWa0s3irA3T_CYPV3bTftd4kTL3l4sTTw39GISoejNA",
	  "y":"EDZo8K7LWAcx4AB3o4QdlKMICvm5rTYy6fDX-3JvTOQ"}]}`
	file := filepath.Join(t.TempDir(), "partner.jwks.json")
	if err := os.WriteFile(file, []byte(jwks), 0o600); err != nil {
		t.Fatal(err)
	}
	var a App
	in := "oauth {\n\tclient partner {\n\t\tgrants client_credentials\n\t\ttoken_endpoint_auth_method private_key_jwt\n\t\tjwks " + file + "\n\t}\n}"
	if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
		t.Fatal(err)
	}
	if got := string(a.Clients[0].JWKS); !strings.HasPrefix(got, `{"keys":[{"kty":"EC"`) || strings.ContainsAny(got, "\n ") {
		t.Fatalf("jwks %s", got)
	}
}
