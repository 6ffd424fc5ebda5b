package integration

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
	"github.com/caddyoauth/gateway/internal/poll"
	"github.com/caddyoauth/gateway/internal/testredis"
)

// TestRedisClusterGateways runs two gateways on `store redis { cluster a b
// c }` against a three-master Redis Cluster on loopback ports: tokens
// issued on one work on the other, a family revoked on one (its keys spread
// over several slots and nodes) is refused on the other within a second,
// and every key on every node has the prefix, a digest and an expiry.
func TestRedisClusterGateways(t *testing.T) {
	c := testredis.StartCluster(t)
	up := gt.StartUpstream(t)
	storeArgs := "{\n\t\tcluster " + strings.Join(c.Addrs(), " ") + "\n\t\tkey_prefix " + redisPrefix + "\n\t}"
	gws := redisGateways(t, 2, storeArgs, "0s", up)
	a, b := gws[0], gws[1]

	cc := gt.PostForm(t, a.URL+"/oauth/token", "app", "app-secret", url.Values{"grant_type": {"client_credentials"}})
	if cc.Status != 200 {
		t.Fatalf("client_credentials on the cluster: %d %s", cc.Status, cc.Body)
	}
	if s := status(t, b, cc.Str("access_token")); s != 200 {
		t.Fatalf("client_credentials token of A on B: %d", s)
	}
	if got := up.Last().Get("X-User-Id"); got != "svc-user" {
		t.Fatalf("upstream X-User-ID = %q, want svc-user", got)
	}

	access, refresh := passwordToken(t, a)
	if s := status(t, b, access); s != 200 {
		t.Fatalf("password token of A on B: %d", s)
	}
	rot := refreshOn(t, b, refresh)
	if rot.Status != 200 {
		t.Fatalf("refresh on B: %d %s", rot.Status, rot.Body)
	}
	if s := status(t, a, rot.Str("access_token")); s != 200 {
		t.Fatalf("rotated token on A: %d", s)
	}
	if r := refreshOn(t, b, refresh); r.Status != 400 || r.Str("error") != "invalid_grant" {
		t.Fatalf("reuse on B: %d %s", r.Status, r.Body)
	}
	done := time.Now()
	poll.Until(t, revocationBound-time.Since(done), "A refuses the family B revoked", func() bool {
		return status(t, a, rot.Str("access_token")) == 401
	})
	if s := status(t, a, access); s != 401 {
		t.Fatalf("access token replaced by the rotation, on A: %d", s)
	}

	secrets := []string{cc.Str("access_token"), access, refresh, rot.Str("access_token"), rot.Str("refresh_token"), "app-secret", alicePassword}
	kinds := map[string]int{}
	for _, addr := range c.Addrs() {
		node, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true, ForceSingleClient: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(node.Close)
		n := scanRedisKeys(t, node, secrets)
		for k, v := range n {
			kinds[k] += v
		}
	}
	if kinds["k:at:"] == 0 || kinds["s:user:"] == 0 {
		t.Fatalf("keys by kind on the cluster: %v", kinds)
	}
	t.Logf("keys by kind on the cluster: %v", kinds)
}
