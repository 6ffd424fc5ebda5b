package caddyoauth

import (
	"slices"
	"testing"
)

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
