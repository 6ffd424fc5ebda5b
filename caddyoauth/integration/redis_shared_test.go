package integration

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
	"github.com/caddyoauth/gateway/internal/poll"
	"github.com/caddyoauth/gateway/internal/testredis"
)

// revocationBound is how soon a revocation made through one gateway must
// be refused by every gateway sharing the store.
const revocationBound = time.Second

// TestRedisTwoGatewaysShareTokens: a token issued on A works on B; B
// validates it from its local cache (no Redis round trip after the first);
// and what B revokes (by rotation, by reuse of a rotated refresh token, by
// the revocation endpoint), A refuses within a second.
func TestRedisTwoGatewaysShareTokens(t *testing.T) {
	srv := testredis.Start(t)
	up := gt.StartUpstream(t)
	gws := redisGateways(t, 2, storeURL(srv.URL()), "0s", up)
	a, b := gws[0], gws[1]
	rc := redisClient(t, srv.Addr())

	access, refresh := passwordToken(t, a)
	r := gt.Get(t, b.URL+"/api", access)
	if r.Status != 200 {
		t.Fatalf("token of A on B: %d %s", r.Status, r.Body)
	}
	if got := up.Last().Get("X-User-Id"); got != aliceID {
		t.Fatalf("upstream X-User-ID via B = %q, want %s", got, aliceID)
	}

	// Local-speed validation: 20 calls on each gateway cost Redis at most
	// one GET (A's first lookup; B has the token cached already).
	mustDo(t, rc, rc.B().ConfigResetstat().Build())
	for range 20 {
		for _, g := range gws {
			if s := status(t, g, access); s != 200 {
				t.Fatalf("protected call on %s: %d", g.URL, s)
			}
		}
	}
	if n := commandCalls(t, rc, "get"); n > 1 {
		t.Fatalf("40 validations of one token cost %d GETs in Redis, want at most 1", n)
	}

	// Rotating the refresh token on B removes the access token issued with
	// it, which A has cached.
	rot := refreshOn(t, b, refresh)
	if rot.Status != 200 {
		t.Fatalf("refresh on B: %d %s", rot.Status, rot.Body)
	}
	done := time.Now()
	poll.Until(t, revocationBound-time.Since(done), "A refuses the access token B's rotation replaced", func() bool {
		return status(t, a, access) == 401
	})

	// The new access token, issued on B, is cached on A; the reuse of the
	// rotated refresh token on B revokes its family, and A refuses it.
	access2, refresh2 := rot.Str("access_token"), rot.Str("refresh_token")
	for range 3 {
		if s := status(t, a, access2); s != 200 {
			t.Fatalf("rotated access token on A: %d", s)
		}
	}
	reuse := refreshOn(t, b, refresh)
	if reuse.Status != 400 || reuse.Str("error") != "invalid_grant" {
		t.Fatalf("reuse of a rotated refresh token: %d %s", reuse.Status, reuse.Body)
	}
	done = time.Now()
	poll.Until(t, revocationBound-time.Since(done), "A refuses a token of the family B revoked", func() bool {
		return status(t, a, access2) == 401
	})
	if s := status(t, b, access2); s != 401 {
		t.Fatalf("revoked access token on B: %d", s)
	}
	if r := refreshOn(t, a, refresh2); r.Status != 400 || r.Str("error") != "invalid_grant" {
		t.Fatalf("refresh token of the revoked family on A: %d %s", r.Status, r.Body)
	}

	// The revocation endpoint (RFC 7009) on B: revoking a refresh token
	// ends the access token issued with it, which A has cached.
	access3, refresh3 := passwordToken(t, a)
	if s := status(t, a, access3); s != 200 {
		t.Fatalf("new access token on A: %d", s)
	}
	rv := gt.PostForm(t, b.URL+"/oauth/revoke", "app", "app-secret", url.Values{"token": {refresh3}, "token_type_hint": {"refresh_token"}})
	if rv.Status != 200 {
		t.Fatalf("revoke on B: %d %s", rv.Status, rv.Body)
	}
	done = time.Now()
	poll.Until(t, revocationBound-time.Since(done), "A refuses the access token of a refresh token revoked on B", func() bool {
		return status(t, a, access3) == 401
	})
	if r := refreshOn(t, a, refresh3); r.Status != 400 {
		t.Fatalf("revoked refresh token on A: %d %s", r.Status, r.Body)
	}
}

// TestRedisRefreshRaceAcrossGateways presents one refresh token to A and
// B at once. With refresh_token_grace 0 exactly one request rotates it and
// gets new tokens; the other is a reuse of a rotated token, answered
// invalid_grant, and revokes the whole family, the winner's new tokens
// included (RFC 9700 §4.14.2). With a grace period both succeed by design:
// two workers of one integration may refresh at once.
func TestRedisRefreshRaceAcrossGateways(t *testing.T) {
	srv := testredis.Start(t)
	up := gt.StartUpstream(t)

	race := func(a, b *gt.Gateway, refresh string) [2]*gt.Response {
		var out [2]*gt.Response
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, g := range []*gt.Gateway{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				out[i] = refreshOn(t, g, refresh)
			}()
		}
		close(start)
		wg.Wait()
		return out
	}

	t.Run("NoGrace", func(t *testing.T) {
		gws := redisGateways(t, 2, storeURL(srv.URL()), "0s", up)
		a, b := gws[0], gws[1]
		for round := range 10 {
			_, refresh := passwordToken(t, a)
			rs := race(a, b, refresh)
			var winner *gt.Response
			for _, r := range rs {
				switch {
				case r.Status == 200 && winner == nil:
					winner = r
				case r.Status == 400 && r.Str("error") == "invalid_grant":
				default:
					t.Fatalf("round %d: statuses %d %s and %d %s, want one 200 and one invalid_grant",
						round, rs[0].Status, rs[0].Body, rs[1].Status, rs[1].Body)
				}
			}
			if winner == nil {
				t.Fatalf("round %d: no winner: %s / %s", round, rs[0].Body, rs[1].Body)
			}
			done := time.Now()
			for _, g := range gws {
				poll.Until(t, revocationBound-time.Since(done), "the winner's access token refused after the reuse", func() bool {
					return status(t, g, winner.Str("access_token")) == 401
				})
			}
			if r := refreshOn(t, b, winner.Str("refresh_token")); r.Status != 400 {
				t.Fatalf("round %d: the winner's refresh token after the reuse: %d %s", round, r.Status, r.Body)
			}
		}
	})
	t.Run("WithGrace", func(t *testing.T) {
		gws := redisGateways(t, 2, storeURL(srv.URL()), "1m", up)
		a, b := gws[0], gws[1]
		for round := range 5 {
			_, refresh := passwordToken(t, a)
			rs := race(a, b, refresh)
			for i, r := range rs {
				if r.Status != 200 {
					t.Fatalf("round %d: request %d: %d %s, want 200 within the grace period", round, i, r.Status, r.Body)
				}
				for _, g := range gws {
					if s := status(t, g, r.Str("access_token")); s != 200 {
						t.Fatalf("round %d: access token %d on %s: %d", round, i, g.URL, s)
					}
				}
			}
		}
	})
}

// TestRedisKeysAreDigestsWithExpiry issues tokens of every grant the
// gateway serves without a browser (client_credentials, password,
// refresh_token with rotation, a reuse revoking a family) and registers
// dynamic clients over the admin API (one used, one deleted), then scans
// Redis: every key has the prefix, no key or value holds a token in plain,
// and every key expires within the lifetime of what it holds.
// TestRedisCodeFlowKeys does the same for the authorization code flow.
func TestRedisKeysAreDigestsWithExpiry(t *testing.T) {
	srv := testredis.Start(t)
	up := gt.StartUpstream(t)
	g := redisGateways(t, 1, storeURL(srv.URL()), "0s", up)[0]
	rc := redisClient(t, srv.Addr())

	var secrets []string
	cc := gt.PostForm(t, g.URL+"/oauth/token", "app", "app-secret", url.Values{"grant_type": {"client_credentials"}})
	if cc.Status != 200 {
		t.Fatalf("client_credentials: %d %s", cc.Status, cc.Body)
	}
	secrets = append(secrets, cc.Str("access_token"), "app-secret", alicePassword)
	access, refresh := passwordToken(t, g)
	secrets = append(secrets, access, refresh)
	rot := refreshOn(t, g, refresh)
	if rot.Status != 200 {
		t.Fatalf("refresh: %d %s", rot.Status, rot.Body)
	}
	secrets = append(secrets, rot.Str("access_token"), rot.Str("refresh_token"))
	// A second family, revoked by reuse.
	_, refresh3 := passwordToken(t, g)
	rot3 := refreshOn(t, g, refresh3)
	if rot3.Status != 200 {
		t.Fatalf("refresh: %d %s", rot3.Status, rot3.Body)
	}
	if r := refreshOn(t, g, refresh3); r.Status != 400 {
		t.Fatalf("reuse: %d %s", r.Status, r.Body)
	}
	secrets = append(secrets, refresh3, rot3.Str("access_token"), rot3.Str("refresh_token"))
	// A dynamic client with an owner, its token, and a deleted one.
	dyn := adminJSON(t, g, "POST", "/oauth/clients", `{"client_name":"Scan","grant_types":["client_credentials"],"scope":"read","user_id":"owner-1"}`)
	if dyn.Status != 201 {
		t.Fatalf("dynamic client: %d %s", dyn.Status, dyn.Body)
	}
	dtok := clientCredentials(t, g, dyn.Str("client_id"), dyn.Str("client_secret"))
	if dtok.Status != 200 {
		t.Fatalf("dynamic client's token: %d %s", dtok.Status, dtok.Body)
	}
	gone := adminJSON(t, g, "POST", "/oauth/clients", `{"client_name":"Gone","grant_types":["client_credentials"],"scope":"read"}`)
	if d := adminJSON(t, g, "DELETE", "/oauth/clients/"+gone.Str("client_id"), ""); d.Status != 204 {
		t.Fatalf("delete: %d %s", d.Status, d.Body)
	}
	secrets = append(secrets, dyn.Str("client_secret"), dtok.Str("access_token"), gone.Str("client_secret"))
	for _, tok := range []string{cc.Str("access_token"), rot.Str("access_token"), dtok.Str("access_token")} {
		if s := status(t, g, tok); s != 200 {
			t.Fatalf("protected call: %d", s)
		}
	}

	kinds := scanRedisKeys(t, rc, secrets)
	// Live: the client_credentials token, the first family's rotated pair
	// and its rotated-away refresh token (kept for reuse detection).
	for _, kind := range []string{"k:at:", "k:rt:", "s:user:", "k:client:", "k:clientgone:", "s:clients", "s:owner:"} {
		if kinds[kind] == 0 {
			t.Errorf("no %s key in Redis; kinds seen: %v", kind, kinds)
		}
	}
	t.Logf("keys by kind: %v", kinds)
}

// scanRedisKeys checks every key of the server rc talks to with
// checkRedisKey and counts them by kind.
func scanRedisKeys(t *testing.T, rc rueidis.Client, secrets []string) map[string]int {
	t.Helper()
	kinds := map[string]int{}
	var cursor uint64
	for {
		e, err := rc.Do(context.Background(), rc.B().Scan().Cursor(cursor).Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range e.Elements {
			kinds[checkRedisKey(t, rc, key, secrets)]++
		}
		if cursor = e.Cursor; cursor == 0 {
			return kinds
		}
	}
}

// TestRedisCodeFlowKeys runs the authorization code flow through a gateway
// on Redis (sign-in, consent, a code redeemed, a code left, a request left
// at the sign-in screen) and scans Redis as TestRedisKeysAreDigestsWithExpiry
// does: sessions, pending requests, consents and codes included.
func TestRedisCodeFlowKeys(t *testing.T) {
	srv := testredis.Start(t)
	g := gt.Start(t, gt.Config(fmt.Sprintf(`
oauth {
	store %s
	access_token_ttl %s
	refresh_token_ttl %s
	code_ttl %s
	session_ttl %s
	user alice %s u-alice
	%s
}`, "redis "+storeURL(srv.URL()), redisAccessTTL, redisRefreshTTL, redisCodeTTL, redisSessionTTL,
		gt.BcryptHash(t, "alice-pw"), authorizeClients), "oauth_server"))
	rc := redisClient(t, srv.Addr())

	b := newBrowser(t, g.URL)
	code1 := b.approve(webParams("s1"), "alice", "alice-pw").Query().Get("code")
	tok := redeem(t, g, "web", "web-secret", url.Values{"code": {code1}, "redirect_uri": {webCB}})
	if tok.Status != 200 {
		t.Fatalf("redeem: %d %s", tok.Status, tok.Body)
	}
	code2 := b.approve(webParams("s2"), "alice", "alice-pw").Query().Get("code") // left unredeemed
	other := newBrowser(t, g.URL)
	page := other.follow(other.authorize(webParams("s3"))) // left at the sign-in screen
	pending := hidden(t, page, "request_id")

	secrets := []string{code1, code2, tok.Str("access_token"), tok.Str("refresh_token"),
		sessionCookie(t, b), pending, "web-secret", "alice-pw"}
	kinds := scanRedisKeys(t, rc, secrets)
	for _, kind := range []string{"k:sess:", "k:authreq:", "k:consent:", "k:code:", "k:usedcode:", "k:at:", "k:rt:", "s:user:"} {
		if kinds[kind] == 0 {
			t.Errorf("no %s key in Redis; kinds seen: %v", kind, kinds)
		}
	}
	t.Logf("keys by kind: %v", kinds)
}

// redisKeyLifetimes bounds the expiry of each kind of key: what it holds
// may live no longer. A kind missing here fails the test, so a new kind of
// record gets its lifetime checked.
var redisKeyLifetimes = map[string]time.Duration{
	"k:at:":       redisAccessTTL,
	"k:rt:":       redisRefreshTTL,
	"k:code:":     redisCodeTTL,
	"k:usedcode:": redisRefreshTTL, // remembers a redeemed code while its tokens may live
	"k:famrev:":   redisRefreshTTL, // tombstone of a revoked family, as long as a code replay may come
	"s:fam:":      redisRefreshTTL, // sets live as long as their longest member; a family set indexes a grant without a user
	"s:user:":     redisRefreshTTL,
	"k:sess:":     redisSessionTTL,
	"k:authreq:":  15 * time.Minute, // a pending authorization request
	"k:consent:":  0,                // until revoked: no expiry
	"s:consents:": 0,                // a user's consents, to revoke them together
	// Dynamic clients live until deleted; a deleted one's id stays taken.
	"k:client:":     0,
	"k:clientgone:": 0,
	"s:clients":     0,
	"s:owner:":      0,
	// Abuse counters: a rate-limit window counter lives two windows, and
	// the longest default window is the sign-in limit's (burst 20 at 10/m:
	// two minutes); failed sign-in counters and locks live the lockout
	// window or lock period.
	"k:rl:": 4 * time.Minute,
	"k:lo:": 15 * time.Minute,
	// The users of the last start's config, rewritten at every start; a
	// revoked user's mark refuses their older sessions and codes.
	"k:roster:":  0,
	"k:userrev:": redisSessionTTL + time.Minute,
	// A client acting as a revoked user stays suspended until changed.
	"k:ccoff:": 0,
}

// digestKinds are keyed by the SHA-256 digest of a token or code.
var digestKinds = map[string]bool{"k:at:": true, "k:rt:": true, "k:code:": true, "k:usedcode:": true,
	"k:sess:": true, "k:authreq:": true, "k:consent:": true}

var sha256Key = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// checkRedisKey checks one key found by SCAN and returns its kind: the
// part after the prefix and before the digest or id.
func checkRedisKey(t *testing.T, rc rueidis.Client, key string, secrets []string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(key, redisPrefix)
	if !ok {
		t.Errorf("key %q lacks the prefix %q", key, redisPrefix)
		return "?"
	}
	parts := strings.SplitN(rest, ":", 3)
	var kind, id string
	switch len(parts) {
	case 3:
		kind, id = parts[0]+":"+parts[1]+":", parts[2]
	case 2: // a single key of its kind, such as the set of all clients
		kind = rest
	default:
		t.Errorf("key %q has no kind", key)
		return "?"
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(key, s) {
			t.Errorf("key %q holds a token or secret in plain", key)
		}
	}
	if digestKinds[kind] && !sha256Key.MatchString(id) {
		t.Errorf("key %q is not keyed by a SHA-256 digest", key)
	}
	ctx := context.Background()
	var values []string
	typ, _ := mustDo(t, rc, rc.B().Type().Key(key).Build()).ToString()
	switch typ {
	case "string":
		v, _ := mustDo(t, rc, rc.B().Get().Key(key).Build()).ToString()
		values = []string{v}
	case "zset": // a store set: members scored by their expiry
		values, _ = rc.Do(ctx, rc.B().Zrange().Key(key).Min("0").Max("-1").Build()).AsStrSlice()
	default:
		t.Errorf("key %q has type %q", key, typ)
	}
	for _, v := range values {
		for _, s := range secrets {
			if s != "" && strings.Contains(v, s) {
				t.Errorf("value of %q holds a token or secret in plain", key)
			}
		}
	}
	life, known := redisKeyLifetimes[kind]
	if !known {
		t.Errorf("key %q is of kind %q, whose lifetime this test does not know", key, kind)
		return kind
	}
	pttl, _ := mustDo(t, rc, rc.B().Pttl().Key(key).Build()).AsInt64()
	if life == 0 {
		if pttl != -1 {
			t.Errorf("key %q (%s) has PTTL %dms, want none: it lives until revoked", key, typ, pttl)
		}
		return kind
	}
	if pttl <= 0 || time.Duration(pttl)*time.Millisecond > life {
		t.Errorf("key %q (%s) has PTTL %dms, want expiry within %v", key, typ, pttl, life)
	}
	return kind
}
