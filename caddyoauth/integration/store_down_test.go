package integration

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
	"github.com/caddyoauth/gateway/internal/poll"
	"github.com/caddyoauth/gateway/internal/testredis"
)

// TestStoreDown: when the token store cannot be reached, nothing passes
// oauth_protect (503) and the token endpoint answers temporarily_unavailable
// (503), never a 500 or a pass; both recover with the store.
func TestStoreDown(t *testing.T) {
	rs := testredis.Start(t)
	up := gt.StartUpstream(t)
	g := gt.Start(t, gt.Config(`
oauth {
	store redis {{index .Vars "redis"}}
	client svc {
		secret svc-secret
		grants client_credentials
		scopes read
		user service-7
	}
}`, fmt.Sprintf(`
oauth_server
oauth_protect
reverse_proxy %s`, up.Addr())), gt.WithVars(map[string]string{"redis": rs.URL()}))
	cc := url.Values{"grant_type": {"client_credentials"}}
	tok := wantToken(t, gt.PostForm(t, g.URL+"/oauth/token", "svc", "svc-secret", cc)).Str("access_token")
	unseen := wantToken(t, gt.PostForm(t, g.URL+"/oauth/token", "svc", "svc-secret", cc)).Str("access_token")
	if r := gt.Get(t, g.URL+"/api", tok); r.Status != 200 {
		t.Fatalf("with the store up: %d", r.Status)
	}

	rs.Stop()
	n := up.Count()
	// A token the gateway never looked up cannot come from its cache: the
	// store must answer, and it cannot.
	if r := gt.Get(t, g.URL+"/api", unseen); r.Status != 503 {
		t.Fatalf("protected call with the store down: %d %s", r.Status, r.Body)
	}
	if r := gt.Get(t, g.URL+"/api", "never-issued"); r.Status != 503 {
		t.Fatalf("unknown token with the store down: %d", r.Status)
	}
	if up.Count() != n {
		t.Fatal("a request passed while the store was down")
	}
	// A token validated a moment ago may still be answered from the local
	// cache (the store contract allows it) until the client notices the
	// lost connection; then it gets 503 too.
	poll.Until(t, 5*time.Second, "a cached token refused once the store is down", func() bool {
		r := gt.Get(t, g.URL+"/api", tok)
		if r.Status != 503 && r.Status != 200 {
			t.Fatalf("cached token with the store down: %d", r.Status)
		}
		return r.Status == 503
	})
	wantOAuthError(t, gt.PostForm(t, g.URL+"/oauth/token", "svc", "svc-secret", cc), 503, "temporarily_unavailable")
	if r := me(t, g, tok); r.Status != 503 {
		t.Fatalf("me with the store down: %d", r.Status)
	}

	rs.Restart() // empty: Redis persisted nothing
	// The client reconnects by itself; poll until it has.
	var r *gt.Response
	poll.Until(t, 10*time.Second, "the token endpoint serves once the store is back", func() bool {
		r = gt.PostForm(t, g.URL+"/oauth/token", "svc", "svc-secret", cc)
		if r.Status != 200 && r.Status != 503 {
			t.Fatalf("token endpoint after the store came back: %d %s", r.Status, r.Body)
		}
		return r.Status == 200
	})
	if p := gt.Get(t, g.URL+"/api", r.Str("access_token")); p.Status != 200 {
		t.Fatalf("protected call after the store came back: %d", p.Status)
	}
}
