package integration

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// Helpers of the Redis store tests: gateways whose oauth block keeps its
// tokens in Redis, and a plain Redis client to look behind them.

const (
	redisPrefix     = "gw:"
	redisAccessTTL  = time.Hour
	redisRefreshTTL = 2 * time.Hour
	redisCodeTTL    = time.Minute
	redisSessionTTL = 30 * time.Minute
	alicePassword   = "alice-pw"
	aliceID         = "user-alice"
)

// redisOAuth is an oauth block on `store redis <storeArgs>`, with one
// confidential client allowed every grant but authorization_code (which
// needs the authorize endpoint) and the user alice. Rate limits are off:
// these tests fire bursts of token requests from one address, and the
// limits have tests of their own (limits_test.go).
func redisOAuth(t testing.TB, storeArgs, grace string) string {
	return fmt.Sprintf(`
oauth {
	store redis %s
	rate_limit off
	access_token_ttl %s
	refresh_token_ttl %s
	code_ttl %s
	refresh_token_grace %s
	client app {
		secret app-secret
		grants client_credentials password refresh_token
		scopes read write
		user svc-user
	}
	user alice %s %s
}`, storeArgs, redisAccessTTL, redisRefreshTTL, redisCodeTTL, grace, gt.BcryptHash(t, alicePassword), aliceID)
}

// redisSite protects everything else and proxies it to up.
func redisSite(up *gt.Upstream) string {
	return fmt.Sprintf(`
oauth_server
oauth_protect
reverse_proxy %s`, up.Addr())
}

// redisGateways starts n gateways on one store.
func redisGateways(t *testing.T, n int, storeArgs, grace string, up *gt.Upstream) []*gt.Gateway {
	t.Helper()
	cfg := gt.Config(redisOAuth(t, storeArgs, grace), redisSite(up))
	var out []*gt.Gateway
	for range n {
		out = append(out, gt.Start(t, cfg))
	}
	return out
}

// storeURL is the `store redis` arguments for a single server.
func storeURL(redisURL string) string {
	return redisURL + " {\n\t\tkey_prefix " + redisPrefix + "\n\t}"
}

func passwordToken(t testing.TB, g *gt.Gateway) (access, refresh string) {
	t.Helper()
	r := gt.PostForm(t, g.URL+"/oauth/token", "app", "app-secret", url.Values{
		"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}, "scope": {"read"}})
	if r.Status != 200 || r.Str("access_token") == "" || r.Str("refresh_token") == "" {
		t.Fatalf("password grant on %s: %d %s", g.URL, r.Status, r.Body)
	}
	return r.Str("access_token"), r.Str("refresh_token")
}

func refreshOn(t testing.TB, g *gt.Gateway, refresh string) *gt.Response {
	t.Helper()
	return gt.PostForm(t, g.URL+"/oauth/token", "app", "app-secret", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
}

// status is the status of a protected call with token.
func status(t testing.TB, g *gt.Gateway, token string) int {
	t.Helper()
	return gt.Get(t, g.URL+"/api", token).Status
}

// redisClient is a plain client (no client-side cache) for inspecting the
// server or cluster at addrs.
func redisClient(t testing.TB, addrs ...string) rueidis.Client {
	t.Helper()
	// One connection, so the test itself never shows as a new client.
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, DisableCache: true, PipelineMultiplex: -1})
	if err != nil {
		t.Fatalf("redis client: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// commandCalls reads how often Redis ran command since the last CONFIG
// RESETSTAT, from INFO commandstats.
func commandCalls(t testing.TB, c rueidis.Client, command string) int {
	t.Helper()
	info, err := c.Do(context.Background(), c.B().Info().Section("commandstats").Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^cmdstat_` + command + `:calls=(\d+),`).FindStringSubmatch(info)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// infoField reads a numeric field of INFO.
func infoField(t testing.TB, c rueidis.Client, section, field string) int {
	t.Helper()
	var info string
	var err error
	// A connection broken by a restarted server fails once; the next
	// attempt redials.
	for range 3 {
		if info, err = c.Do(context.Background(), c.B().Info().Section(section).Build()).ToString(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("INFO %s: %q", field, line)
			}
			return n
		}
	}
	t.Fatalf("INFO %s has no %s", section, field)
	return 0
}

func mustDo(t testing.TB, c rueidis.Client, cmd rueidis.Completed) rueidis.RedisResult {
	t.Helper()
	r := c.Do(context.Background(), cmd)
	if err := r.Error(); err != nil && !rueidis.IsRedisNil(err) {
		t.Fatal(err)
	}
	return r
}
