package caddyoauth

import (
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
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

func TestCheckClientManagementDefaults(t *testing.T) {
	a := new(App)
	if err := a.checkClientManagement(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.SelfServiceGrants, defaultSelfServiceGrants) {
		t.Fatalf("default apps grants %v", a.SelfServiceGrants)
	}
	if err := (&App{SelfServiceGrants: []string{"nope"}}).checkClientManagement(); err == nil {
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
