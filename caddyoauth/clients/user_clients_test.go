package clients

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
)

// TestRegisteredByWhoCreated: a client created under the operator's rules
// is the operator's, one created under a user's rules is a user's, and
// the authorization server sees which.
func TestRegisteredByWhoCreated(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	name, grants, uris := "X", []string{authz.GrantAuthorizationCode}, []string{"https://x.example.com/cb"}
	m := &Metadata{ClientName: &name, GrantTypes: &grants, RedirectURIs: &uris}
	for _, tc := range []struct {
		rules Rules
		user  bool
	}{
		{Rules{Grants: authz.KnownGrants, Operator: true}, false},
		{Rules{Grants: authz.KnownGrants, DefaultUser: "alice"}, true},
	} {
		c := new(Client)
		if err := m.Apply(c, tc.rules, true); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
		ac, err := r.Client(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if c.UserRegistered() != tc.user || ac.UserRegistered != tc.user {
			t.Fatalf("operator=%v: registered_by %q, user-registered %v; want %v", tc.rules.Operator, c.RegisteredBy, ac.UserRegistered, tc.user)
		}
	}
	// Records of earlier versions say nothing: an owner makes them a user's.
	if (&Client{UserID: "alice"}).UserRegistered() != true || (&Client{}).UserRegistered() != false {
		t.Fatal("records without registered_by")
	}
}

// TestUserClientsGetOnlyAllowedScopes: a user's client keeps only the
// allowed scopes whatever its record holds, an operator's client keeps
// its own.
func TestUserClientsGetOnlyAllowedScopes(t *testing.T) {
	r := newRegistry(t)
	r.LimitUserScopes([]string{"read"})
	ctx := context.Background()
	for id, c := range map[string]*Client{
		"mine":    {ID: "mine", UserID: "alice", Public: true, Grants: []string{authz.GrantAuthorizationCode}, Scopes: []string{"read", "admin"}},
		"partner": {ID: "partner", UserID: "p-1", RegisteredBy: ByOperator, Public: true, Grants: []string{authz.GrantAuthorizationCode}, Scopes: []string{"read", "admin"}},
	} {
		b, _ := json.Marshal(c)
		if err := r.store.Put(ctx, prefixClient+id, b, 0); err != nil {
			t.Fatal(err)
		}
	}
	mine, err := r.Client(ctx, "mine")
	if err != nil || !slices.Equal(mine.Scopes, []string{"read"}) {
		t.Fatalf("a user's client: scopes %v, %v; want [read]", mine.Scopes, err)
	}
	partner, err := r.Client(ctx, "partner")
	if err != nil || !slices.Equal(partner.Scopes, []string{"read", "admin"}) {
		t.Fatalf("the operator's client: scopes %v, %v", partner.Scopes, err)
	}
	r.LimitUserScopes(nil)
	if mine, _ := r.Client(ctx, "mine"); len(mine.Scopes) != 0 {
		t.Fatalf("no scope allowed: %v", mine.Scopes)
	}
}

// TestReservedNames: a user's client may not take a reserved name under
// any spelling that looks the same; the operator may.
func TestReservedNames(t *testing.T) {
	grants, uris := []string{authz.GrantAuthorizationCode}, []string{"https://x.example.com/cb"}
	user := Rules{Grants: authz.KnownGrants, DefaultUser: "alice", ReservedNames: []string{"Web App", "ops"}}
	for name, ok := range map[string]bool{
		"Web App": false, "  web   APP ": false, "Ｗｅｂ Ａｐｐ": false, "OPS": false,
		"Web Apps": true, "Web-App": true,
	} {
		n := name
		err := (&Metadata{ClientName: &n, GrantTypes: &grants, RedirectURIs: &uris}).Apply(new(Client), user, true)
		if (err == nil) != ok {
			t.Errorf("name %q: %v, want allowed=%v", name, err, ok)
		}
	}
	n := "Web App"
	op := Rules{Grants: authz.KnownGrants, Operator: true, ReservedNames: []string{"Web App"}}
	if err := (&Metadata{ClientName: &n, GrantTypes: &grants, RedirectURIs: &uris}).Apply(new(Client), op, true); err != nil {
		t.Fatalf("the operator: %v", err)
	}
}
