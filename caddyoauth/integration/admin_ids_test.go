package integration

import (
	"fmt"
	"strings"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// TestAdminAPIAcceptsAnyID: a user ID or a static client_id holding '/',
// '%', a space, or made of dots reaches the admin API whole, through the
// `caddy oauth` commands and through escaped paths, so every user can be
// revoked and every client shown.
func TestAdminAPIAcceptsAnyID(t *testing.T) {
	up := gt.StartUpstream(t)
	g := gt.Start(t, gt.Config(`
oauth {
	store memory
	client "partner/one" {
		secret partner-secret
		grants client_credentials
		scopes read
		user "team/alice"
	}
}`, fmt.Sprintf(`
oauth_server
oauth_protect
reverse_proxy %s`, up.Addr())))

	out, err := oauthCLI(t, g, "client", "show", "partner/one")
	if err != nil || !strings.Contains(out, "partner/one") {
		t.Fatalf("caddy oauth client show partner/one: %v\n%s", err, out)
	}
	if r := adminJSON(t, g, "GET", "/oauth/clients/partner%2Fone", ""); r.Status != 200 || r.Str("client_id") != "partner/one" {
		t.Fatalf("GET /oauth/clients/partner%%2Fone: %d %s", r.Status, r.Body)
	}

	// Users whose IDs a path would otherwise split or clean away.
	users := []string{"team/alice", "..", ".", "50% off", "/lead", "a//b"}
	tokens := map[string]string{}
	for _, u := range users {
		if u == "team/alice" {
			tokens[u] = wantToken(t, clientCredentials(t, g, "partner/one", "partner-secret")).Str("access_token")
			continue
		}
		r := adminJSON(t, g, "POST", "/oauth/clients", fmt.Sprintf(`{"grant_types":["client_credentials"],"scope":"read","user_id":%q}`, u))
		if r.Status != 201 {
			t.Fatalf("create a client of user %q: %d %s", u, r.Status, r.Body)
		}
		tokens[u] = wantToken(t, clientCredentials(t, g, r.Str("client_id"), r.Str("client_secret"))).Str("access_token")
	}
	for _, u := range users {
		if r := gt.Get(t, g.URL+"/api", tokens[u]); r.Status != 200 || up.Last().Get("X-User-ID") != u {
			t.Fatalf("user %q before the revocation: %d, X-User-ID %q", u, r.Status, up.Last().Get("X-User-ID"))
		}
	}
	// Every ID goes through the command line and through the API with
	// every special character escaped; either one revokes.
	for i, u := range users {
		path := "/oauth/users/" + strings.NewReplacer("%", "%25", "/", "%2F", ".", "%2E", " ", "%20").Replace(u) + "/revoke"
		api := func() {
			t.Helper()
			if r := adminJSON(t, g, "POST", path, ""); r.Status != 200 || r.Str("user_id") != u {
				t.Fatalf("POST %s: %d %s, want 200 naming %q", path, r.Status, r.Body, u)
			}
		}
		cli := func() {
			t.Helper()
			if out, err := oauthCLI(t, g, "user", "revoke", u); err != nil {
				t.Fatalf("caddy oauth user revoke %q: %v\n%s", u, err, out)
			}
		}
		first, second := cli, api
		if i%2 == 1 {
			first, second = api, cli
		}
		first()
		if r := gt.Get(t, g.URL+"/api", tokens[u]); r.Status != 401 {
			t.Fatalf("user %q after the revocation: %d, want 401", u, r.Status)
		}
		second()
	}
}
