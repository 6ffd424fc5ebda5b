package integration

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
	"github.com/caddyoauth/gateway/internal/testredis"
)

// fileStore is the store line of the file-store gateways below.
const fileStore = "file {{.DataDir}}/tokens.db"

// removalConfig is a gateway on store whose users are the given "user
// NAME HASH" lines, with a client for the password and code grants.
func removalConfig(store, upstream string, users ...string) string {
	return gt.Config(`
oauth {
	store `+store+`
	`+strings.Join(users, "\n\t")+`
	client web {
		secret web-secret
		redirect_uri `+webCB+`
		grants authorization_code password refresh_token
		scopes read
		default_scope read
	}
}`, fmt.Sprintf(`
oauth_server
oauth_protect
reverse_proxy %s`, upstream))
}

// removalUsers returns the config lines of the users alice (password
// alice-pw, user ID u-alice) and bob (bob-pw, u-bob).
func removalUsers(t *testing.T) (alice, bob string) {
	return "user alice " + gt.BcryptHash(t, "alice-pw") + " u-alice",
		"user bob " + gt.BcryptHash(t, "bob-pw") + " u-bob"
}

// passwordTokens signs username in with the password grant.
func passwordTokens(t *testing.T, g *gt.Gateway, username, password string) (access, refresh string) {
	t.Helper()
	r := wantToken(t, gt.PostForm(t, g.URL+"/oauth/token", "web", "web-secret", url.Values{
		"grant_type": {"password"}, "username": {username}, "password": {password},
	}))
	return r.Str("access_token"), r.Str("refresh_token")
}

func refreshWith(t *testing.T, g *gt.Gateway, refresh string) *gt.Response {
	t.Helper()
	return gt.PostForm(t, g.URL+"/oauth/token", "web", "web-secret", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {refresh},
	})
}

// TestRemovedUserLosesAccessOnReload: a reload whose config no longer
// names a user ends that user's access tokens, refresh tokens, sign-in
// session and unredeemed authorization code, and leaves the other user's.
func TestRemovedUserLosesAccessOnReload(t *testing.T) {
	up := gt.StartUpstream(t)
	alice, bob := removalUsers(t)
	g := gt.Start(t, removalConfig(fileStore, up.Addr(), alice, bob))

	aliceAT, aliceRT := passwordTokens(t, g, "alice", "alice-pw")
	bobAT, bobRT := passwordTokens(t, g, "bob", "bob-pw")
	// Bob signs in at the authorization server and approves a code he
	// has not redeemed yet.
	b := newBrowser(t, g.URL)
	code := b.approve(webParams("s1"), "bob", "bob-pw").Query().Get("code")
	if code == "" {
		t.Fatal("no code for bob")
	}
	// Before the removal, bob's signed-in browser goes straight to consent.
	if loc := location(t, b.authorize(webParams("s2"))); !strings.HasPrefix(loc, "/oauth/consent") {
		t.Fatalf("bob's session before the removal: redirected to %q, want the consent step", loc)
	}

	if r := g.Reload(removalConfig(fileStore, up.Addr(), alice), false); r.Status != 200 {
		t.Fatalf("reload without bob: %d %s", r.Status, r.Body)
	}
	if !strings.Contains(g.Logs(), `"user_id":"u-bob"`) {
		t.Fatal("the revocation of the removed user was not logged")
	}

	if r := gt.Get(t, g.URL+"/api", bobAT); r.Status != 401 {
		t.Fatalf("bob's access token after his removal: %d", r.Status)
	}
	wantError(t, refreshWith(t, g, bobRT), 400, "invalid_grant")
	wantError(t, redeem(t, g, "web", "web-secret", url.Values{"code": {code}, "redirect_uri": {webCB}}), 400, "invalid_grant")
	if loc := location(t, b.authorize(webParams("s3"))); !strings.HasPrefix(loc, "/oauth/login") {
		t.Fatalf("bob's session after his removal: redirected to %q, want the sign-in page", loc)
	}

	if r := gt.Get(t, g.URL+"/api", aliceAT); r.Status != 200 || up.Last().Get("X-User-ID") != "u-alice" {
		t.Fatalf("alice's access token after bob's removal: %d", r.Status)
	}
	wantToken(t, refreshWith(t, g, aliceRT))
}

// TestRemovedUserLosesAccessAcrossRestart: a user removed from the config
// while the gateway was stopped loses their tokens at the next start; a
// user who comes back signs in afresh and keeps the new tokens.
func TestRemovedUserLosesAccessAcrossRestart(t *testing.T) {
	up := gt.StartUpstream(t)
	alice, bob := removalUsers(t)
	first := gt.Start(t, removalConfig(fileStore, up.Addr(), alice, bob))
	aliceAT, _ := passwordTokens(t, first, "alice", "alice-pw")
	bobAT, _ := passwordTokens(t, first, "bob", "bob-pw")
	first.Stop()

	second := gt.Start(t, removalConfig(fileStore, up.Addr(), bob), gt.WithDataDir(first.Params.DataDir))
	if r := gt.Get(t, second.URL+"/api", aliceAT); r.Status != 401 {
		t.Fatalf("alice's access token after her removal while stopped: %d", r.Status)
	}
	if r := gt.Get(t, second.URL+"/api", bobAT); r.Status != 200 {
		t.Fatalf("bob's access token: %d", r.Status)
	}
	second.Stop()

	// Alice is back: her new tokens work and survive the next start, as
	// she is no longer removed.
	third := gt.Start(t, removalConfig(fileStore, up.Addr(), alice, bob), gt.WithDataDir(first.Params.DataDir))
	newAT, _ := passwordTokens(t, third, "alice", "alice-pw")
	third.Restart()
	if r := gt.Get(t, third.URL+"/api", newAT); r.Status != 200 || up.Last().Get("X-User-ID") != "u-alice" {
		t.Fatalf("alice's new token after her return and a restart: %d", r.Status)
	}
	if r := gt.Get(t, third.URL+"/api", aliceAT); r.Status != 401 {
		t.Fatalf("alice's old token after her return: %d", r.Status)
	}
}

// usersFileGateway is a gateway whose users, alice and bob, come from a
// users_file, with a password-grant access token of each.
type usersFileGateway struct {
	up             *gt.Upstream
	g              *gt.Gateway
	cfg, file      string
	alice, bob     string // their lines of the file
	aliceAT, bobAT string
}

func startWithUsersFile(t *testing.T) usersFileGateway {
	t.Helper()
	u := usersFileGateway{
		up:    gt.StartUpstream(t),
		file:  filepath.Join(t.TempDir(), "users.txt"),
		alice: "alice:" + gt.BcryptHash(t, "alice-pw") + ":u-alice\n",
		bob:   "bob:" + gt.BcryptHash(t, "bob-pw") + ":u-bob\n",
	}
	if err := os.WriteFile(u.file, []byte(u.alice+u.bob), 0o600); err != nil {
		t.Fatal(err)
	}
	u.cfg = removalConfig(fileStore, u.up.Addr(), "users_file "+u.file)
	u.g = gt.Start(t, u.cfg)
	u.aliceAT, _ = passwordTokens(t, u.g, "alice", "alice-pw")
	u.bobAT, _ = passwordTokens(t, u.g, "bob", "bob-pw")
	return u
}

// TestUserRemovedFromUsersFile: a user taken out of the users_file loses
// their tokens at the forced reload that rereads the file.
func TestUserRemovedFromUsersFile(t *testing.T) {
	u := startWithUsersFile(t)
	g, cfg, file, alice, aliceAT, bobAT := u.g, u.cfg, u.file, u.alice, u.aliceAT, u.bobAT

	if err := os.WriteFile(file, []byte(alice), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := g.Reload(cfg, true); r.Status != 200 {
		t.Fatalf("forced reload: %d %s", r.Status, r.Body)
	}
	if r := gt.Get(t, g.URL+"/api", bobAT); r.Status != 401 {
		t.Fatalf("bob's access token after his removal from the users file: %d", r.Status)
	}
	if r := gt.Get(t, g.URL+"/api", aliceAT); r.Status != 200 {
		t.Fatalf("alice's access token: %d", r.Status)
	}
}

// TestRemovalRefusedWhileStoreCannotRevoke: a reload that removes a user
// while the store refuses writes (a Redis demoted to a read-only replica)
// is refused, naming why, and the previous config keeps serving; once the
// store takes writes again the same reload revokes the user.
func TestRemovalRefusedWhileStoreCannotRevoke(t *testing.T) {
	srv := testredis.Start(t)
	up := gt.StartUpstream(t)
	alice, bob := removalUsers(t)
	store := "redis " + storeURL(srv.URL())
	g := gt.Start(t, removalConfig(store, up.Addr(), alice, bob))
	aliceAT, _ := passwordTokens(t, g, "alice", "alice-pw")
	bobAT, _ := passwordTokens(t, g, "bob", "bob-pw")

	rc := redisClient(t, srv.Addr())
	// A replica of a master that does not exist keeps its data and
	// answers reads, but refuses every write with READONLY.
	mustDo(t, rc, rc.B().Replicaof().Host("127.0.0.1").Port(int64(gt.FreePort(t))).Build())
	withoutBob := removalConfig(store, up.Addr(), alice)
	r := g.Reload(withoutBob, false)
	if r.Status == 200 || !strings.Contains(string(r.Body), "revoking the users removed from the config") {
		t.Fatalf("reload without bob while the store refuses writes: %d %s, want it refused", r.Status, r.Body)
	}
	t.Logf("refused: %s", r.Body)
	if r := gt.Get(t, g.URL+"/api", bobAT); r.Status != 200 {
		t.Fatalf("bob's token under the previous config: %d", r.Status)
	}

	mustDo(t, rc, rc.B().Replicaof().No().One().Build())
	if r = g.Reload(withoutBob, false); r.Status != 200 {
		t.Fatalf("reload without bob with the store writable: %d %s", r.Status, r.Body)
	}
	if r := gt.Get(t, g.URL+"/api", bobAT); r.Status != 401 {
		t.Fatalf("bob's token after his removal: %d", r.Status)
	}
	if r := gt.Get(t, g.URL+"/api", aliceAT); r.Status != 200 {
		t.Fatalf("alice's token: %d", r.Status)
	}
}
