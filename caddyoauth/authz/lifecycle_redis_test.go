package authz

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/caddyoauth/gateway/caddyoauth/store/redisstore"
	"github.com/caddyoauth/gateway/internal/testredis"
)

// TestRefreshReuseOnRedis runs the reuse race on real Redis servers,
// standalone and a three-master cluster, where the refresh record, the
// user's set and the family's revocation mark sit on different nodes:
// of racing refreshes with no grace exactly one gets tokens, and none of
// the family's tokens survives. It checks through introspection, which
// reads the store authoritatively (Validate may use the one-second cache).
func TestRefreshReuseOnRedis(t *testing.T) {
	onRedis(t, func(t *testing.T, st *redisstore.Store) {
		cfg := Config{AccessTokenTTL: time.Hour, RefreshTokenTTL: time.Hour, CodeTTL: time.Minute, RefreshRotation: true}
		s := New(cfg, st, testClients(), testUsers(t), nil)
		for round := range 5 {
			access, rt0 := aliceTokens(t, s)
			results := make([]*reply, 8)
			var wg sync.WaitGroup
			for i := range results {
				wg.Add(1)
				go func() { defer wg.Done(); results[i] = refreshGrant(t, s, rt0, "", as("app")) }()
			}
			wg.Wait()
			wins := 0
			for _, r := range results {
				if r.status == 200 {
					wins++
					access = r.str("access_token")
				} else if r.str("error") != "invalid_grant" {
					t.Fatalf("round %d: %d %s", round, r.status, r.body)
				}
			}
			if wins != 1 {
				t.Fatalf("round %d: %d winners, want 1", round, wins)
			}
			in, err := s.Introspect(context.Background(), testClients()["rs"], access, "")
			if err != nil || in.Active {
				t.Fatalf("round %d: the winner's token survived the reuse: %+v %v", round, in, err)
			}
		}
	})
}

// TestReuseAfterSuccessorUsedOnRedis: on real Redis, standalone and a
// cluster (a refresh record and its parent on different nodes), R0
// presented again within the grace period after its successor R1 was
// used revokes the family; checked through introspection, which reads the
// store authoritatively.
func TestReuseAfterSuccessorUsedOnRedis(t *testing.T) {
	onRedis(t, func(t *testing.T, st *redisstore.Store) {
		cfg := Config{AccessTokenTTL: time.Hour, RefreshTokenTTL: time.Hour, CodeTTL: time.Minute,
			RefreshRotation: true, RefreshGrace: time.Hour}
		s := New(cfg, st, testClients(), testUsers(t), nil)
		_, rt0 := aliceTokens(t, s)
		r1 := refreshGrant(t, s, rt0, "", as("app"))
		if r1.status != 200 {
			t.Fatalf("refresh of R0: %d %s", r1.status, r1.body)
		}
		r2 := refreshGrant(t, s, r1.str("refresh_token"), "", as("app"))
		if r2.status != 200 {
			t.Fatalf("refresh of R1: %d %s", r2.status, r2.body)
		}
		refreshGrant(t, s, rt0, "", as("app")).wantError(t, 400, "invalid_grant")
		in, err := s.Introspect(context.Background(), testClients()["rs"], r2.str("access_token"), "")
		if err != nil || in.Active {
			t.Fatalf("the newest access token survived the reuse: %+v %v", in, err)
		}
		refreshGrant(t, s, r2.str("refresh_token"), "", as("app")).wantError(t, 400, "invalid_grant")
	})
}

// onRedis runs test on a Redis store over a standalone server and over a
// three-master cluster, each in a subtest.
func onRedis(t *testing.T, test func(t *testing.T, st *redisstore.Store)) {
	standalone := testredis.Start(t)
	cluster := testredis.StartCluster(t)
	for name, addrs := range map[string][]string{"standalone": {standalone.Addr()}, "cluster": cluster.Addrs()} {
		t.Run(name, func(t *testing.T) {
			st, err := redisstore.Open(rueidis.ClientOption{InitAddress: addrs}, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			test(t, st)
		})
	}
}
