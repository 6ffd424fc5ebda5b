package integration

import (
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

const (
	webCB   = "http://127.0.0.1:9/cb"
	webCB2  = "http://127.0.0.1:9/cb2?tenant=7"
	spaCB   = "http://localhost:9/spa"
	firstCB = "https://first.example.com/cb"
)

// authorizeClients are the clients of the authorization code tests.
const authorizeClients = `
client web {
	name "Web App"
	secret web-secret
	redirect_uri ` + webCB + ` ` + webCB2 + `
	grants authorization_code refresh_token
	scopes read write
	default_scope read
}
client spa {
	name "Single Page"
	public
	redirect_uri ` + spaCB + `
	grants authorization_code
	scopes read
}
client first {
	secret first-secret
	redirect_uri ` + firstCB + `
	grants authorization_code
	scopes read
	consent skip
}
client strict {
	secret strict-secret
	redirect_uri ` + firstCB + `
	grants authorization_code
	scopes read
	consent always
}
client svc {
	secret svc-secret
	redirect_uri ` + firstCB + `
	grants client_credentials
	scopes read
}`

// startAuthorize runs a gateway with the test clients, the users alice
// (password alice-pw, user ID u-alice) and bob, extra oauth options, and
// a protected upstream.
func startAuthorize(t *testing.T, extra string) (*gt.Gateway, *gt.Upstream) {
	t.Helper()
	up := gt.StartUpstream(t)
	g := gt.Start(t, gt.Config(fmt.Sprintf(`
oauth {
	store memory
	user alice %s u-alice
	user bob %s
	%s
	%s
}`, gt.BcryptHash(t, "alice-pw"), gt.BcryptHash(t, "bob-pw"), authorizeClients, extra), fmt.Sprintf(`
oauth_server
oauth_protect
reverse_proxy %s`, up.Addr())))
	return g, up
}

func webParams(state string, more ...string) url.Values {
	v := url.Values{"response_type": {"code"}, "client_id": {"web"}, "redirect_uri": {webCB}, "state": {state}}
	for i := 0; i+1 < len(more); i += 2 {
		v.Set(more[i], more[i+1])
	}
	return v
}

func redeem(t *testing.T, g *gt.Gateway, clientID, secret string, form url.Values) *gt.Response {
	t.Helper()
	form.Set("grant_type", "authorization_code")
	if secret == "" {
		form.Set("client_id", clientID)
		return gt.PostForm(t, g.URL+"/oauth/token", "", "", form)
	}
	return gt.PostForm(t, g.URL+"/oauth/token", clientID, secret, form)
}

// TestAuthorizeCodeFlow walks the whole flow: sign-in, consent, code,
// token, and a protected call whose upstream sees the person's user ID;
// the code cannot be redeemed twice.
func TestAuthorizeCodeFlow(t *testing.T) {
	g, up := startAuthorize(t, "")
	b := newBrowser(t, g.URL)
	verifier, challenge := pkce("flow")

	r := b.authorize(webParams("st&ate=1 x", "scope", "read write", "code_challenge", challenge, "code_challenge_method", "S256"))
	loc := location(t, r)
	if !strings.HasPrefix(loc, "/oauth/login?request_id=") {
		t.Fatalf("authorize without a session went to %q, want the sign-in page", loc)
	}
	cookies := r.Header.Values("Set-Cookie")
	if len(cookies) != 1 || !strings.Contains(cookies[0], "HttpOnly") || !strings.Contains(cookies[0], "SameSite=Lax") ||
		strings.Contains(cookies[0], "Secure") || !strings.Contains(cookies[0], "Path=/oauth/") {
		t.Fatalf("session cookie = %q, want HttpOnly, SameSite=Lax, Path=/oauth/, not Secure over plain HTTP", cookies)
	}
	login := b.get(loc)
	if !isPage(login, "Sign in") || !strings.Contains(string(login.Body), "Web App") {
		t.Fatalf("sign-in page: %d %s", login.Status, login.Body)
	}
	for name, want := range map[string]string{
		"X-Frame-Options": "DENY", "Cache-Control": "no-store",
	} {
		if got := login.Header.Get(name); got != want {
			t.Errorf("sign-in page %s = %q, want %q", name, got, want)
		}
	}
	if csp := login.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("sign-in page CSP = %q", csp)
	}
	r = b.login(login, "alice", "alice-pw")
	consent := b.follow(r)
	body := string(consent.Body)
	for _, want := range []string{"Web App", "alice", "<li>read</li>", "<li>write</li>", `value="allow"`, `value="deny"`} {
		if !strings.Contains(body, want) {
			t.Fatalf("consent page lacks %q:\n%s", want, body)
		}
	}
	back := clientRedirect(t, b.decide(consent, "allow"))
	if back.Scheme+"://"+back.Host+back.Path != webCB {
		t.Fatalf("redirected to %s, want %s", back, webCB)
	}
	q := back.Query()
	if q.Get("state") != "st&ate=1 x" || q.Get("iss") != g.URL || q.Get("code") == "" {
		t.Fatalf("redirect query = %v, want the code, the state echoed and iss=%s", q, g.URL)
	}
	code := q.Get("code")

	tok := redeem(t, g, "web", "web-secret", url.Values{"code": {code}, "redirect_uri": {webCB}, "code_verifier": {verifier}})
	if tok.Status != 200 || tok.Str("access_token") == "" || tok.Str("refresh_token") == "" || tok.Str("scope") != "read write" {
		t.Fatalf("token: %d %s", tok.Status, tok.Body)
	}
	api := gt.Get(t, g.URL+"/api", tok.Str("access_token"), "X-User-ID", "mallory")
	if api.Status != 200 {
		t.Fatalf("protected call: %d %s", api.Status, api.Body)
	}
	if got := up.Last().Values("X-User-Id"); len(got) != 1 || got[0] != "u-alice" {
		t.Fatalf("upstream X-User-ID = %v, want [u-alice]", got)
	}

	logs := g.Logs()
	for name, secret := range map[string]string{"code": code, "access token": tok.Str("access_token"), "session id": sessionCookie(t, b), "password": "alice-pw"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the %s reached the gateway's log", name)
		}
	}

	// Replay: refused, and the tokens of the code are revoked.
	again := redeem(t, g, "web", "web-secret", url.Values{"code": {code}, "redirect_uri": {webCB}, "code_verifier": {verifier}})
	if again.Status != 400 || again.Str("error") != "invalid_grant" {
		t.Fatalf("replayed code: %d %s, want 400 invalid_grant", again.Status, again.Body)
	}
	if api := gt.Get(t, g.URL+"/api", tok.Str("access_token")); api.Status != 401 {
		t.Fatalf("access token after code replay: %d, want 401", api.Status)
	}
}

// TestAuthorizeErrorPages: a request that cannot be trusted to redirect
// gets an error page on the gateway and no Location.
func TestAuthorizeErrorPages(t *testing.T) {
	g, _ := startAuthorize(t, "")
	b := newBrowser(t, g.URL)
	cases := map[string]string{
		"unknown client":           "response_type=code&client_id=nobody&redirect_uri=" + url.QueryEscape(webCB) + "&state=s",
		"no client_id":             "response_type=code&redirect_uri=" + url.QueryEscape(webCB),
		"unregistered redirect":    "response_type=code&client_id=web&redirect_uri=" + url.QueryEscape("https://evil.example/cb") + "&state=s",
		"redirect prefix":          "response_type=code&client_id=web&redirect_uri=" + url.QueryEscape(webCB+"/x"),
		"redirect missing, many":   "response_type=code&client_id=web&state=s",
		"client_id twice":          "response_type=code&client_id=web&client_id=spa&redirect_uri=" + url.QueryEscape(webCB),
		"redirect twice":           "response_type=code&client_id=web&redirect_uri=" + url.QueryEscape(webCB) + "&redirect_uri=" + url.QueryEscape(webCB2),
		"bad response_type, no ru": "response_type=token&client_id=web",
	}
	for name, query := range cases {
		t.Run(name, func(t *testing.T) {
			r := b.get("/oauth/authorize?" + query)
			if r.Status != 400 || r.Header.Get("Location") != "" {
				t.Fatalf("%d Location=%q, want a 400 page and no redirect", r.Status, r.Header.Get("Location"))
			}
			if !strings.Contains(r.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.Body), `<html lang="en">`) {
				t.Fatalf("not an HTML page: %s", r.Body)
			}
		})
	}
	if r := b.post("/oauth/authorize", url.Values{"client_id": {"web"}}); r.Status != 405 {
		t.Fatalf("POST /oauth/authorize: %d, want 405", r.Status)
	}
}

// TestAuthorizeErrorRedirects: every other error goes back to the client's
// redirect URI with error, error_description, the state and iss, keeping
// the query the client registered.
func TestAuthorizeErrorRedirects(t *testing.T) {
	g, _ := startAuthorize(t, "")
	b := newBrowser(t, g.URL)
	_, s256 := pkce("err")
	cases := []struct {
		name   string
		query  string
		ru     string
		client string
		want   string
	}{
		{"no response_type", "client_id=web&state=S&redirect_uri=" + url.QueryEscape(webCB2), webCB2, "web", "invalid_request"},
		{"response_type token", "response_type=token&client_id=web&state=S&redirect_uri=" + url.QueryEscape(webCB), webCB, "web", "unsupported_response_type"},
		{"client without the grant", "response_type=code&client_id=svc&state=S", firstCB, "svc", "unauthorized_client"},
		{"scope beyond the client", "response_type=code&client_id=web&state=S&scope=admin&redirect_uri=" + url.QueryEscape(webCB), webCB, "web", "invalid_scope"},
		{"malformed scope", "response_type=code&client_id=web&state=S&scope=read%20%20write&redirect_uri=" + url.QueryEscape(webCB), webCB, "web", "invalid_scope"},
		{"public client without PKCE", "response_type=code&client_id=spa&state=S", spaCB, "spa", "invalid_request"},
		{"plain PKCE refused", "response_type=code&client_id=spa&state=S&code_challenge=" + s256 + "&code_challenge_method=plain", spaCB, "spa", "invalid_request"},
		{"method defaults to plain", "response_type=code&client_id=spa&state=S&code_challenge=" + s256, spaCB, "spa", "invalid_request"},
		{"unknown PKCE method", "response_type=code&client_id=spa&state=S&code_challenge=" + s256 + "&code_challenge_method=S512", spaCB, "spa", "invalid_request"},
		{"malformed challenge", "response_type=code&client_id=spa&state=S&code_challenge=short&code_challenge_method=S256", spaCB, "spa", "invalid_request"},
		{"method without challenge", "response_type=code&client_id=web&state=S&code_challenge_method=S256&redirect_uri=" + url.QueryEscape(webCB), webCB, "web", "invalid_request"},
		{"state twice", "response_type=code&client_id=web&state=S&state=T&redirect_uri=" + url.QueryEscape(webCB), webCB, "web", "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := clientRedirect(t, b.get("/oauth/authorize?"+c.query))
			base, _, _ := strings.Cut(c.ru, "?")
			if u.Scheme+"://"+u.Host+u.Path != base {
				t.Fatalf("redirected to %s, want %s", u, c.ru)
			}
			q := u.Query()
			if q.Get("error") != c.want || q.Get("error_description") == "" || q.Get("state") != "S" || q.Get("iss") != g.URL || q.Has("code") {
				t.Fatalf("redirect query %v, want error=%s with a description, state=S, iss", q, c.want)
			}
			if c.ru == webCB2 && q.Get("tenant") != "7" {
				t.Fatalf("the registered query tenant=7 was lost: %s", u)
			}
		})
	}
}

// TestAuthorizePKCE: the verifier is checked at redemption, and every
// mismatch is invalid_grant.
func TestAuthorizePKCE(t *testing.T) {
	g, _ := startAuthorize(t, "")
	b := newBrowser(t, g.URL)
	verifier, challenge := pkce("pkce")
	other, _ := pkce("other")

	code := func(params url.Values) string {
		t.Helper()
		u := b.approve(params, "alice", "alice-pw")
		if u.Query().Get("code") == "" {
			t.Fatalf("no code: %s", u)
		}
		return u.Query().Get("code")
	}
	spa := url.Values{"response_type": {"code"}, "client_id": {"spa"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	// Consent is remembered after the first approval, so later codes come
	// straight back from /oauth/authorize.
	first := code(spa)
	codeAgain := func(params url.Values) string {
		t.Helper()
		u := clientRedirect(t, b.follow(b.authorize(params)))
		return u.Query().Get("code")
	}

	cases := []struct {
		name     string
		code     string
		verifier string
		client   string
		secret   string
		want     int
	}{
		{"wrong verifier", first, other, "spa", "", 400},
		{"missing verifier", codeAgain(spa), "", "spa", "", 400},
		{"malformed verifier", codeAgain(spa), "short", "spa", "", 400},
		{"verifier too long", codeAgain(spa), strings.Repeat("a", 129), "spa", "", 400},
		{"verifier with no challenge", code(webParams("s")), verifier, "web", "web-secret", 400},
		{"right verifier", codeAgain(spa), verifier, "spa", "", 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			form := url.Values{"code": {c.code}}
			if c.verifier != "" {
				form.Set("code_verifier", c.verifier)
			}
			if c.client == "web" {
				form.Set("redirect_uri", webCB)
			}
			r := redeem(t, g, c.client, c.secret, form)
			if r.Status != c.want || (c.want == 400 && r.Str("error") != "invalid_grant") {
				t.Fatalf("%d %s, want %d (invalid_grant on failure)", r.Status, r.Body, c.want)
			}
		})
	}
}

// TestAuthorizePKCEOptions: `pkce required` makes confidential clients
// send a challenge; `allow_plain` accepts the plain method.
func TestAuthorizePKCEOptions(t *testing.T) {
	g, _ := startAuthorize(t, "pkce required allow_plain")
	b := newBrowser(t, g.URL)
	u := clientRedirect(t, b.authorize(webParams("S")))
	if u.Query().Get("error") != "invalid_request" {
		t.Fatalf("confidential client without PKCE under pkce required: %s", u)
	}
	verifier, _ := pkce("plain")
	u = b.approve(webParams("S", "code_challenge", verifier, "code_challenge_method", "plain"), "alice", "alice-pw")
	tok := redeem(t, g, "web", "web-secret", url.Values{"code": {u.Query().Get("code")}, "redirect_uri": {webCB}, "code_verifier": {verifier}})
	if tok.Status != 200 {
		t.Fatalf("plain PKCE with allow_plain: %d %s", tok.Status, tok.Body)
	}
	md := gt.Get(t, g.URL+"/.well-known/oauth-authorization-server", "")
	if got := fmt.Sprint(md.JSON["code_challenge_methods_supported"]); got != "[S256 plain]" {
		t.Fatalf("code_challenge_methods_supported = %s", got)
	}
	if md.JSON["authorization_endpoint"] != g.URL+"/oauth/authorize" {
		t.Fatalf("authorization_endpoint = %v", md.JSON["authorization_endpoint"])
	}
}

// TestAuthorizeCSRF: form posts without the session's CSRF token, or with
// another session's, are refused with 403.
func TestAuthorizeCSRF(t *testing.T) {
	g, _ := startAuthorize(t, "")
	victim, attacker := newBrowser(t, g.URL), newBrowser(t, g.URL)
	page := victim.follow(victim.authorize(webParams("v")))
	attackerPage := attacker.follow(attacker.authorize(webParams("a")))
	rid := hidden(t, page, "request_id")

	for name, token := range map[string]string{"no token": "", "another session's token": hidden(t, attackerPage, "csrf_token")} {
		t.Run(name, func(t *testing.T) {
			form := url.Values{"username": {"alice"}, "password": {"alice-pw"}, "request_id": {rid}}
			if token != "" {
				form.Set("csrf_token", token)
			}
			if r := victim.post("/oauth/login", form); r.Status != 403 {
				t.Fatalf("login post: %d, want 403", r.Status)
			}
			if r := victim.post("/oauth/consent", url.Values{"consent": {"allow"}, "request_id": {rid}, "csrf_token": {token}}); r.Status != 403 {
				t.Fatalf("consent post: %d, want 403", r.Status)
			}
			if r := victim.post("/oauth/logout", url.Values{"csrf_token": {token}}); r.Status != 403 {
				t.Fatalf("logout post: %d, want 403", r.Status)
			}
		})
	}
	// The victim's own request, posted from the attacker's session with
	// the attacker's valid token, is not found there.
	r := attacker.login(attackerPage, "alice", "alice-pw")
	if r.Status != 303 {
		t.Fatalf("attacker's own login: %d", r.Status)
	}
	form := url.Values{"consent": {"allow"}, "request_id": {rid}, "csrf_token": {hidden(t, attackerPage, "csrf_token")}}
	if r := attacker.post("/oauth/consent", form); r.Status == 303 || r.Status == 302 {
		t.Fatalf("another session's request was approved: %d %s", r.Status, r.Header.Get("Location"))
	}
}

// TestAuthorizeLoginFailures: a failed sign-in says so in the same words
// whether or not the user exists, and a session id is not reused across
// sign-in.
func TestAuthorizeLoginFailures(t *testing.T) {
	g, _ := startAuthorize(t, "")
	b := newBrowser(t, g.URL)
	page := b.follow(b.authorize(webParams("s")))
	wrong := b.login(page, "alice", "nope")
	unknown := b.login(page, "zed", "nope")
	const msg = "Incorrect username or password."
	for name, r := range map[string]*gt.Response{"wrong password": wrong, "unknown user": unknown} {
		if r.Status != 200 || !strings.Contains(string(r.Body), msg) {
			t.Fatalf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	if strings.Replace(string(wrong.Body), `value="alice"`, `value="zed"`, 1) != string(unknown.Body) {
		t.Fatalf("the pages for a wrong password and an unknown user differ")
	}
	before := sessionCookie(t, b)
	if r := b.login(page, "alice", "alice-pw"); r.Status != 303 {
		t.Fatalf("login: %d", r.Status)
	}
	if after := sessionCookie(t, b); after == before || after == "" {
		t.Fatalf("the session id did not change at sign-in")
	}
}

func sessionCookie(t *testing.T, b *browser) string {
	u, _ := url.Parse(b.base + "/oauth/")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "oauth_session" {
			return c.Value
		}
	}
	return ""
}

// TestAuthorizeDeny: Deny sends access_denied with the state.
func TestAuthorizeDeny(t *testing.T) {
	g, _ := startAuthorize(t, "")
	b := newBrowser(t, g.URL)
	consent := b.follow(b.login(b.follow(b.authorize(webParams("deny-state"))), "alice", "alice-pw"))
	u := clientRedirect(t, b.decide(consent, "deny"))
	if q := u.Query(); q.Get("error") != "access_denied" || q.Get("state") != "deny-state" || q.Has("code") {
		t.Fatalf("deny redirect: %s", u)
	}
	// The request is used up.
	if r := b.decide(consent, "allow"); r.Status != 400 {
		t.Fatalf("allow after deny: %d, want 400", r.Status)
	}
}

// TestAuthorizeConsentMemory: approved scopes are not asked again; wider
// scopes are; consent skip never asks; consent always always asks.
func TestAuthorizeConsentMemory(t *testing.T) {
	g, _ := startAuthorize(t, "")
	b := newBrowser(t, g.URL)
	b.approve(webParams("1", "scope", "read"), "alice", "alice-pw")

	u := clientRedirect(t, b.follow(b.authorize(webParams("2", "scope", "read"))))
	if u.Query().Get("code") == "" || u.Query().Get("state") != "2" {
		t.Fatalf("remembered consent: %s", u)
	}
	if page := b.follow(b.authorize(webParams("3", "scope", "read write"))); !isPage(page, "wants to access your account") {
		t.Fatalf("wider scope was not asked: %d %s", page.Status, page.Body)
	}
	// Another person is asked.
	other := newBrowser(t, g.URL)
	page := other.follow(other.login(other.follow(other.authorize(webParams("4", "scope", "read"))), "bob", "bob-pw"))
	if !isPage(page, "wants to access your account") {
		t.Fatalf("bob was not asked: %d", page.Status)
	}

	first := url.Values{"response_type": {"code"}, "client_id": {"first"}, "state": {"f"}}
	u = clientRedirect(t, b.follow(b.authorize(first)))
	if u.Query().Get("code") == "" {
		t.Fatalf("consent skip asked: %s", u)
	}
	strict := url.Values{"response_type": {"code"}, "client_id": {"strict"}, "state": {"s"}}
	for i := range 2 {
		page := b.follow(b.authorize(strict))
		if !isPage(page, "wants to access your account") {
			t.Fatalf("consent always, round %d: %d %s", i, page.Status, page.Body)
		}
		b.decide(page, "allow")
	}
}

// TestAuthorizeLogout: signing out ends the session; the next request
// asks to sign in again.
func TestAuthorizeLogout(t *testing.T) {
	g, _ := startAuthorize(t, "")
	b := newBrowser(t, g.URL)
	b.approve(webParams("1"), "alice", "alice-pw")
	consent := b.follow(b.authorize(webParams("2", "scope", "read write")))
	csrf := hidden(t, consent, "csrf_token")

	r := b.post("/oauth/logout", url.Values{"csrf_token": {csrf}})
	if r.Status != 200 || !strings.Contains(string(r.Body), "signed out") {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	if loc := location(t, b.authorize(webParams("3"))); !strings.HasPrefix(loc, "/oauth/login") {
		t.Fatalf("after logout authorize went to %q, want sign-in", loc)
	}
	// "Not you?" on the consent page signs out and returns to sign-in for
	// the same request.
	consent = b.follow(b.login(b.follow(b.authorize(webParams("4", "scope", "read write"))), "alice", "alice-pw"))
	r = b.post("/oauth/logout", url.Values{"csrf_token": {hidden(t, consent, "csrf_token")}, "request_id": {hidden(t, consent, "request_id")}})
	page := b.follow(r)
	if !isPage(page, "Sign in") {
		t.Fatalf("after Not you?: %d %s", page.Status, page.Body)
	}
	u := clientRedirect(t, b.decide(b.follow(b.login(page, "bob", "bob-pw")), "allow"))
	if u.Query().Get("state") != "4" || u.Query().Get("code") == "" {
		t.Fatalf("bob's approval: %s", u)
	}
	if r := b.get("/oauth/logout"); r.Status != 405 {
		t.Fatalf("GET /oauth/logout: %d, want 405", r.Status)
	}
}

// TestAuthorizeTemplatesAndSessionTTL: `templates <dir>` replaces the
// screens it has files for, and session_ttl sets the cookie's lifetime.
func TestAuthorizeTemplatesAndSessionTTL(t *testing.T) {
	dir := t.TempDir()
	write(t, dir+"/login.html", `{{define "title"}}ACME sign-in{{end}}{{define "content"}}<h1>ACME sign-in for {{.AppName}}</h1>
<form method="post" action="{{.LoginURL}}"><input type="hidden" name="csrf_token" value="{{.CSRFToken}}"><input type="hidden" name="request_id" value="{{.RequestID}}">
<label for="u">User</label><input id="u" name="username"><label for="p">Password</label><input id="p" type="password" name="password"><button>Go</button></form>{{end}}`)
	g, _ := startAuthorize(t, "templates "+dir+"\n\tsession_ttl 10m")
	b := newBrowser(t, g.URL)
	r := b.authorize(webParams("s"))
	if c := r.Header.Get("Set-Cookie"); !strings.Contains(c, "Max-Age=600") {
		t.Fatalf("session cookie %q, want Max-Age=600", c)
	}
	page := b.follow(r)
	if !isPage(page, "ACME sign-in for Web App") {
		t.Fatalf("custom sign-in page: %d %s", page.Status, page.Body)
	}
	consent := b.follow(b.login(page, "alice", "alice-pw"))
	if !isPage(consent, "wants to access your account") {
		t.Fatalf("consent did not fall back to the embedded page: %d %s", consent.Status, consent.Body)
	}
}

// TestAuthorizeCodeBinding: a code works only for the client and the
// redirect URI it was issued to.
func TestAuthorizeCodeBinding(t *testing.T) {
	g, _ := startAuthorize(t, "")
	b := newBrowser(t, g.URL)
	code := func(ru string) string {
		p := webParams("s")
		p.Set("redirect_uri", ru)
		return b.approve(p, "alice", "alice-pw").Query().Get("code")
	}
	cases := []struct {
		name, client, secret, code, ru string
	}{
		{"another client", "first", "first-secret", code(webCB), webCB},
		{"another redirect URI", "web", "web-secret", code(webCB), webCB2},
		{"redirect URI left out", "web", "web-secret", code(webCB2), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			form := url.Values{"code": {c.code}}
			if c.ru != "" {
				form.Set("redirect_uri", c.ru)
			}
			r := redeem(t, g, c.client, c.secret, form)
			if r.Status != 400 || r.Str("error") != "invalid_grant" {
				t.Fatalf("%d %s, want 400 invalid_grant", r.Status, r.Body)
			}
		})
	}
	// The rightful redemption of a code issued to webCB2 works.
	r := redeem(t, g, "web", "web-secret", url.Values{"code": {code(webCB2)}, "redirect_uri": {webCB2}})
	if r.Status != 200 {
		t.Fatalf("redeeming with the right redirect URI: %d %s", r.Status, r.Body)
	}
}

// TestAuthorizeCodeExpires: a code older than code_ttl is refused.
func TestAuthorizeCodeExpires(t *testing.T) {
	g, _ := startAuthorize(t, "code_ttl 1ms")
	b := newBrowser(t, g.URL)
	u := b.approve(webParams("s"), "alice", "alice-pw")
	// The code was minted before approve returned; a loopback round trip
	// can be shorter than 1ms, so wait until the clock has passed its
	// lifetime for sure.
	for issued := time.Now(); time.Since(issued) < 3*time.Millisecond; {
		runtime.Gosched()
	}
	r := redeem(t, g, "web", "web-secret", url.Values{"code": {u.Query().Get("code")}, "redirect_uri": {webCB}})
	if r.Status != 400 || r.Str("error") != "invalid_grant" {
		t.Fatalf("an expired code: %d %s", r.Status, r.Body)
	}
}
