package integration

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// appsRulesGateway runs self-service with a static client holding an
// admin scope that only client_credentials can get, a static client named
// "Web App", the users alice and bob, and extra oauth options.
func appsRulesGateway(t *testing.T, extra string) (*gt.Gateway, *gt.Upstream) {
	t.Helper()
	up := gt.StartUpstream(t)
	g := gt.Start(t, gt.Config(fmt.Sprintf(`
oauth {
	store memory
	scopes read write
	self_service
	apps_allowed_grants authorization_code refresh_token password
	client ops {
		secret ops-secret
		grants client_credentials
		scopes admin
	}
	client web {
		name "Web App"
		secret web-secret
		redirect_uri %s
		grants authorization_code
		scopes read
	}
	user alice %s u-alice
	user bob %s u-bob
	%s
}`, webCB, gt.BcryptHash(t, "alice-pw"), gt.BcryptHash(t, "bob-pw"), extra), fmt.Sprintf(`
oauth_server
oauth_protect
reverse_proxy %s`, up.Addr())))
	return g, up
}

// newApp posts the new-app form and returns the answer and, when the app
// was created, its client_id and secret.
func (b *appsBrowser) newApp(name, redirect string, scopes ...string) (r *appsResp, id, secret string) {
	b.t.Helper()
	r = b.post("/oauth/apps", "/oauth/apps/new", url.Values{"client_name": {name}, "redirect_uris": {redirect},
		"grant_types": {"authorization_code", "password"}, "scope": scopes})
	if m, s := clientIDRE.FindStringSubmatch(r.Body), secretRE.FindStringSubmatch(r.Body); r.Status == 200 && m != nil && s != nil {
		id, secret = m[1], s[1]
	}
	return r, id, secret
}

// TestAppsGetNoScopeByDefault: without apps_allowed_scopes a user's app
// gets no scope at all: not the admin scope of a client_credentials
// client, nor a configured one.
func TestAppsGetNoScopeByDefault(t *testing.T) {
	g, _ := appsRulesGateway(t, "")
	alice := newAppsBrowser(t, g)
	alice.login("alice", "alice-pw")
	for _, scope := range []string{"admin", "read"} {
		if r, id, _ := alice.newApp("Mine", "https://alice.example.com/cb", scope); r.Status != 400 || id != "" {
			t.Fatalf("an app with scope %s: %d %s", scope, r.Status, r.Body)
		}
	}
	if r, id, _ := alice.newApp("Mine", "https://alice.example.com/cb"); id == "" {
		t.Fatalf("an app with no scope: %d %s", r.Status, r.Body)
	}
}

// TestAppsScopesOnlyThoseAllowed: apps may ask only for the scopes of
// apps_allowed_scopes, and their tokens carry no other.
func TestAppsScopesOnlyThoseAllowed(t *testing.T) {
	g, up := appsRulesGateway(t, "apps_allowed_scopes read")
	alice := newAppsBrowser(t, g)
	alice.login("alice", "alice-pw")
	if r, id, _ := alice.newApp("Mine", "https://alice.example.com/cb", "admin"); r.Status != 400 || id != "" {
		t.Fatalf("an app with scope admin: %d %s", r.Status, r.Body)
	}
	r, id, secret := alice.newApp("Mine", "https://alice.example.com/cb", "read")
	if id == "" {
		t.Fatalf("an app with scope read: %d %s", r.Status, r.Body)
	}
	password := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-pw"}}
	password.Set("scope", "admin")
	if tok := gt.PostForm(t, g.URL+"/oauth/token", id, secret, password); tok.Status != 400 || tok.Str("error") != "invalid_scope" {
		t.Fatalf("admin for the app: %d %s", tok.Status, tok.Body)
	}
	password.Del("scope")
	tok := gt.PostForm(t, g.URL+"/oauth/token", id, secret, password)
	if tok.Status != 200 || tok.Str("scope") != "read" {
		t.Fatalf("a token for the app: %d %s", tok.Status, tok.Body)
	}
	if r := gt.Get(t, g.URL+"/api", tok.Str("access_token")); r.Status != 200 {
		t.Fatalf("api: %d", r.Status)
	}
	if got := up.Last().Get("X-OAuth-Scope"); got != "read" {
		t.Fatalf("upstream X-OAuth-Scope = %q, want read", got)
	}
}

// TestAppsAuthorizeErrorsNotRedirected: an invalid authorization request
// for a user's app shows an error page instead of sending the browser to
// the redirect URI the user registered (RFC 9700 §4.11.2), while a valid
// one goes on to sign in; the operator's clients still get their errors
// redirected.
func TestAppsAuthorizeErrorsNotRedirected(t *testing.T) {
	g, _ := appsRulesGateway(t, "")
	alice := newAppsBrowser(t, g)
	alice.login("alice", "alice-pw")
	_, id, _ := alice.newApp("Mine", "https://alice.example.com/cb")
	if id == "" {
		t.Fatal("no app")
	}
	b := newBrowser(t, g.URL)
	for name, q := range map[string]string{
		"bad response_type": "response_type=x&state=s&client_id=" + id,
		"no response_type":  "state=s&client_id=" + id,
		"scope beyond":      "response_type=code&state=s&scope=admin&client_id=" + id,
		"plain PKCE":        "response_type=code&state=s&code_challenge=" + strings.Repeat("a", 43) + "&code_challenge_method=plain&client_id=" + id,
		"state too long":    "response_type=code&state=" + strings.Repeat("s", 2000) + "&client_id=" + id,
	} {
		r := b.get("/oauth/authorize?" + q)
		if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" || !strings.Contains(string(r.Body), `<html lang="en">`) {
			t.Errorf("%s: %d Location=%q, want an error page", name, r.Status, r.Header.Get("Location"))
		}
	}
	if loc := location(t, b.get("/oauth/authorize?response_type=code&state=s&client_id="+id)); !strings.HasPrefix(loc, "/oauth/login") {
		t.Fatalf("a valid request went to %q", loc)
	}
	u := clientRedirect(t, b.get("/oauth/authorize?response_type=x&state=s&client_id=web"))
	if u.Query().Get("error") != "unsupported_response_type" {
		t.Fatalf("the operator's client: %s", u)
	}
}

// TestAppsPerUserCap: a user has at most 10 apps by default; others are
// not affected.
func TestAppsPerUserCap(t *testing.T) {
	g, _ := appsRulesGateway(t, "")
	alice := newAppsBrowser(t, g)
	alice.login("alice", "alice-pw")
	for i := range 10 {
		if r, id, _ := alice.newApp(fmt.Sprintf("App %d", i), "https://alice.example.com/cb"); id == "" {
			t.Fatalf("app %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	if r, id, _ := alice.newApp("One too many", "https://alice.example.com/cb"); r.Status != 400 || id != "" || !strings.Contains(r.Body, "10") {
		t.Fatalf("app 11: %d %s", r.Status, r.Body)
	}
	bob := newAppsBrowser(t, g)
	bob.login("bob", "bob-pw")
	if r, id, _ := bob.newApp("Bob's", "https://bob.example.com/cb"); id == "" {
		t.Fatalf("bob's first app: %d %s", r.Status, r.Body)
	}
}

// TestAppsPerUserSetting: apps_per_user sets the cap.
func TestAppsPerUserSetting(t *testing.T) {
	g, _ := appsRulesGateway(t, "apps_per_user 1")
	alice := newAppsBrowser(t, g)
	alice.login("alice", "alice-pw")
	if _, id, _ := alice.newApp("First", "https://alice.example.com/cb"); id == "" {
		t.Fatal("first app refused")
	}
	if r, id, _ := alice.newApp("Second", "https://alice.example.com/cb"); r.Status != 400 || id != "" {
		t.Fatalf("second app: %d", r.Status)
	}
}

// TestAppsCannotTakeAStaticClientsName: an app's name may not be that of
// an operator's client, in any case or spacing, on creation or edit.
func TestAppsCannotTakeAStaticClientsName(t *testing.T) {
	g, _ := appsRulesGateway(t, "")
	alice := newAppsBrowser(t, g)
	alice.login("alice", "alice-pw")
	for _, name := range []string{"Web App", "  web app ", "WEB APP", "ops"} {
		if r, id, _ := alice.newApp(name, "https://alice.example.com/cb"); r.Status != 400 || id != "" {
			t.Fatalf("an app named %q: %d", name, r.Status)
		}
	}
	_, id, _ := alice.newApp("Web App Two", "https://alice.example.com/cb")
	if id == "" {
		t.Fatal("a distinct name refused")
	}
	r := alice.post("/oauth/apps/"+id, "/oauth/apps/"+id, url.Values{"client_name": {"web app"}, "redirect_uris": {"https://alice.example.com/cb"}, "grant_types": {"authorization_code"}})
	if r.Status != 400 {
		t.Fatalf("renaming to a static client's name: %d", r.Status)
	}
}

// TestConsentMarksUserApps: the consent page for a user's app says a user
// registered it and names the host the browser will be sent to; the
// operator's client's page does not.
func TestConsentMarksUserApps(t *testing.T) {
	g, _ := appsRulesGateway(t, "")
	alice := newAppsBrowser(t, g)
	alice.login("alice", "alice-pw")
	_, id, _ := alice.newApp("Totally Web App", "https://alice.example.com/cb")
	if id == "" {
		t.Fatal("no app")
	}
	b := newBrowser(t, g.URL)
	consent := b.follow(b.login(b.follow(b.authorize(url.Values{"response_type": {"code"}, "client_id": {id}, "state": {"s"}})), "bob", "bob-pw"))
	body := string(consent.Body)
	if !isPage(consent, "wants to access your account") || !strings.Contains(body, "registered by a user, not by the operator") || !strings.Contains(body, "alice.example.com") {
		t.Fatalf("consent page of a user's app:\n%s", body)
	}
	page := b.follow(b.authorize(url.Values{"response_type": {"code"}, "client_id": {"web"}, "state": {"s"}}))
	if !isPage(page, "wants to access your account") || strings.Contains(string(page.Body), "registered by a user") || !strings.Contains(string(page.Body), "127.0.0.1") {
		t.Fatalf("consent page of the operator's client:\n%s", page.Body)
	}
}

// TestAppsLoginNextStaysOnPages: the page a sign-in returns to is
// normalised and stays under /oauth/apps; control characters send it to
// /oauth/apps.
func TestAppsLoginNextStaysOnPages(t *testing.T) {
	g, _ := appsRulesGateway(t, "")
	for next, want := range map[string]string{
		"/oauth/apps/../../evil":  "/oauth/apps",
		"/oauth/apps/./x/../edit": "/oauth/apps/edit",
		"/oauth/apps/x\ty":        "/oauth/apps",
		"/oauth/appsevil":         "/oauth/apps",
		"/oauth/apps/c_1":         "/oauth/apps/c_1",
	} {
		b := newAppsBrowser(t, g)
		path := "/oauth/apps/login?next=" + url.QueryEscape(next)
		lp := b.do("GET", path, nil)
		if strings.Contains(lp.Body, "\t") || strings.Contains(lp.Body, "evil") {
			t.Errorf("next=%q is echoed in the form", next)
		}
		r := b.do("POST", path, url.Values{"csrf_token": {csrfOf(t, lp)}, "username": {"alice"}, "password": {"alice-pw"}})
		if r.Status != 303 || r.Location != want {
			t.Errorf("next=%q: %d Location=%q, want %q", next, r.Status, r.Location, want)
		}
	}
}
