package caddyoauth

import (
	"encoding/json"
	"strings"
	"testing"

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

// TestJSONConfigChecks: a JSON config bypasses the Caddyfile parser, so
// Provision's builders refuse the same mistakes.
func TestJSONConfigChecks(t *testing.T) {
	for name, users := range map[string][]*UserConfig{
		"user ID with a line break": {{Username: "a", PasswordHash: testHash, UserID: "x\ny"}},
		"username as ID with a NUL": {{Username: "a\x00", PasswordHash: testHash}},
		"duplicate":                 {{Username: "a", PasswordHash: testHash}, {Username: "a", PasswordHash: testHash}},
		"bad hash":                  {{Username: "a", PasswordHash: "x"}},
	} {
		if _, err := (&App{Users: users}).buildUsers(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	bad := &ClientConfig{ID: "c", Secret: "s", Grants: []string{"client_credentials"}, User: "a\rb"}
	if err := bad.check(); err == nil {
		t.Error("client user with a control character accepted")
	}
}
