package integration

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
	"github.com/caddyoauth/gateway/internal/poll"
)

// driftConfig is a gateway on the file store with the users alice (u-alice)
// and bob (u-bob) as "user" lines and the given client blocks. /config-id
// answers a digest of the oauth block, so a test can tell when a reload
// has taken over (see reload).
func driftConfig(t *testing.T, upstream string, users []string, clientBlocks ...string) string {
	t.Helper()
	block := `
oauth {
	store ` + fileStore + `
	` + strings.Join(users, "\n\t") + `
	` + strings.Join(clientBlocks, "\n\t") + `
}`
	return gt.Config(block, fmt.Sprintf(`
oauth_server
oauth_protect /api*
respond /config-id "%x"
reverse_proxy %s`, sha256.Sum256([]byte(block)), upstream))
}

func webClient(grants, scopes string) string {
	return `client web {
		secret web-secret
		grants ` + grants + `
		scopes ` + scopes + `
	}`
}

// scopeAtUpstream sends access to the protected route and returns the
// X-OAuth-Scope the upstream received, failing unless the call passed.
func scopeAtUpstream(t *testing.T, g *gt.Gateway, up *gt.Upstream, access string) string {
	t.Helper()
	before := up.Count()
	if r := gt.Get(t, g.URL+"/api", access); r.Status != 200 {
		t.Fatalf("protected call: %d %s", r.Status, r.Body)
	}
	if up.Count() != before+1 {
		t.Fatal("the call did not reach the upstream")
	}
	return up.Last().Get("X-Oauth-Scope")
}

var configID = regexp.MustCompile(`respond /config-id "([0-9a-f]+)"`)

// reload loads cfg, made by driftConfig, into g, and returns once new
// connections reach the new config: Caddy closes the old config's
// listener and connections only after the load answered, and a request
// racing that close fails with EOF.
func reload(t *testing.T, g *gt.Gateway, cfg string) {
	t.Helper()
	if r := g.Reload(cfg, false); r.Status != 200 {
		t.Fatalf("reload: %d %s", r.Status, r.Body)
	}
	want := configID.FindStringSubmatch(cfg)[1]
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	seen := 0
	poll.Until(t, 2*time.Second, "the reloaded config serving every new connection", func() bool {
		resp, err := fresh.Get(g.URL + "/config-id")
		if err != nil {
			seen = 0
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != want {
			seen = 0
			return false
		}
		seen++
		return seen == 3
	})
	gt.HTTPClient.CloseIdleConnections()
}

// TestDriftScopeNarrowedByReload: a reload that takes a scope from a client
// reaches the tokens it already holds: the upstream's X-OAuth-Scope,
// introspection and refreshes lose the scope at once. A reload that takes
// a grant type away ends what that grant gave: without refresh_token the
// refresh is refused with unauthorized_client; without password, the
// tokens of a password grant stop working and their refresh is
// invalid_grant.
func TestDriftScopeNarrowedByReload(t *testing.T) {
	up := gt.StartUpstream(t)
	alice, _ := removalUsers(t)
	users := []string{alice}
	g := gt.Start(t, driftConfig(t, up.Addr(), users, webClient("password refresh_token", "read write")))

	tok := wantToken(t, gt.PostForm(t, g.URL+"/oauth/token", "web", "web-secret", url.Values{
		"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-pw"}, "scope": {"read write"},
	}))
	access, refresh := tok.Str("access_token"), tok.Str("refresh_token")
	if got := scopeAtUpstream(t, g, up, access); got != "read write" {
		t.Fatalf("X-OAuth-Scope before the reload = %q, want read write", got)
	}

	reload(t, g, driftConfig(t, up.Addr(), users, webClient("password refresh_token", "read")))
	if got := scopeAtUpstream(t, g, up, access); got != "read" {
		t.Fatalf("X-OAuth-Scope after narrowing the client to read = %q, want read", got)
	}
	if me := gt.Get(t, g.URL+"/oauth/me", access); me.Status != 200 || me.Str("scope") != "read" {
		t.Fatalf("/oauth/me after narrowing: %d %s", me.Status, me.Body)
	}
	for _, tk := range []string{access, refresh} {
		in := gt.PostForm(t, g.URL+"/oauth/introspect", "web", "web-secret", url.Values{"token": {tk}})
		if in.Status != 200 || in.JSON["active"] != true || in.Str("scope") != "read" {
			t.Fatalf("introspection after narrowing: %d %s", in.Status, in.Body)
		}
	}
	wide := refreshWith(t, g, refresh)
	if wide.Status != 200 || wide.Str("scope") != "read" {
		t.Fatalf("refresh after narrowing: %d %s, want scope read", wide.Status, wide.Body)
	}
	access, refresh = wide.Str("access_token"), wide.Str("refresh_token")
	if got := scopeAtUpstream(t, g, up, access); got != "read" {
		t.Fatalf("X-OAuth-Scope of a refreshed token = %q, want read", got)
	}
	asked := gt.PostForm(t, g.URL+"/oauth/token", "web", "web-secret", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "scope": {"read write"},
	})
	if asked.Status != 400 || asked.Str("error") != "invalid_scope" {
		t.Fatalf("refresh asking for the removed scope: %d %s, want invalid_scope", asked.Status, asked.Body)
	}

	// refresh_token taken away: the refresh token no longer works.
	reload(t, g, driftConfig(t, up.Addr(), users, webClient("password", "read")))
	if r := refreshWith(t, g, refresh); r.Status != 400 || r.Str("error") != "unauthorized_client" {
		t.Fatalf("refresh without the refresh_token grant: %d %s", r.Status, r.Body)
	}
	// password taken away: what the password grant gave ends.
	reload(t, g, driftConfig(t, up.Addr(), users, webClient("refresh_token", "read")))
	if r := gt.Get(t, g.URL+"/api", access); r.Status != 401 {
		t.Fatalf("a password grant's token after the grant was taken away: %d %s", r.Status, r.Body)
	}
	if r := refreshWith(t, g, refresh); r.Status != 400 || r.Str("error") != "invalid_grant" {
		t.Fatalf("refreshing a password grant after the grant was taken away: %d %s", r.Status, r.Body)
	}
}

// TestDriftScopeNarrowedByAdminAPI: a PATCH of a dynamic client's scope or
// grant types reaches the tokens it already holds, as a reload does for a
// static client.
func TestDriftScopeNarrowedByAdminAPI(t *testing.T) {
	up := gt.StartUpstream(t)
	g := gt.Start(t, gt.Config(adminOAuthBlock, fmt.Sprintf(`
oauth_server
oauth_protect
reverse_proxy %s`, up.Addr())))
	r := adminJSON(t, g, "POST", "/oauth/clients", `{"grant_types":["client_credentials"],"scope":"read admin","user_id":"partner-1"}`)
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id, secret := r.Str("client_id"), r.Str("client_secret")
	access := wantToken(t, clientCredentials(t, g, id, secret)).Str("access_token")
	if got := scopeAtUpstream(t, g, up, access); got != "read admin" {
		t.Fatalf("X-OAuth-Scope before the PATCH = %q", got)
	}

	if p := adminJSON(t, g, "PATCH", "/oauth/clients/"+id, `{"scope":"read"}`); p.Status != 200 {
		t.Fatalf("patch: %d %s", p.Status, p.Body)
	}
	poll.Until(t, 2*time.Second, "the narrowed scope at the upstream", func() bool { return scopeAtUpstream(t, g, up, access) == "read" })
	in := gt.PostForm(t, g.URL+"/oauth/introspect", id, secret, url.Values{"token": {access}})
	if in.Status != 200 || in.Str("scope") != "read" {
		t.Fatalf("introspection after the PATCH: %d %s", in.Status, in.Body)
	}

	if p := adminJSON(t, g, "PATCH", "/oauth/clients/"+id, `{"grant_types":["password"]}`); p.Status != 200 {
		t.Fatalf("patch grants: %d %s", p.Status, p.Body)
	}
	poll.Until(t, 2*time.Second, "a client_credentials token refused once the grant is gone", func() bool {
		return gt.Get(t, g.URL+"/api", access).Status == 401
	})
}

// TestDriftRevokedUserClientCredentials: once a user is revoked (admin API)
// or removed from the config, a client acting as that user gets no more
// client_credentials tokens, static or dynamic, until the client gets a
// new secret or another user; the other users' clients go on.
func TestDriftRevokedUserClientCredentials(t *testing.T) {
	up := gt.StartUpstream(t)
	alice, bob := removalUsers(t)
	svc := func(name, secret, user string) string {
		return `client ` + name + ` {
		secret ` + secret + `
		grants client_credentials
		scopes read
		user ` + user + `
	}`
	}
	g := gt.Start(t, driftConfig(t, up.Addr(), []string{alice, bob},
		svc("svc-alice", "svc-alice-secret", "u-alice"), svc("svc-bob", "svc-bob-secret", "u-bob")))
	dyn := adminJSON(t, g, "POST", "/oauth/clients", `{"grant_types":["client_credentials"],"scope":"read","user_id":"u-alice"}`)
	if dyn.Status != 201 {
		t.Fatalf("create: %d %s", dyn.Status, dyn.Body)
	}
	dynID, dynSecret := dyn.Str("client_id"), dyn.Str("client_secret")
	for id, secret := range map[string]string{"svc-alice": "svc-alice-secret", "svc-bob": "svc-bob-secret", dynID: dynSecret} {
		wantToken(t, clientCredentials(t, g, id, secret))
	}

	if r := adminJSON(t, g, "POST", "/oauth/users/u-alice/revoke", ""); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	for id, secret := range map[string]string{"svc-alice": "svc-alice-secret", dynID: dynSecret} {
		if r := clientCredentials(t, g, id, secret); r.Status != 400 || r.Str("error") != "unauthorized_client" {
			t.Fatalf("%s acting as a revoked user: %d %s", id, r.Status, r.Body)
		}
	}
	wantToken(t, clientCredentials(t, g, "svc-bob", "svc-bob-secret"))

	// A new secret is the operator's word that the client may act again.
	rot := adminJSON(t, g, "POST", "/oauth/clients/"+dynID+"/secret", "")
	if rot.Status != 200 {
		t.Fatalf("rotate: %d %s", rot.Status, rot.Body)
	}
	wantToken(t, clientCredentials(t, g, dynID, rot.Str("client_secret")))
	reload(t, g, driftConfig(t, up.Addr(), []string{alice, bob},
		svc("svc-alice", "svc-alice-secret-2", "u-alice"), svc("svc-bob", "svc-bob-secret", "u-bob")))
	tok := wantToken(t, clientCredentials(t, g, "svc-alice", "svc-alice-secret-2"))
	gt.Get(t, g.URL+"/api", tok.Str("access_token"))
	if got := up.Last().Get("X-User-Id"); got != "u-alice" {
		t.Fatalf("X-User-ID = %q, want u-alice", got)
	}

	// bob removed from the config: svc-bob, still acting as him, stops.
	reload(t, g, driftConfig(t, up.Addr(), []string{alice},
		svc("svc-alice", "svc-alice-secret-2", "u-alice"), svc("svc-bob", "svc-bob-secret", "u-bob")))
	if r := clientCredentials(t, g, "svc-bob", "svc-bob-secret"); r.Status != 400 || r.Str("error") != "unauthorized_client" {
		t.Fatalf("svc-bob acting as a removed user: %d %s", r.Status, r.Body)
	}
	if strings.Contains(g.Logs(), "svc-bob-secret") {
		t.Fatal("a client secret reached the log")
	}
}

// TestDriftLoginUpstreamUserIDs: the user ID a login upstream answers with
// must be a usable one: a blank ID, one with a comma, or an answer naming
// the ID field twice is a failed sign-in; a good ID reaches the upstream.
func TestDriftLoginUpstreamUserIDs(t *testing.T) {
	answers := map[string]string{
		"blank":  `{"id":" "}`,
		"padded": `{"id":" u-7"}`,
		"comma":  `{"id":"a, b"}`,
		"twice":  `{"id":"u-1","id":"u-2"}`,
		"ok":     `{"id":"u-ok"}`,
	}
	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		a, ok := answers[r.PostForm.Get("username")]
		if !ok {
			http.Error(w, "no", 401)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, a)
	}))
	t.Cleanup(legacy.Close)
	g, up := startWithLoginUpstream(t, fmt.Sprintf(`login_upstream %s {
		format form
	}`, legacy.URL))
	for user := range answers {
		r := passwordGrant(t, g, user, "pw")
		if user == "ok" {
			gt.Get(t, g.URL+"/api", wantToken(t, r).Str("access_token"))
			if got := up.Last().Get("X-User-Id"); got != "u-ok" {
				t.Fatalf("X-User-ID = %q, want u-ok", got)
			}
			continue
		}
		if r.Status != 400 || r.Str("error") != "invalid_grant" {
			t.Fatalf("login upstream answering %s: %d %s, want invalid_grant", answers[user], r.Status, r.Body)
		}
	}
	if !strings.Contains(g.Logs(), "unusable user ID") {
		t.Fatal("the unusable user IDs were not logged")
	}
}

// TestDriftClientSecretHashLockout: failed client authentications of a
// client with secret_hash lock it at that address like a user's sign-ins:
// once locked, even the right secret is refused without being checked,
// unless the gateway verified it recently.
func TestDriftClientSecretHashLockout(t *testing.T) {
	g := gt.Start(t, gt.Config(`
oauth {
	store memory
	lockout {
		lock_after 3
	}
	client known {
		secret_hash `+gt.BcryptHash(t, "known-secret")+`
		grants client_credentials
		scopes read
	}
	client fresh {
		secret_hash `+gt.BcryptHash(t, "fresh-secret")+`
		grants client_credentials
		scopes read
	}
}`, `oauth_server`))
	wantToken(t, clientCredentials(t, g, "known", "known-secret"))
	for _, id := range []string{"known", "fresh"} {
		for i := 0; i < 3; i++ {
			if r := clientCredentials(t, g, id, "wrong"); r.Status != 401 || r.Str("error") != "invalid_client" {
				t.Fatalf("%s with a wrong secret: %d %s", id, r.Status, r.Body)
			}
		}
	}
	// known's secret was verified before the lock: it still works.
	wantToken(t, clientCredentials(t, g, "known", "known-secret"))
	// fresh's never was: locked, its right secret is refused unchecked.
	for _, ep := range []string{"/oauth/token", "/oauth/introspect", "/oauth/revoke"} {
		r := gt.PostForm(t, g.URL+ep, "fresh", "fresh-secret", url.Values{"grant_type": {"client_credentials"}, "token": {"x"}})
		if r.Status != 401 || r.Str("error") != "invalid_client" {
			t.Fatalf("%s for a locked client with its right secret: %d %s", ep, r.Status, r.Body)
		}
	}
	if !strings.Contains(g.Logs(), "client authentication locked") {
		t.Fatal("the lock was not logged")
	}
	for _, s := range []string{"known-secret", "fresh-secret"} {
		if strings.Contains(g.Logs(), s) {
			t.Fatal("a client secret reached the log")
		}
	}
}
