package integration

import (
	"testing"
	"time"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
	"github.com/caddyoauth/gateway/internal/poll"
	"github.com/caddyoauth/gateway/internal/testredis"
)

// TestClientsSharedByInstances: two gateways on one Redis store. A client
// registered through one instance's admin API works on the other; a
// rotated secret is refused by both, and a deleted client's token is
// refused by both, within the store's one-second invalidation bound.
func TestClientsSharedByInstances(t *testing.T) {
	rs := testredis.Start(t)
	cfg := gt.Config(`
oauth {
	store redis {{index .Vars "redis"}}
	scopes read
}`, `oauth_server
respond "ok"`)
	vars := map[string]string{"redis": rs.URL()}
	a := gt.Start(t, cfg, gt.WithVars(vars))
	b := gt.Start(t, cfg, gt.WithVars(vars))

	r := adminJSON(t, a, "POST", "/oauth/clients", `{"client_name":"Shared","grant_types":["client_credentials"],"scope":"read"}`)
	if r.Status != 201 {
		t.Fatalf("create on a: %d %s", r.Status, r.Body)
	}
	id, secret := r.Str("client_id"), r.Str("client_secret")

	// Made on a, seen by b's admin API and token endpoint.
	if s := adminJSON(t, b, "GET", "/oauth/clients/"+id, ""); s.Status != 200 || s.Str("client_name") != "Shared" {
		t.Fatalf("b does not see the client: %d %s", s.Status, s.Body)
	}
	tok := clientCredentials(t, b, id, secret)
	if tok.Status != 200 {
		t.Fatalf("token on b: %d %s", tok.Status, tok.Body)
	}
	access := tok.Str("access_token")
	if me := gt.Get(t, a.URL+"/oauth/me", access); me.Status != 200 {
		t.Fatalf("b's token on a: %d %s", me.Status, me.Body)
	}

	// Rotate on b: the old secret is refused on both, the new one works on
	// both.
	rot := adminJSON(t, b, "POST", "/oauth/clients/"+id+"/secret", "")
	newSecret := rot.Str("client_secret")
	if rot.Status != 200 || newSecret == "" {
		t.Fatalf("rotate on b: %d %s", rot.Status, rot.Body)
	}
	for _, g := range []*gt.Gateway{a, b} {
		poll.Until(t, propagation, "old secret refused on "+g.URL, func() bool { return clientCredentials(t, g, id, secret).Status == 401 })
		if r := clientCredentials(t, g, id, newSecret); r.Status != 200 {
			t.Fatalf("new secret on %s: %d %s", g.URL, r.Status, r.Body)
		}
	}

	// Delete on a: the client's token is refused on both.
	if d := adminJSON(t, a, "DELETE", "/oauth/clients/"+id, ""); d.Status != 204 {
		t.Fatalf("delete on a: %d %s", d.Status, d.Body)
	}
	for _, g := range []*gt.Gateway{a, b} {
		poll.Until(t, propagation, "deleted client's token refused on "+g.URL, func() bool { return gt.Get(t, g.URL+"/oauth/me", access).Status == 401 })
		if r := clientCredentials(t, g, id, newSecret); r.Status != 401 {
			t.Fatalf("deleted client got a token on %s: %d", g.URL, r.Status)
		}
	}
}

// propagation is how long a change on one instance may take to reach
// another: the store's one-second bound, with some slack.
const propagation = 2 * time.Second
