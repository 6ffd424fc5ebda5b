package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// adminOAuthBlock has one static client, so static ids, read-only answers
// and configured scopes (read from the static client, admin from the
// scopes list) can be checked.
const adminOAuthBlock = `
oauth {
	store memory
	scopes admin
	client static-svc {
		secret static-secret
		grants client_credentials
		scopes read write
	}
}`

func startAdminGateway(t *testing.T) *gt.Gateway {
	t.Helper()
	up := gt.StartUpstream(t)
	return gt.Start(t, gt.Config(adminOAuthBlock, fmt.Sprintf(`
oauth_server
oauth_protect
reverse_proxy %s`, up.Addr())))
}

// adminJSON sends a JSON request to the admin API.
func adminJSON(t *testing.T, g *gt.Gateway, method, path, body string) *gt.Response {
	t.Helper()
	var req *http.Request
	var err error
	if body != "" {
		req, err = http.NewRequest(method, g.AdminURL+path, strings.NewReader(body))
	} else {
		req, err = http.NewRequest(method, g.AdminURL+path, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost || method == http.MethodPatch {
		req.Header.Set("Content-Type", "application/json")
	}
	return gt.Do(t, req)
}

func wantError(t *testing.T, r *gt.Response, status int, code string) {
	t.Helper()
	if r.Status != status || r.Str("error") != code || (code != "" && r.Str("error_description") == "") {
		t.Fatalf("got %d %s, want %d with error %q and a description", r.Status, r.Body, status, code)
	}
}

func clientCredentials(t *testing.T, g *gt.Gateway, id, secret string) *gt.Response {
	t.Helper()
	return gt.PostForm(t, g.URL+"/oauth/token", id, secret, url.Values{"grant_type": {"client_credentials"}})
}

// TestAdminAPIClientLifecycle: register, read, list, change, rotate and
// delete a client over the admin API, with the token endpoint and the
// protected route agreeing at every step.
func TestAdminAPIClientLifecycle(t *testing.T) {
	g := startAdminGateway(t)

	r := adminJSON(t, g, "POST", "/oauth/clients", `{"client_name":"Partner","grant_types":["client_credentials"],"scope":"read admin","user_id":"partner-1"}`)
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id, secret := r.Str("client_id"), r.Str("client_secret")
	if id == "" || len(secret) < 43 || r.JSON["client_secret_expires_at"] != float64(0) || r.JSON["client_id_issued_at"] == nil {
		t.Fatalf("create answer lacks RFC 7591 fields: %s", r.Body)
	}
	if r.Str("token_endpoint_auth_method") != "client_secret_basic" || r.Str("scope") != "read admin" || r.Str("user_id") != "partner-1" {
		t.Fatalf("create answer: %s", r.Body)
	}

	tok := clientCredentials(t, g, id, secret)
	if tok.Status != 200 {
		t.Fatalf("token with the new client: %d %s", tok.Status, tok.Body)
	}
	access := tok.Str("access_token")
	if me := gt.Get(t, g.URL+"/oauth/me", access); me.Status != 200 || me.Str("user_id") != "partner-1" {
		t.Fatalf("me: %d %s", me.Status, me.Body)
	}

	// The secret is shown once: GET and list never carry it.
	show := adminJSON(t, g, "GET", "/oauth/clients/"+id, "")
	if show.Status != 200 || show.Str("client_secret") != "" || show.Str("client_name") != "Partner" || strings.Contains(string(show.Body), secret) {
		t.Fatalf("show: %d %s", show.Status, show.Body)
	}
	list := adminJSON(t, g, "GET", "/oauth/clients", "")
	var entries []map[string]any
	if err := json.Unmarshal(list.Body, &entries); err != nil || list.Status != 200 || strings.Contains(string(list.Body), secret) {
		t.Fatalf("list: %d %s", list.Status, list.Body)
	}
	found := map[string]bool{}
	for _, e := range entries {
		found[fmt.Sprint(e["client_id"])] = e["read_only"] == true
	}
	if ro, ok := found["static-svc"]; !ok || !ro {
		t.Fatalf("list lacks static-svc as read-only: %s", list.Body)
	}
	if ro, ok := found[id]; !ok || ro {
		t.Fatalf("list lacks %s as writable: %s", id, list.Body)
	}

	// PATCH changes only the given fields.
	p := adminJSON(t, g, "PATCH", "/oauth/clients/"+id, `{"client_name":"Partner Two","scope":"read"}`)
	if p.Status != 200 || p.Str("client_name") != "Partner Two" || p.Str("scope") != "read" || p.Str("user_id") != "partner-1" {
		t.Fatalf("patch: %d %s", p.Status, p.Body)
	}
	if tok := gt.PostForm(t, g.URL+"/oauth/token", id, secret, url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}}); tok.Status != 400 || tok.Str("error") != "invalid_scope" {
		t.Fatalf("narrowed client still got scope admin: %d %s", tok.Status, tok.Body)
	}

	// Rotation: the old secret is refused at once, the new one works.
	rot := adminJSON(t, g, "POST", "/oauth/clients/"+id+"/secret", "")
	newSecret := rot.Str("client_secret")
	if rot.Status != 200 || newSecret == "" || newSecret == secret {
		t.Fatalf("rotate: %d %s", rot.Status, rot.Body)
	}
	if r := clientCredentials(t, g, id, secret); r.Status != 401 || r.Str("error") != "invalid_client" {
		t.Fatalf("old secret after rotation: %d %s", r.Status, r.Body)
	}
	if r := clientCredentials(t, g, id, newSecret); r.Status != 200 {
		t.Fatalf("new secret after rotation: %d %s", r.Status, r.Body)
	}
	// A bare POST has no body, so it needs no Content-Type; the same POST
	// from a web page of another origin is refused by Caddy's admin
	// endpoint, and the secret stays.
	fromPage, _ := http.NewRequest("POST", g.AdminURL+"/oauth/clients/"+id+"/secret", nil)
	fromPage.Header.Set("Origin", "https://evil.example")
	if r := gt.Do(t, fromPage); r.Status != 403 {
		t.Fatalf("bodyless rotation from another origin: %d %s", r.Status, r.Body)
	}
	if r := clientCredentials(t, g, id, newSecret); r.Status != 200 {
		t.Fatalf("the secret changed after a refused rotation: %d %s", r.Status, r.Body)
	}
	bare, _ := http.NewRequest("POST", g.AdminURL+"/oauth/clients/"+id+"/secret", nil)
	bareRot := gt.Do(t, bare)
	if bareRot.Status != 200 || bareRot.Str("client_secret") == "" || bareRot.Str("client_secret") == newSecret {
		t.Fatalf("bare rotation: %d %s", bareRot.Status, bareRot.Body)
	}
	if r := clientCredentials(t, g, id, bareRot.Str("client_secret")); r.Status != 200 {
		t.Fatalf("secret of the bare rotation: %d %s", r.Status, r.Body)
	}

	// Deletion ends the client and its tokens.
	if d := adminJSON(t, g, "DELETE", "/oauth/clients/"+id, ""); d.Status != 204 {
		t.Fatalf("delete: %d %s", d.Status, d.Body)
	}
	if me := gt.Get(t, g.URL+"/oauth/me", access); me.Status != 401 {
		t.Fatalf("token of a deleted client: %d %s", me.Status, me.Body)
	}
	if r := clientCredentials(t, g, id, newSecret); r.Status != 401 {
		t.Fatalf("deleted client got a token: %d %s", r.Status, r.Body)
	}
	wantError(t, adminJSON(t, g, "GET", "/oauth/clients/"+id, ""), 404, "not_found")
	wantError(t, adminJSON(t, g, "DELETE", "/oauth/clients/"+id, ""), 404, "not_found")
	// A deleted id is never handed out again, so its old tokens stay dead.
	wantError(t, adminJSON(t, g, "POST", "/oauth/clients", `{"client_id":"`+id+`","grant_types":["client_credentials"]}`), 409, "invalid_client_metadata")
}

// TestAdminAPIErrors: every bad request gets its RFC 7591 §3.2.2 error (or
// the right 4xx), never a 500.
func TestAdminAPIErrors(t *testing.T) {
	g := startAdminGateway(t)
	pub := adminJSON(t, g, "POST", "/oauth/clients", `{"client_id":"spa","client_name":"SPA","token_endpoint_auth_method":"none","redirect_uris":["https://spa.example.com/cb"],"grant_types":["authorization_code"]}`)
	if pub.Status != 201 || pub.Str("client_secret") != "" || pub.JSON["client_secret_expires_at"] != nil || pub.Str("client_id") != "spa" {
		t.Fatalf("public client: %d %s", pub.Status, pub.Body)
	}

	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"bad redirect uri", "POST", "/oauth/clients", `{"redirect_uris":["http://evil.example.com/cb"],"grant_types":["authorization_code"]}`, 400, "invalid_redirect_uri"},
		{"fragment redirect uri", "POST", "/oauth/clients", `{"redirect_uris":["https://a.example.com/cb#x"]}`, 400, "invalid_redirect_uri"},
		{"code grant without redirect uri", "POST", "/oauth/clients", `{"client_name":"x"}`, 400, "invalid_redirect_uri"},
		{"unknown grant", "POST", "/oauth/clients", `{"grant_types":["implicit"]}`, 400, "invalid_client_metadata"},
		{"scope not configured", "POST", "/oauth/clients", `{"grant_types":["client_credentials"],"scope":"read delete"}`, 400, "invalid_client_metadata"},
		{"malformed scope", "POST", "/oauth/clients", `{"grant_types":["client_credentials"],"scope":"read  write"}`, 400, "invalid_client_metadata"},
		{"unknown auth method", "POST", "/oauth/clients", `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt"}`, 400, "invalid_client_metadata"},
		{"public client_credentials", "POST", "/oauth/clients", `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"none"}`, 400, "invalid_client_metadata"},
		{"bad consent", "POST", "/oauth/clients", `{"grant_types":["client_credentials"],"consent":"never"}`, 400, "invalid_client_metadata"},
		{"bad client_id", "POST", "/oauth/clients", `{"client_id":"a:b","grant_types":["client_credentials"]}`, 400, "invalid_client_metadata"},
		{"not json", "POST", "/oauth/clients", `{"grant_types":`, 400, "invalid_client_metadata"},
		{"static id taken", "POST", "/oauth/clients", `{"client_id":"static-svc","grant_types":["client_credentials"]}`, 409, "invalid_client_metadata"},
		{"dynamic id taken", "POST", "/oauth/clients", `{"client_id":"spa","grant_types":["client_credentials"]}`, 409, "invalid_client_metadata"},
		{"patch static", "PATCH", "/oauth/clients/static-svc", `{"client_name":"x"}`, 403, "read_only"},
		{"rotate static", "POST", "/oauth/clients/static-svc/secret", ``, 403, "read_only"},
		{"delete static", "DELETE", "/oauth/clients/static-svc", ``, 403, "read_only"},
		{"patch unknown", "PATCH", "/oauth/clients/nope", `{"client_name":"x"}`, 404, "not_found"},
		{"rotate unknown", "POST", "/oauth/clients/nope/secret", ``, 404, "not_found"},
		{"show unknown", "GET", "/oauth/clients/nope", ``, 404, "not_found"},
		{"patch bad redirect", "PATCH", "/oauth/clients/spa", `{"redirect_uris":["javascript:alert(1)"]}`, 400, "invalid_redirect_uri"},
		{"patch auth method", "PATCH", "/oauth/clients/spa", `{"token_endpoint_auth_method":"client_secret_basic"}`, 400, "invalid_client_metadata"},
		{"patch client_id", "PATCH", "/oauth/clients/spa", `{"client_id":"other"}`, 400, "invalid_client_metadata"},
		{"rotate public", "POST", "/oauth/clients/spa/secret", ``, 400, "invalid_client_metadata"},
		{"unknown resource", "GET", "/oauth/nothing", ``, 404, "not_found"},
		{"wrong method", "PUT", "/oauth/clients", ``, 405, "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, adminJSON(t, g, c.method, c.path, c.body), c.status, c.code)
		})
	}

	// A browser form cannot reach the API: JSON content type required.
	req, _ := http.NewRequest("POST", g.AdminURL+"/oauth/clients", strings.NewReader(`{"grant_types":["client_credentials"]}`))
	req.Header.Set("Content-Type", "text/plain")
	wantError(t, gt.Do(t, req), 415, "invalid_request")

	// The static client reads fine, marked read-only, and a failed PATCH
	// left the public client as it was.
	if s := adminJSON(t, g, "GET", "/oauth/clients/static-svc", ""); s.Status != 200 || s.JSON["read_only"] != true || s.Str("scope") != "read write" {
		t.Fatalf("static client: %d %s", s.Status, s.Body)
	}
	if s := adminJSON(t, g, "GET", "/oauth/clients/spa", ""); s.Status != 200 || s.JSON["redirect_uris"].([]any)[0] != "https://spa.example.com/cb" {
		t.Fatalf("public client after failed patches: %d %s", s.Status, s.Body)
	}
	// The oauth block's scopes are advertised with the static clients' ones.
	if md := gt.Get(t, g.URL+"/.well-known/oauth-authorization-server", ""); fmt.Sprint(md.JSON["scopes_supported"]) != "[admin read write]" {
		t.Fatalf("scopes_supported: %v", md.JSON["scopes_supported"])
	}
}

// TestAdminAPIRevokeUser: POST /oauth/users/{id}/revoke ends that user's
// tokens only.
func TestAdminAPIRevokeUser(t *testing.T) {
	g := startAdminGateway(t)
	mk := func(user string) (string, string) {
		r := adminJSON(t, g, "POST", "/oauth/clients", `{"grant_types":["client_credentials"],"scope":"read","user_id":"`+user+`"}`)
		if r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		return r.Str("client_id"), r.Str("client_secret")
	}
	aliceID, aliceSecret := mk("alice")
	bobID, bobSecret := mk("bob")
	aliceTok := clientCredentials(t, g, aliceID, aliceSecret).Str("access_token")
	bobTok := clientCredentials(t, g, bobID, bobSecret).Str("access_token")

	r := adminJSON(t, g, "POST", "/oauth/users/alice/revoke", "")
	if r.Status != 200 || r.JSON["revoked"] != true {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if me := gt.Get(t, g.URL+"/oauth/me", aliceTok); me.Status != 401 {
		t.Fatalf("alice's token after revoke: %d", me.Status)
	}
	if me := gt.Get(t, g.URL+"/oauth/me", bobTok); me.Status != 200 {
		t.Fatalf("bob's token after alice's revoke: %d", me.Status)
	}
	wantError(t, adminJSON(t, g, "GET", "/oauth/users/alice/revoke", ""), 405, "invalid_request")
}

// TestAdminAPIFollowsReloads: after a reload the admin API serves the new
// config's oauth app (Caddy starts the new config before stopping the old
// one), and answers 503 once a config without the oauth app is loaded.
func TestAdminAPIFollowsReloads(t *testing.T) {
	caddyfile := gt.Config(`
oauth {
	scopes read
}`, `oauth_server
respond "hi"`)
	g := gt.Start(t, caddyfile)
	r := adminJSON(t, g, "POST", "/oauth/clients", `{"grant_types":["client_credentials"],"scope":"read"}`)
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id := r.Str("client_id")

	load := func(body string) {
		t.Helper()
		if resp := g.Reload(body, false); resp.Status != 200 {
			t.Fatalf("load: %d %s", resp.Status, resp.Body)
		}
	}
	rendered := g.Render(caddyfile)
	load(rendered)
	if s := adminJSON(t, g, "GET", "/oauth/clients/"+id, ""); s.Status != 200 {
		t.Fatalf("after reloading the same config: %d %s", s.Status, s.Body)
	}
	noOAuth := strings.Replace(strings.Replace(rendered, "oauth {\n\t\tscopes read\n\t}", "", 1), "oauth_server", "", 1)
	if strings.Contains(noOAuth, "oauth") {
		t.Fatalf("the config still has oauth in it:\n%s", noOAuth)
	}
	load(noOAuth)
	r = adminJSON(t, g, "GET", "/oauth/clients", "")
	if r.Status != 503 || r.Str("error") != "temporarily_unavailable" {
		t.Fatalf("no oauth app: %d %s", r.Status, r.Body)
	}
}

// oauthCLI runs `caddy oauth ...` against a gateway's admin endpoint.
func oauthCLI(t *testing.T, g *gt.Gateway, args ...string) (string, error) {
	t.Helper()
	args = append(append([]string{"oauth"}, args...), "--address", g.Params.Admin)
	out, err := exec.Command(gt.Binary(t), args...).CombinedOutput()
	return string(out), err
}

// TestOAuthCommands: every `caddy oauth` subcommand against a running
// gateway, in JSON and table output, and their errors.
func TestOAuthCommands(t *testing.T) {
	g := startAdminGateway(t)

	out, err := oauthCLI(t, g, "client", "add", "--name", "CLI App", "--redirect-uri", "https://app.example.com/cb",
		"--redirect-uri", "http://localhost:8000/cb", "--grant", "authorization_code", "--grant", "refresh_token",
		"--grant", "client_credentials", "--scope", "read", "--user", "carol", "--json")
	if err != nil {
		t.Fatalf("add: %v\n%s", err, out)
	}
	var added map[string]any
	if err := json.Unmarshal([]byte(out), &added); err != nil {
		t.Fatalf("add --json printed no JSON: %v\n%s", err, out)
	}
	id, secret := added["client_id"].(string), added["client_secret"].(string)
	if id == "" || secret == "" || len(added["redirect_uris"].([]any)) != 2 {
		t.Fatalf("add: %s", out)
	}
	if tok := clientCredentials(t, g, id, secret); tok.Status != 200 {
		t.Fatalf("token for the CLI client: %d %s", tok.Status, tok.Body)
	}

	// Readable output: a table for list, key: value for show.
	out, err = oauthCLI(t, g, "client", "list")
	if err != nil || !strings.Contains(out, "CLIENT_ID") || !strings.Contains(out, id) || !strings.Contains(out, "static-svc") ||
		!strings.Contains(out, "config (read-only)") || strings.Contains(out, secret) {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, err = oauthCLI(t, g, "client", "show", id)
	if err != nil || !strings.Contains(out, "CLI App") || !strings.Contains(out, "carol") || strings.Contains(out, secret) {
		t.Fatalf("show: %v\n%s", err, out)
	}
	out, err = oauthCLI(t, g, "client", "list", "--json")
	var list []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 {
		t.Fatalf("list --json: %v\n%s", err, out)
	}

	out, err = oauthCLI(t, g, "client", "update", id, "--name", "Renamed", "--scope", "read write")
	if err != nil || !strings.Contains(out, "Renamed") || !strings.Contains(out, "read write") || !strings.Contains(out, "carol") {
		t.Fatalf("update: %v\n%s", err, out)
	}

	out, err = oauthCLI(t, g, "client", "rotate-secret", id)
	if err != nil || !strings.Contains(out, "client_secret:") || !strings.Contains(out, "not shown again") {
		t.Fatalf("rotate-secret: %v\n%s", err, out)
	}
	newSecret := ""
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "client_secret:" {
			newSecret = f[1]
		}
	}
	if r := clientCredentials(t, g, id, secret); r.Status != 401 {
		t.Fatalf("old secret after CLI rotation: %d", r.Status)
	}
	tok := clientCredentials(t, g, id, newSecret)
	if tok.Status != 200 {
		t.Fatalf("new secret from the table output: %d %s", tok.Status, tok.Body)
	}

	out, err = oauthCLI(t, g, "user", "revoke", "carol")
	if err != nil || !strings.Contains(out, "carol") {
		t.Fatalf("user revoke: %v\n%s", err, out)
	}
	if me := gt.Get(t, g.URL+"/oauth/me", tok.Str("access_token")); me.Status != 401 {
		t.Fatalf("carol's token after user revoke: %d", me.Status)
	}

	out, err = oauthCLI(t, g, "client", "remove", id)
	if err != nil || !strings.Contains(out, "removed") {
		t.Fatalf("remove: %v\n%s", err, out)
	}

	// Errors: non-zero exit with the RFC 7591 error, JSON with --json.
	errCases := [][]string{
		{"client", "show", id},
		{"client", "remove", "static-svc"},
		{"client", "rotate-secret", "static-svc"},
		{"client", "update", "static-svc", "--name", "x"},
		{"client", "add", "--grant", "authorization_code", "--redirect-uri", "http://evil.example.com/cb"},
		{"client", "add", "--grant", "client_credentials", "--scope", "delete"},
		{"client", "add", "--grant", "client_credentials", "--id", "static-svc"},
	}
	wantCodes := []string{"not_found", "read_only", "read_only", "read_only", "invalid_redirect_uri", "invalid_client_metadata", "invalid_client_metadata"}
	for i, args := range errCases {
		out, err := oauthCLI(t, g, args...)
		if err == nil || !strings.Contains(out, wantCodes[i]) {
			t.Errorf("%v: want failure with %s, got err=%v\n%s", args, wantCodes[i], err, out)
		}
		out, err = oauthCLI(t, g, append(args, "--json")...)
		var e map[string]any
		if err == nil || json.Unmarshal([]byte(firstLine(out)), &e) != nil || e["error"] != wantCodes[i] {
			t.Errorf("%v --json: want JSON error %s, got err=%v\n%s", args, wantCodes[i], err, out)
		}
	}
	if out, err := oauthCLI(t, g, "client", "show"); err == nil {
		t.Errorf("show without an id succeeded:\n%s", out)
	}

	// An admin address where nothing listens: a clear failure.
	cmd := exec.Command(gt.Binary(t), "oauth", "client", "list", "--address", fmt.Sprintf("127.0.0.1:%d", gt.FreePort(t)))
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "admin API") {
		t.Errorf("unreachable admin: err=%v\n%s", err, out)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// TestAdminAPIRevokeUserForgetsConsent: after POST /oauth/users/{id}/revoke
// the user's sign-in session is over, a client the user had approved must
// ask again once they sign in anew, and the user's code-flow tokens are
// refused.
func TestAdminAPIRevokeUserForgetsConsent(t *testing.T) {
	g := gt.Start(t, gt.Config(fmt.Sprintf(`
oauth {
	store memory
	user alice %s
	client webapp {
		secret webapp-secret
		redirect_uri https://webapp.example.com/cb
		grants authorization_code refresh_token
		scopes read
	}
}`, gt.BcryptHash(t, "alice-pw")), `oauth_server
respond "site"`))
	b := newBrowser(t, g.URL)
	params := url.Values{"response_type": {"code"}, "client_id": {"webapp"}, "redirect_uri": {"https://webapp.example.com/cb"}, "scope": {"read"}}
	code := b.approve(params, "alice", "alice-pw").Query().Get("code")
	tok := gt.PostForm(t, g.URL+"/oauth/token", "webapp", "webapp-secret", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://webapp.example.com/cb"}})
	if tok.Status != 200 {
		t.Fatalf("code exchange: %d %s", tok.Status, tok.Body)
	}
	consentShown := func() bool {
		t.Helper()
		page := b.follow(b.authorize(params))
		return isPage(page, "wants to access your account")
	}
	if consentShown() {
		t.Fatal("the consent was not remembered before the revoke")
	}
	if r := adminJSON(t, g, "POST", "/oauth/users/alice/revoke", ""); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	r := b.authorize(params)
	if loc := location(t, r); !strings.HasPrefix(loc, "/oauth/login") {
		t.Fatalf("after the revoke the browser went to %q, want the sign-in page: the session survived", loc)
	}
	r = b.login(b.follow(r), "alice", "alice-pw")
	if page := b.follow(r); !isPage(page, "wants to access your account") {
		t.Fatalf("the consent survived the user's revoke: %d %s", page.Status, page.Body)
	}
	if me := gt.Get(t, g.URL+"/oauth/me", tok.Str("access_token")); me.Status != 401 {
		t.Fatalf("token after the user's revoke: %d", me.Status)
	}
}
