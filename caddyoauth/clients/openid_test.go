package clients

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
)

// TestOpenIDMetadata: an operator's registration carries the OpenID
// Connect metadata into the record, the authorization server's client and
// the answers; bad values are invalid_client_metadata, and users may set
// none of it.
func TestOpenIDMetadata(t *testing.T) {
	body := `{"client_name":"RP","redirect_uris":["https://rp.example/cb"],"scope":"openid",
		"post_logout_redirect_uris":["https://rp.example/bye"],"id_token_signed_response_alg":"ES256",
		"backchannel_logout_uri":"https://rp.example/bc","default_max_age":600,"require_auth_time":true,"subject_type":"public"}`
	m, err := ParseMetadata([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	op := Rules{Grants: authz.KnownGrants, Scopes: []string{"openid"}, Operator: true}
	c := new(Client)
	if err := m.Apply(c, op, true); err != nil {
		t.Fatal(err)
	}
	r := newRegistry(t)
	ctx := context.Background()
	if _, err := r.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	ac, err := r.Client(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	o := ac.OpenID
	if len(o.PostLogoutRedirectURIs) != 1 || o.IDTokenSignedResponseAlg != "ES256" || o.BackchannelLogoutURI != "https://rp.example/bc" ||
		o.DefaultMaxAge != 600 || !o.RequireAuthTime || o.SubjectType != "public" {
		t.Fatalf("the stored client's OpenID metadata: %+v", o)
	}
	info, _ := json.Marshal(InfoOf(c, ""))
	for _, want := range []string{`"post_logout_redirect_uris":["https://rp.example/bye"]`, `"backchannel_logout_uri":"https://rp.example/bc"`, `"default_max_age":600`} {
		if !strings.Contains(string(info), want) {
			t.Fatalf("the answer %s lacks %s", info, want)
		}
	}

	for _, bad := range []string{
		`{"id_token_signed_response_alg":"none"}`,
		`{"id_token_signed_response_alg":"HS256"}`,
		`{"post_logout_redirect_uris":["/relative"]}`,
		`{"backchannel_logout_uri":"javascript:alert(1)"}`,
		`{"default_max_age":-5}`,
		`{"subject_type":"pairwise"}`,
	} {
		m, err := ParseMetadata([]byte(bad))
		if err != nil {
			t.Fatal(err)
		}
		var re *RegError
		if err := m.Apply(c, op, false); !errors.As(err, &re) || re.Code != "invalid_client_metadata" && re.Code != "invalid_redirect_uri" {
			t.Errorf("%s: %v", bad, err)
		}
	}
	user := Rules{Grants: selfServiceGrants, Scopes: []string{"openid"}, DefaultUser: "alice"}
	m, _ = ParseMetadata([]byte(`{"redirect_uris":["https://a.example/cb"],"backchannel_logout_uri":"https://internal.example/x"}`))
	var re *RegError
	if err := m.Apply(new(Client), user, true); !errors.As(err, &re) || re.Code != "invalid_client_metadata" {
		t.Fatalf("a user set backchannel_logout_uri: %v", err)
	}
}
