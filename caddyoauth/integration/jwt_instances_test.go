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

// TestJWTAcrossInstances: two gateways on one Redis share the generated
// signing key (same JWKS, each accepts the other's tokens), and a JWT
// revoked on one is refused by the other within the store's one-second
// cache bound.
func TestJWTAcrossInstances(t *testing.T) {
	rs := testredis.Start(t)
	up := gt.StartUpstream(t)
	cfg := gt.Config(standardsOAuth(t, fmt.Sprintf("token_format jwt\n\tissuer https://auth.example.com\n\tstore redis %s", rs.URL())), standardsSite(up))
	cfg = replaceStoreMemory(cfg)
	a := gt.Start(t, cfg)
	b := gt.Start(t, cfg)

	ja, jb := gt.Get(t, a.URL+"/oauth/jwks", ""), gt.Get(t, b.URL+"/oauth/jwks", "")
	if ja.Status != 200 || string(ja.Body) != string(jb.Body) {
		t.Fatalf("JWKS differ:\n%s\n%s", ja.Body, jb.Body)
	}
	tok := gt.PostForm(t, a.URL+"/oauth/token", "app", "app-secret", url.Values{"grant_type": {"client_credentials"}}).Str("access_token")
	claims := verifyWithJWKS(t, tok, b.URL+"/oauth/jwks")
	if claims["iss"] != "https://auth.example.com" {
		t.Fatalf("iss = %v", claims["iss"])
	}
	if r := gt.Get(t, b.URL+"/api", tok); r.Status != 200 {
		t.Fatalf("instance b refuses a's token: %d", r.Status)
	}
	if r := gt.PostForm(t, a.URL+"/oauth/revoke", "app", "app-secret", url.Values{"token": {tok}}); r.Status != 200 {
		t.Fatalf("revoke: %d", r.Status)
	}
	poll.Until(t, 5*time.Second, "instance b refuses a JWT revoked on a", func() bool { return gt.Get(t, b.URL+"/api", tok).Status == 401 })
}
