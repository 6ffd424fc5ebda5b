package caddyoauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/clients"
)

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
	if !a.SelfService || len(a.AppsAllowedGrants) != 3 {
		t.Fatalf("self_service %v apps_allowed_grants %v", a.SelfService, a.AppsAllowedGrants)
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

func TestCheckClientManagementDefaults(t *testing.T) {
	a := new(App)
	if err := a.checkClientManagement(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.AppsAllowedGrants, defaultAppsGrants) {
		t.Fatalf("default apps grants %v", a.AppsAllowedGrants)
	}
	if err := (&App{AppsAllowedGrants: []string{"nope"}}).checkClientManagement(); err == nil {
		t.Fatal("an unknown grant in JSON config passed")
	}
	if err := (&App{Scopes: []string{"a b"}}).checkClientManagement(); err == nil {
		t.Fatal("a bad scope in JSON config passed")
	}
}

func TestConfiguredScopesIsTheUnion(t *testing.T) {
	a := &App{Scopes: []string{"admin"}, Clients: []*ClientConfig{{Scopes: []string{"read", "write"}}, {Scopes: []string{"read"}}}}
	if got := a.configuredScopes(); !slices.Equal(got, []string{"admin", "read", "write"}) {
		t.Fatalf("configured scopes %v", got)
	}
}

// TestApplyMetadata: the user-facing rules (self-service) are narrower
// than the operator's.
func TestApplyMetadata(t *testing.T) {
	str := func(s string) *string { return &s }
	list := func(s ...string) *[]string { return &s }
	user := clientRules{grants: defaultAppsGrants, scopes: []string{"read"}, defaultUser: "alice"}
	op := clientRules{grants: authz.KnownGrants, scopes: []string{"read"}, operator: true}
	var many []string
	for i := range maxRedirectURIs + 1 {
		many = append(many, fmt.Sprintf("https://a.example.com/%d", i))
	}
	cases := []struct {
		name  string
		m     clientMetadata
		rules clientRules
		code  string
	}{
		{"user app", clientMetadata{ClientName: str("A"), RedirectURIs: list("https://a.example.com/cb")}, user, ""},
		{"user picks client_credentials", clientMetadata{GrantTypes: list("client_credentials")}, user, "invalid_client_metadata"},
		{"user sets owner", clientMetadata{RedirectURIs: list("https://a.example.com/cb"), UserID: str("bob")}, user, "invalid_client_metadata"},
		{"user skips consent", clientMetadata{RedirectURIs: list("https://a.example.com/cb"), Consent: str("skip")}, user, "invalid_client_metadata"},
		{"user asks always", clientMetadata{RedirectURIs: list("https://a.example.com/cb"), Consent: str("always")}, user, ""},
		{"unknown consent", clientMetadata{RedirectURIs: list("https://a.example.com/cb"), Consent: str("prompt")}, op, "invalid_client_metadata"},
		{"user picks id", clientMetadata{ClientID: str("mine"), RedirectURIs: list("https://a.example.com/cb")}, user, "invalid_client_metadata"},
		{"operator skips consent", clientMetadata{RedirectURIs: list("https://a.example.com/cb"), Consent: str("skip")}, op, ""},
		{"control chars in name", clientMetadata{ClientName: str("a\x00b"), RedirectURIs: list("https://a.example.com/cb")}, op, "invalid_client_metadata"},
		{"too many uris", clientMetadata{RedirectURIs: &many}, op, "invalid_redirect_uri"},
		{"native app scheme", clientMetadata{RedirectURIs: list("com.example.app:/cb"), TokenEndpointAuthMethod: str("none")}, user, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := new(clients.Client)
			err := tc.m.apply(c, tc.rules, true)
			var re *regError
			switch {
			case tc.code == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.code != "" && (!errors.As(err, &re) || re.Code != tc.code):
				t.Fatalf("got %v, want %s", err, tc.code)
			}
			if tc.code == "" && c.UserID != tc.rules.defaultUser {
				t.Fatalf("owner %q, want %q", c.UserID, tc.rules.defaultUser)
			}
		})
	}
}

// FuzzClientMetadata: any JSON body of the admin API or the self-service
// form either is refused with an RFC 7591 error or yields a client within
// the caller's rules; it never panics.
func FuzzClientMetadata(f *testing.F) {
	f.Add(`{"client_name":"A","redirect_uris":["https://a.example.com/cb"],"grant_types":["authorization_code","refresh_token"],"scope":"read"}`)
	f.Add(`{"grant_types":["client_credentials"],"token_endpoint_auth_method":"none"}`)
	f.Add(`{"redirect_uris":["com.example.app:/cb"],"token_endpoint_auth_method":"none","consent":"skip","user_id":"u"}`)
	f.Add(`{"client_id":"x","scope":"read  write"}`)
	user := clientRules{grants: defaultAppsGrants, scopes: []string{"read", "write"}, defaultUser: "alice"}
	op := clientRules{grants: authz.KnownGrants, scopes: []string{"read", "write"}, operator: true}
	f.Fuzz(func(t *testing.T, body string) {
		var m clientMetadata
		if json.Unmarshal([]byte(body), &m) != nil {
			return
		}
		for _, rules := range []clientRules{user, op} {
			c := new(clients.Client)
			err := m.apply(c, rules, true)
			if err != nil {
				var re *regError
				if !errors.As(err, &re) || re.Code == "" {
					t.Fatalf("error without an RFC 7591 code: %v", err)
				}
				continue
			}
			for _, g := range c.Grants {
				if !slices.Contains(rules.grants, g) {
					t.Fatalf("grant %q outside the rules", g)
				}
			}
			for _, s := range c.Scopes {
				if !slices.Contains(rules.scopes, s) {
					t.Fatalf("scope %q outside the rules", s)
				}
			}
			for _, u := range c.RedirectURIs {
				if checkRedirectURI(u) != nil {
					t.Fatalf("bad redirect URI %q accepted", u)
				}
			}
			if !rules.operator && (c.UserID != rules.defaultUser || c.Consent == authz.ConsentSkip || c.ID != "") {
				t.Fatalf("a user's app escaped the rules: %+v", c)
			}
		}
	})
}
