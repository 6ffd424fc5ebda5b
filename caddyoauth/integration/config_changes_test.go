package integration

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// caddyReload runs `caddy reload` on a Caddyfile template against g, as an
// operator does after editing a file: the command adapts the Caddyfile
// itself and posts the JSON, which Caddy loads only when it differs from
// the running config's.
func caddyReload(t *testing.T, g *gt.Gateway, tmpl string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(file, []byte(g.Render(tmpl)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gt.Binary(t), "reload", "--config", file, "--adapter", "caddyfile", "--address", g.Params.Admin)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("caddy reload: %v\n%s", err, out)
	}
	g.Settle()
}

// TestUsersFileEditReachesReload: after an edit of the users_file alone,
// a plain `caddy reload` (no --force) loads the new users: the removed
// user's tokens and password stop working, the others' keep working.
func TestUsersFileEditReachesReload(t *testing.T) {
	u := startWithUsersFile(t)
	g, cfg, file, alice, aliceAT, bobAT, up := u.g, u.cfg, u.file, u.alice, u.aliceAT, u.bobAT, u.up

	// The same files: nothing to load.
	caddyReload(t, g, cfg)
	if !strings.Contains(g.Logs(), "config is unchanged") {
		t.Fatal("reloading unchanged files loaded the config again")
	}

	if err := os.WriteFile(file, []byte(alice), 0o600); err != nil {
		t.Fatal(err)
	}
	caddyReload(t, g, cfg)
	if r := gt.Get(t, g.URL+"/api", bobAT); r.Status != 401 {
		t.Fatalf("bob's access token after his removal from the users file and a reload: %d", r.Status)
	}
	wantError(t, gt.PostForm(t, g.URL+"/oauth/token", "web", "web-secret", url.Values{
		"grant_type": {"password"}, "username": {"bob"}, "password": {"bob-pw"},
	}), 400, "invalid_grant")
	if r := gt.Get(t, g.URL+"/api", aliceAT); r.Status != 200 || up.Last().Get("X-User-ID") != "u-alice" {
		t.Fatalf("alice's access token: %d", r.Status)
	}
}

// clientChangeConfig is a gateway on the file store with alice (whose
// password hash is given), a client that stays, and the given extra
// client blocks.
func clientChangeConfig(aliceHash, upstream string, extra ...string) string {
	return gt.Config(`
oauth {
	store `+fileStore+`
	user alice `+aliceHash+` u-alice
	client stays {
		secret stays-secret
		grants client_credentials
		scopes read
	}
	`+strings.Join(extra, "\n\t")+`
}`, fmt.Sprintf(`
oauth_server
oauth_protect
reverse_proxy %s`, upstream))
}

// webappClient is a static client block with the given redirect URI.
func webappClient(redirect string) string {
	return `client webapp {
		secret webapp-secret
		redirect_uri ` + redirect + `
		grants authorization_code refresh_token
		scopes read
	}`
}

func webappParams(redirect string) url.Values {
	return url.Values{"response_type": {"code"}, "client_id": {"webapp"}, "redirect_uri": {redirect}, "scope": {"read"}}
}

// consentAsked reports whether alice's signed-in browser is shown the
// consent screen for params, rather than sent straight to the client.
func consentAsked(t *testing.T, b *browser, params url.Values) bool {
	t.Helper()
	r := b.authorize(params)
	if loc := location(t, r); strings.HasPrefix(loc, "/oauth/login") {
		r = b.login(b.follow(r), "alice", "alice-pw")
	}
	return isPage(b.follow(r), "wants to access your account")
}

// TestRemovedStaticClientLeavesNothingBehind: a client removed from the
// config takes its users' consents and its tokens with it, and its
// client_id cannot be registered again through the admin API; put back in
// the config, it starts afresh and asks its users again.
func TestRemovedStaticClientLeavesNothingBehind(t *testing.T) {
	up := gt.StartUpstream(t)
	hash := gt.BcryptHash(t, "alice-pw")
	const oldCB, newCB = "https://webapp.example.com/cb", "https://new-owner.example.com/cb"
	g := gt.Start(t, clientChangeConfig(hash, up.Addr(), webappClient(oldCB)))

	b := newBrowser(t, g.URL)
	code := b.approve(webappParams(oldCB), "alice", "alice-pw").Query().Get("code")
	tok := wantToken(t, redeem(t, g, "webapp", "webapp-secret", url.Values{"code": {code}, "redirect_uri": {oldCB}}))
	if consentAsked(t, b, webappParams(oldCB)) {
		t.Fatal("the consent was not remembered before the removal")
	}

	if r := g.Reload(clientChangeConfig(hash, up.Addr()), false); r.Status != 200 {
		t.Fatalf("reload without webapp: %d %s", r.Status, r.Body)
	}
	if !strings.Contains(g.Logs(), `client removed from the config`) {
		t.Fatal("the removal of the client was not logged")
	}
	r := adminJSON(t, g, "POST", "/oauth/clients", `{"client_id":"webapp","grant_types":["authorization_code"],"redirect_uris":["`+newCB+`"],"scope":"read"}`)
	if r.Status != 409 {
		t.Fatalf("registering the removed client's id: %d %s, want 409", r.Status, r.Body)
	}

	// The operator puts the client back (with another redirect URI).
	if r := g.Reload(clientChangeConfig(hash, up.Addr(), webappClient(newCB)), false); r.Status != 200 {
		t.Fatalf("reload with webapp again: %d %s", r.Status, r.Body)
	}
	if !consentAsked(t, b, webappParams(newCB)) {
		t.Fatal("the client put back in the config got a code without asking: the old consent survived its removal")
	}
	if r := gt.Get(t, g.URL+"/api", tok.Str("access_token")); r.Status != 401 {
		t.Fatalf("an access token of the removed client, after it came back: %d", r.Status)
	}
	wantError(t, gt.PostForm(t, g.URL+"/oauth/token", "webapp", "webapp-secret", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {tok.Str("refresh_token")},
	}), 400, "invalid_grant")

	// Restarts keep the client as it is now: a consent given since it came
	// back is remembered across them.
	g.Stop()
	g2 := gt.Start(t, clientChangeConfig(hash, up.Addr(), webappClient(newCB)), gt.WithDataDir(g.Params.DataDir))
	b2 := newBrowser(t, g2.URL)
	b2.approve(webappParams(newCB), "alice", "alice-pw")
	g2.Restart()
	if consentAsked(t, b2, webappParams(newCB)) {
		t.Fatal("a consent given to the client after it came back did not survive a restart")
	}
}

// TestDeletedDynamicClientConsentsForgotten: consents given to a client
// registered through the admin API and deleted there do not pass to a
// client of the config that takes the same client_id.
func TestDeletedDynamicClientConsentsForgotten(t *testing.T) {
	up := gt.StartUpstream(t)
	hash := gt.BcryptHash(t, "alice-pw")
	const cb = "https://webapp.example.com/cb"
	g := gt.Start(t, clientChangeConfig(hash, up.Addr()))
	r := adminJSON(t, g, "POST", "/oauth/clients", `{"client_id":"webapp","grant_types":["authorization_code"],"redirect_uris":["`+cb+`"],"scope":"read"}`)
	if r.Status != 201 {
		t.Fatalf("register webapp: %d %s", r.Status, r.Body)
	}
	b := newBrowser(t, g.URL)
	b.approve(webappParams(cb), "alice", "alice-pw")
	if consentAsked(t, b, webappParams(cb)) {
		t.Fatal("the consent was not remembered")
	}
	if r := adminJSON(t, g, "DELETE", "/oauth/clients/webapp", ""); r.Status != 204 {
		t.Fatalf("delete webapp: %d %s", r.Status, r.Body)
	}
	if r := g.Reload(clientChangeConfig(hash, up.Addr(), webappClient(cb)), false); r.Status != 200 {
		t.Fatalf("reload with a static webapp: %d %s", r.Status, r.Body)
	}
	if !consentAsked(t, b, webappParams(cb)) {
		t.Fatal("the config's webapp inherited the consent given to the deleted dynamic one")
	}
}
