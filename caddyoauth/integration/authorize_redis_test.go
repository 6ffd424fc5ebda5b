package integration

import (
	"fmt"
	"net/url"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
	"github.com/caddyoauth/gateway/internal/testredis"
)

// TestAuthorizeOnRedis: sessions, pending requests, consents and codes go
// through store.Store, so the flow runs on Redis, and two gateways sharing
// it serve one person: signed in at one, remembered at the other.
func TestAuthorizeOnRedis(t *testing.T) {
	rds := testredis.Start(t)
	cfg := gt.Config(fmt.Sprintf(`
oauth {
	store redis {{index .Vars "redis"}}
	user alice %s u-alice
	%s
}`, gt.BcryptHash(t, "alice-pw"), authorizeClients), "oauth_server")
	vars := gt.WithVars(map[string]string{"redis": rds.URL()})
	g1 := gt.Start(t, cfg, vars)
	g2 := gt.Start(t, cfg, vars)

	b := newBrowser(t, g1.URL)
	verifier, challenge := pkce("redis")
	params := url.Values{"response_type": {"code"}, "client_id": {"spa"}, "state": {"r"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	u := b.approve(params, "alice", "alice-pw")
	// The code is redeemed at the other gateway.
	tok := redeem(t, g2, "spa", "", url.Values{"code": {u.Query().Get("code")}, "code_verifier": {verifier}})
	if tok.Status != 200 {
		t.Fatalf("redeeming at the second gateway: %d %s", tok.Status, tok.Body)
	}
	// The session cookie (host-only on 127.0.0.1, so sent to both ports)
	// and the remembered consent work at the second gateway.
	b2 := &browser{t: t, base: g2.URL, c: b.c}
	again := clientRedirect(t, b2.follow(b2.authorize(params)))
	if again.Query().Get("code") == "" {
		t.Fatalf("at the second gateway: %s", again)
	}
}
