package clients

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
)

// selfServiceGrants are the gateway's default grants of self-service
// clients.
var selfServiceGrants = []string{authz.GrantAuthorizationCode, authz.GrantRefreshToken}

// TestApplyMetadata: the user-facing rules (self-service) are narrower
// than the operator's.
func TestApplyMetadata(t *testing.T) {
	str := func(s string) *string { return &s }
	list := func(s ...string) *[]string { return &s }
	user := Rules{Grants: selfServiceGrants, Scopes: []string{"read"}, DefaultUser: "alice"}
	op := Rules{Grants: authz.KnownGrants, Scopes: []string{"read"}, Operator: true}
	var many []string
	for i := range maxRedirectURIs + 1 {
		many = append(many, fmt.Sprintf("https://a.example.com/%d", i))
	}
	cases := []struct {
		name  string
		m     Metadata
		rules Rules
		code  string
	}{
		{"user app", Metadata{ClientName: str("A"), RedirectURIs: list("https://a.example.com/cb")}, user, ""},
		{"user picks client_credentials", Metadata{GrantTypes: list("client_credentials")}, user, "invalid_client_metadata"},
		{"user sets owner", Metadata{RedirectURIs: list("https://a.example.com/cb"), UserID: str("bob")}, user, "invalid_client_metadata"},
		{"user skips consent", Metadata{RedirectURIs: list("https://a.example.com/cb"), Consent: str("skip")}, user, "invalid_client_metadata"},
		{"user asks always", Metadata{RedirectURIs: list("https://a.example.com/cb"), Consent: str("always")}, user, ""},
		{"unknown consent", Metadata{RedirectURIs: list("https://a.example.com/cb"), Consent: str("prompt")}, op, "invalid_client_metadata"},
		{"user picks id", Metadata{ClientID: str("mine"), RedirectURIs: list("https://a.example.com/cb")}, user, "invalid_client_metadata"},
		{"operator skips consent", Metadata{RedirectURIs: list("https://a.example.com/cb"), Consent: str("skip")}, op, ""},
		{"control chars in name", Metadata{ClientName: str("a\x00b"), RedirectURIs: list("https://a.example.com/cb")}, op, "invalid_client_metadata"},
		{"too many uris", Metadata{RedirectURIs: &many}, op, "invalid_redirect_uri"},
		{"native app scheme", Metadata{RedirectURIs: list("com.example.app:/cb"), TokenEndpointAuthMethod: str("none")}, user, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := new(Client)
			err := tc.m.Apply(c, tc.rules, true)
			var re *RegError
			switch {
			case tc.code == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.code != "" && (!errors.As(err, &re) || re.Code != tc.code):
				t.Fatalf("got %v, want %s", err, tc.code)
			}
			if tc.code == "" && c.UserID != tc.rules.DefaultUser {
				t.Fatalf("owner %q, want %q", c.UserID, tc.rules.DefaultUser)
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
	user := Rules{Grants: selfServiceGrants, Scopes: []string{"read", "write"}, DefaultUser: "alice"}
	op := Rules{Grants: authz.KnownGrants, Scopes: []string{"read", "write"}, Operator: true}
	f.Fuzz(func(t *testing.T, body string) {
		var m Metadata
		if json.Unmarshal([]byte(body), &m) != nil {
			return
		}
		for _, rules := range []Rules{user, op} {
			c := new(Client)
			err := m.Apply(c, rules, true)
			if err != nil {
				var re *RegError
				if !errors.As(err, &re) || re.Code == "" {
					t.Fatalf("error without an RFC 7591 code: %v", err)
				}
				continue
			}
			for _, g := range c.Grants {
				if !slices.Contains(rules.Grants, g) {
					t.Fatalf("grant %q outside the rules", g)
				}
			}
			for _, s := range c.Scopes {
				if !slices.Contains(rules.Scopes, s) {
					t.Fatalf("scope %q outside the rules", s)
				}
			}
			for _, u := range c.RedirectURIs {
				if CheckRedirectURI(u) != nil {
					t.Fatalf("bad redirect URI %q accepted", u)
				}
			}
			if !rules.Operator && (c.UserID != rules.DefaultUser || c.Consent == authz.ConsentSkip || c.ID != "") {
				t.Fatalf("a user's app escaped the rules: %+v", c)
			}
		}
	})
}
