package integration

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// appsOAuthBlock turns the self-service pages on for two users. The
// password grant is allowed for apps so a test can get a user's token for
// an app without a appsBrowser.
func appsOAuthBlock(t *testing.T) string {
	return fmt.Sprintf(`
oauth {
	store memory
	scopes read write
	self_service
	apps_allowed_grants authorization_code refresh_token password
	apps_allowed_scopes read write
	user alice %s
	user bob %s
}`, gt.BcryptHash(t, "alice-pw"), gt.BcryptHash(t, "bob-pw"))
}

func startAppsGateway(t *testing.T) *gt.Gateway {
	t.Helper()
	up := gt.StartUpstream(t)
	return gt.Start(t, gt.Config(appsOAuthBlock(t), fmt.Sprintf(`
oauth_server
oauth_protect
reverse_proxy %s`, up.Addr())))
}

// appsBrowser is a cookie-keeping HTTP client that does not follow redirects.
type appsBrowser struct {
	t    *testing.T
	base string
	c    *http.Client
}

type appsResp struct {
	Status   int
	Location string
	Body     string
}

func newAppsBrowser(t *testing.T, g *gt.Gateway) *appsBrowser {
	jar, _ := cookiejar.New(nil)
	return &appsBrowser{t: t, base: g.URL, c: &http.Client{Jar: jar, CheckRedirect: gt.HTTPClient.CheckRedirect, Timeout: gt.HTTPClient.Timeout}}
}

func (b *appsBrowser) do(method, path string, form url.Values) *appsResp {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return &appsResp{Status: resp.StatusCode, Location: resp.Header.Get("Location"), Body: string(raw)}
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func csrfOf(t *testing.T, p *appsResp) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no csrf_token in page (%d):\n%s", p.Status, p.Body)
	}
	return m[1]
}

func (b *appsBrowser) login(user, password string) {
	b.t.Helper()
	lp := b.do("GET", "/oauth/apps/login", nil)
	r := b.do("POST", "/oauth/apps/login?next=/oauth/apps", url.Values{"csrf_token": {csrfOf(b.t, lp)}, "username": {user}, "password": {password}})
	if r.Status != 303 || r.Location != "/oauth/apps" {
		b.t.Fatalf("login as %s: %d %s", user, r.Status, r.Body)
	}
}

// post sends a form with the CSRF token of the page at from.
func (b *appsBrowser) post(from, path string, form url.Values) *appsResp {
	b.t.Helper()
	form.Set("csrf_token", csrfOf(b.t, b.do("GET", from, nil)))
	return b.do("POST", path, form)
}

var clientIDRE = regexp.MustCompile(`id="client-id">([^<]+)<`)
var secretRE = regexp.MustCompile(`id="client-secret">([^<]+)<`)

func (b *appsBrowser) createApp(name, redirect string, grants ...string) (id, secret string) {
	b.t.Helper()
	r := b.post("/oauth/apps", "/oauth/apps/new", url.Values{"client_name": {name}, "redirect_uris": {redirect}, "grant_types": grants, "scope": {"read"}})
	m, s := clientIDRE.FindStringSubmatch(r.Body), secretRE.FindStringSubmatch(r.Body)
	if r.Status != 200 || m == nil || s == nil {
		b.t.Fatalf("create app: %d\n%s", r.Status, r.Body)
	}
	return m[1], s[1]
}

// TestAppsOtherUsersClientsAre404: bob gets 404 for every URL naming
// alice's client, exactly as for an id that does not exist, and alice's
// client is untouched afterwards.
func TestAppsOtherUsersClientsAre404(t *testing.T) {
	g := startAppsGateway(t)
	alice, bob := newAppsBrowser(t, g), newAppsBrowser(t, g)
	alice.login("alice", "alice-pw")
	bob.login("bob", "bob-pw")
	id, secret := alice.createApp("Alice's app", "https://alice.example.com/cb", "authorization_code", "password")

	if p := bob.do("GET", "/oauth/apps", nil); p.Status != 200 || strings.Contains(p.Body, id) {
		t.Fatalf("bob's list shows alice's app: %d", p.Status)
	}
	for _, tc := range []struct{ method, path string }{
		{"GET", "/oauth/apps/" + id},
		{"POST", "/oauth/apps/" + id},
		{"POST", "/oauth/apps/" + id + "/secret"},
		{"POST", "/oauth/apps/" + id + "/delete"},
		{"GET", "/oauth/apps/c_doesnotexist"},
		{"POST", "/oauth/apps/c_doesnotexist/delete"},
	} {
		var p *appsResp
		if tc.method == "GET" {
			p = bob.do("GET", tc.path, nil)
		} else {
			p = bob.post("/oauth/apps", tc.path, url.Values{"client_name": {"pwned"}, "redirect_uris": {"https://bob.example.com/cb"}, "grant_types": {"authorization_code"}})
		}
		if p.Status != 404 {
			t.Errorf("bob %s %s: %d, want 404", tc.method, tc.path, p.Status)
		}
	}
	// Alice's app is as it was: same name, same secret.
	if p := alice.do("GET", "/oauth/apps/"+id, nil); p.Status != 200 || !strings.Contains(p.Body, "Alice&#39;s app") || strings.Contains(p.Body, "pwned") {
		t.Fatalf("alice's app after bob's attempts: %d\n%s", p.Status, p.Body)
	}
	tok := gt.PostForm(t, g.URL+"/oauth/token", id, secret, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-pw"}})
	if tok.Status != 200 {
		t.Fatalf("alice's app after bob's attempts: %d %s", tok.Status, tok.Body)
	}
}

// TestAppsFormsNeedSession: no session gets the sign-in page, a form
// without the session's CSRF token is refused, and the pages are off
// without self_service.
func TestAppsFormsNeedSession(t *testing.T) {
	g := startAppsGateway(t)
	anon := newAppsBrowser(t, g)
	if p := anon.do("GET", "/oauth/apps", nil); p.Status != 303 || !strings.HasPrefix(p.Location, "/oauth/apps/login") {
		t.Fatalf("anonymous: %d %s", p.Status, p.Location)
	}
	if p := anon.do("POST", "/oauth/apps/new", url.Values{"client_name": {"x"}}); p.Status != 303 {
		t.Fatalf("anonymous post: %d", p.Status)
	}
	// A wrong password is refused, with a fresh form.
	lp := anon.do("GET", "/oauth/apps/login", nil)
	if p := anon.do("POST", "/oauth/apps/login", url.Values{"csrf_token": {csrfOf(t, lp)}, "username": {"alice"}, "password": {"nope"}}); p.Status != 401 {
		t.Fatalf("wrong password: %d", p.Status)
	}
	// Login without the login form's token: refused.
	if p := anon.do("POST", "/oauth/apps/login", url.Values{"csrf_token": {"forged"}, "username": {"alice"}, "password": {"alice-pw"}}); p.Status != 403 {
		t.Fatalf("login with a forged token: %d", p.Status)
	}
	// An open redirect through next is not possible.
	lp = anon.do("GET", "/oauth/apps/login?next=//evil.example.com", nil)
	if p := anon.do("POST", "/oauth/apps/login?next=//evil.example.com", url.Values{"csrf_token": {csrfOf(t, lp)}, "username": {"alice"}, "password": {"alice-pw"}}); p.Location != "/oauth/apps" {
		t.Fatalf("login redirected to %q", p.Location)
	}

	alice := newAppsBrowser(t, g)
	alice.login("alice", "alice-pw")
	if p := alice.do("POST", "/oauth/apps/new", url.Values{"client_name": {"x"}, "redirect_uris": {"https://x.example.com/cb"}, "grant_types": {"authorization_code"}}); p.Status != 403 {
		t.Fatalf("post without csrf token: %d", p.Status)
	}
	if p := alice.do("POST", "/oauth/apps/new", url.Values{"csrf_token": {"forged"}, "client_name": {"x"}}); p.Status != 403 {
		t.Fatalf("post with a forged csrf token: %d", p.Status)
	}
	// Bad input is shown on the form, never a 500.
	p := alice.post("/oauth/apps", "/oauth/apps/new", url.Values{"client_name": {"x"}, "redirect_uris": {"http://evil.example.com/cb"}, "grant_types": {"authorization_code"}})
	if p.Status != 400 || !strings.Contains(p.Body, "https") {
		t.Fatalf("bad redirect uri: %d\n%s", p.Status, p.Body)
	}
	p = alice.post("/oauth/apps", "/oauth/apps/new", url.Values{"client_name": {"x"}, "redirect_uris": {"https://x.example.com/cb"}, "grant_types": {"client_credentials"}})
	if p.Status != 400 || !strings.Contains(p.Body, "not allowed") {
		t.Fatalf("grant outside apps_allowed_grants: %d\n%s", p.Status, p.Body)
	}
	// Sign out ends the session.
	alice.post("/oauth/apps", "/oauth/apps/logout", url.Values{})
	if p := alice.do("GET", "/oauth/apps", nil); p.Status != 303 {
		t.Fatalf("after sign-out: %d", p.Status)
	}

	off := gt.Start(t, gt.Config(`
oauth {
	store memory
	user alice `+gt.BcryptHash(t, "alice-pw")+`
}`, `oauth_server
respond "upstream"`))
	if r := gt.Get(t, off.URL+"/oauth/apps", ""); r.Status != 404 {
		t.Fatalf("self-service off: %d", r.Status)
	}
	if r := gt.Get(t, off.URL+"/oauth/apps/login", ""); r.Status != 404 {
		t.Fatalf("self-service off, login: %d", r.Status)
	}
}
