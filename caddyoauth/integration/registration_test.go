package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
	"github.com/caddyoauth/gateway/internal/poll"
	"github.com/caddyoauth/gateway/internal/testredis"
)

// Dynamic client registration (RFC 7591) and management (RFC 7592).

// regToken is the initial access token of `registration token` gateways.
const regToken = "initial-access-token-for-tests"

// agentMetadata is what an MCP client registers: a public native app with
// a loopback redirect URI.
const agentMetadata = `{"client_name":"Helpful Agent","redirect_uris":["http://127.0.0.1/callback"],
	"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`

// startRegistration runs a gateway whose dynamic_clients block holds
// dynamic, with the user alice, the oauth block's scopes read and write, a
// static client whose scope (admin) and name registered clients may not
// take, and extra oauth options (default: the registration limit off,
// as these tests send many requests from one address).
func startRegistration(t *testing.T, dynamic, extra string, opts ...gt.Option) *gt.Gateway {
	t.Helper()
	if extra == "" {
		extra = "rate_limit {\n\tregister off\n}"
	}
	return gt.Start(t, gt.Config(fmt.Sprintf(`
oauth {
	store memory
	scopes read write
	user alice %s u-alice
	client partner {
		name "Partner Portal"
		secret partner-secret
		grants client_credentials
		scopes admin
	}
	%s
	dynamic_clients {
		%s
	}
}`, gt.BcryptHash(t, "alice-pw"), extra, dynamic), `
oauth_server
oauth_protect
respond "ok"`), append([]gt.Option{gt.WithEnv("REG_TOKEN=" + regToken)}, opts...)...)
}

// regCall sends a registration or management request with a JSON body (none
// when empty) and a bearer token (none when empty).
func regCall(t *testing.T, method, target, token, body string, headers ...string) *gt.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	return gt.Do(t, req)
}

func register(t *testing.T, g *gt.Gateway, token, body string) *gt.Response {
	t.Helper()
	return regCall(t, http.MethodPost, g.URL+"/oauth/register", token, body)
}

// mustRegister registers a client and returns its answer.
func mustRegister(t *testing.T, g *gt.Gateway, token, body string) *gt.Response {
	t.Helper()
	r := register(t, g, token, body)
	if r.Status != http.StatusCreated {
		t.Fatalf("registration: %d %s", r.Status, r.Body)
	}
	return r
}

// wantRegChallenge checks a 401 answer and its RFC 6750 challenge: error is
// "" when the challenge must carry no error code.
func wantRegChallenge(t *testing.T, r *gt.Response, code string) {
	t.Helper()
	ch := r.Header.Get("WWW-Authenticate")
	if r.Status != http.StatusUnauthorized || !strings.HasPrefix(ch, "Bearer ") || r.Str("error") != "invalid_token" {
		t.Fatalf("got %d %q %s, want 401 with a Bearer challenge", r.Status, ch, r.Body)
	}
	if has := strings.Contains(ch, `error="`); has != (code != "") || (code != "" && !strings.Contains(ch, `error="`+code+`"`)) {
		t.Fatalf("challenge %q, want error code %q", ch, code)
	}
}

// TestRegistrationOpen: with open registration anyone registers a public
// or a confidential client and gets every RFC 7591 and RFC 7592 field;
// the metadata names the endpoint, and registration_client_uri is built
// from the issuer whatever the Host header says.
func TestRegistrationOpen(t *testing.T) {
	g := startRegistration(t, "registration open", "")

	md := gt.Get(t, g.URL+"/.well-known/oauth-authorization-server", "")
	if md.Str("registration_endpoint") != g.URL+"/oauth/register" {
		t.Fatalf("metadata registration_endpoint: %s", md.Body)
	}

	// The site's host matcher ignores the port, so this Host reaches it.
	r := regCall(t, http.MethodPost, g.URL+"/oauth/register", "", agentMetadata, "Host", "127.0.0.1:1")
	if r.Status != http.StatusCreated {
		t.Fatalf("public registration: %d %s", r.Status, r.Body)
	}
	id := r.Str("client_id")
	issued, _ := r.JSON["client_id_issued_at"].(float64)
	switch {
	case !strings.HasPrefix(id, "c_"), r.Str("client_secret") != "", r.JSON["client_secret_expires_at"] != nil:
		t.Fatalf("a public client gets a client_id and no secret: %s", r.Body)
	case time.Since(time.Unix(int64(issued), 0)) > time.Minute:
		t.Fatalf("client_id_issued_at: %s", r.Body)
	case r.Str("token_endpoint_auth_method") != "none", r.Str("client_name") != "Helpful Agent":
		t.Fatalf("metadata: %s", r.Body)
	case fmt.Sprint(strs(r.JSON["redirect_uris"])) != "[http://127.0.0.1/callback]",
		fmt.Sprint(strs(r.JSON["grant_types"])) != "[authorization_code refresh_token]",
		fmt.Sprint(strs(r.JSON["response_types"])) != "[code]":
		t.Fatalf("redirect_uris, grant_types, response_types: %s", r.Body)
	case r.Str("scope") != "read write":
		t.Fatalf("a registration naming no scope gets the policy's: %s", r.Body)
	case len(r.Str("registration_access_token")) < 43:
		t.Fatalf("registration_access_token: %s", r.Body)
	case r.Str("registration_client_uri") != g.URL+"/oauth/register/"+id:
		t.Fatalf("registration_client_uri %q, want it on the issuer %s", r.Str("registration_client_uri"), g.URL)
	case r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Content-Type") != "application/json":
		t.Fatalf("headers: %v", r.Header)
	}

	conf := mustRegister(t, g, "", `{"client_name":"Web Agent","redirect_uris":["https://agent.example.net/cb"],
		"token_endpoint_auth_method":"client_secret_post","scope":"read"}`)
	switch {
	case len(conf.Str("client_secret")) < 43, conf.JSON["client_secret_expires_at"] != float64(0):
		t.Fatalf("a confidential client gets a secret that does not expire: %s", conf.Body)
	case conf.Str("token_endpoint_auth_method") != "client_secret_post", conf.Str("scope") != "read",
		fmt.Sprint(strs(conf.JSON["grant_types"])) != "[authorization_code]":
		t.Fatalf("confidential metadata (RFC 7591 default grant): %s", conf.Body)
	case conf.Str("client_id") == id || conf.Str("registration_access_token") == r.Str("registration_access_token"):
		t.Fatalf("two registrations share an id or a token")
	}
	// Neither secret nor token reaches the log.
	for _, secret := range []string{conf.Str("client_secret"), conf.Str("registration_access_token"), r.Str("registration_access_token")} {
		if strings.Contains(g.Logs(), secret) {
			t.Fatal("a secret of a registration is in the log")
		}
	}
}

// TestRegistrationOff: by default nothing registers and the metadata
// names no registration endpoint.
func TestRegistrationOff(t *testing.T) {
	g := startRegistration(t, "metadata_documents off", "")
	if r := register(t, g, "", agentMetadata); r.Status != http.StatusNotFound {
		t.Fatalf("registration while off: %d %s", r.Status, r.Body)
	}
	if r := regCall(t, http.MethodGet, g.URL+"/oauth/register/c_x", "tok", ""); r.Status != http.StatusNotFound {
		t.Fatalf("configuration endpoint while off: %d %s", r.Status, r.Body)
	}
	if md := gt.Get(t, g.URL+"/.well-known/oauth-authorization-server", ""); md.JSON["registration_endpoint"] != nil {
		t.Fatalf("metadata names a registration endpoint: %s", md.Body)
	}
}

// TestRegistrationToken: registration token takes the initial access
// token as a bearer token (RFC 7591 §3), and only it; such registrations
// may get client_credentials.
func TestRegistrationToken(t *testing.T) {
	g := startRegistration(t, `registration token {env.REG_TOKEN}
grants authorization_code refresh_token client_credentials`, "")
	cc := `{"client_name":"Batch job","grant_types":["client_credentials"],"scope":"read"}`

	wantRegChallenge(t, register(t, g, "", cc), "")
	wantRegChallenge(t, register(t, g, "wrong-token", cc), "invalid_token")
	wantRegChallenge(t, register(t, g, regToken+"x", cc), "invalid_token")
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/oauth/register", strings.NewReader(cc))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("partner", "partner-secret")
	wantRegChallenge(t, gt.Do(t, req), "")
	if list := adminJSON(t, g, "GET", "/oauth/clients", ""); strings.Contains(string(list.Body), "Batch job") {
		t.Fatalf("a refused registration was stored: %s", list.Body)
	}

	r := mustRegister(t, g, regToken, cc)
	tok := clientCredentials(t, g, r.Str("client_id"), r.Str("client_secret"))
	if tok.Status != 200 || tok.Str("scope") != "read" {
		t.Fatalf("client_credentials for a client registered with the token: %d %s", tok.Status, tok.Body)
	}
	if me := gt.Get(t, g.URL+"/oauth/me", tok.Str("access_token")); me.Status != 200 || me.Str("user_id") != "" {
		t.Fatalf("its token acts as no user: %d %s", me.Status, me.Body)
	}
	if strings.Contains(g.Logs(), regToken) {
		t.Fatal("the initial access token is in the log")
	}
}

// TestRegistrationErrors: every refused registration gets the RFC 7591
// §3.2.2 error, and none is stored.
func TestRegistrationErrors(t *testing.T) {
	g := startRegistration(t, "registration open", "")
	withURI := func(uri string) string {
		return `{"redirect_uris":["` + uri + `"],"token_endpoint_auth_method":"none"}`
	}
	for _, tc := range []struct {
		name, body, code string
	}{
		{"http on a host that is not loopback", withURI("http://app.example.com/cb"), "invalid_redirect_uri"},
		{"fragment", withURI("https://app.example.com/cb#x"), "invalid_redirect_uri"},
		{"relative", withURI("/cb"), "invalid_redirect_uri"},
		{"no scheme", withURI("app.example.com/cb"), "invalid_redirect_uri"},
		{"user info", withURI("https://user@app.example.com/cb"), "invalid_redirect_uri"},
		{"javascript", withURI("javascript:alert(1)"), "invalid_redirect_uri"},
		{"private-use scheme not a domain", withURI("myapp:/cb"), "invalid_redirect_uri"},
		{"no redirect URI for authorization_code", `{"token_endpoint_auth_method":"none"}`, "invalid_redirect_uri"},
		{"client_credentials under open registration", `{"grant_types":["client_credentials"]}`, "invalid_client_metadata"},
		{"password", `{"grant_types":["password"],"redirect_uris":["https://app.example.com/cb"]}`, "invalid_client_metadata"},
		{"unknown grant", `{"grant_types":["implicit"],"redirect_uris":["https://app.example.com/cb"]}`, "invalid_client_metadata"},
		{"scope outside the policy", `{"scope":"read admin","redirect_uris":["https://app.example.com/cb"]}`, "invalid_client_metadata"},
		{"malformed scope", `{"scope":"read\"","redirect_uris":["https://app.example.com/cb"]}`, "invalid_client_metadata"},
		{"response type token", `{"response_types":["token"],"redirect_uris":["https://app.example.com/cb"]}`, "invalid_client_metadata"},
		{"response type without its grant", `{"response_types":["code"],"grant_types":["refresh_token"]}`, "invalid_client_metadata"},
		{"unknown auth method", `{"token_endpoint_auth_method":"private_key_jwt","redirect_uris":["https://app.example.com/cb"]}`, "invalid_client_metadata"},
		{"chosen client_id", `{"client_id":"mine","redirect_uris":["https://app.example.com/cb"]}`, "invalid_client_metadata"},
		{"owner", `{"user_id":"u-alice","redirect_uris":["https://app.example.com/cb"]}`, "invalid_client_metadata"},
		{"consent skip", `{"consent":"skip","redirect_uris":["https://app.example.com/cb"]}`, "invalid_client_metadata"},
		{"an operator's client's name", `{"client_name":"partner  PORTAL","redirect_uris":["https://app.example.com/cb"]}`, "invalid_client_metadata"},
		{"wrong JSON type", `{"redirect_uris":"https://app.example.com/cb"}`, "invalid_client_metadata"},
		{"not an object", `["https://app.example.com/cb"]`, "invalid_client_metadata"},
		{"not JSON", `redirect_uris=https://app.example.com/cb`, "invalid_client_metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, register(t, g, "", tc.body), http.StatusBadRequest, tc.code)
		})
	}
	t.Run("form content type", func(t *testing.T) {
		r := regCall(t, http.MethodPost, g.URL+"/oauth/register", "", agentMetadata, "Content-Type", "application/x-www-form-urlencoded")
		wantError(t, r, http.StatusBadRequest, "invalid_client_metadata")
	})
	t.Run("body too large", func(t *testing.T) {
		big := `{"client_name":"` + strings.Repeat("a", 40<<10) + `"}`
		wantError(t, register(t, g, "", big), http.StatusBadRequest, "invalid_client_metadata")
	})
	t.Run("GET", func(t *testing.T) {
		r := regCall(t, http.MethodGet, g.URL+"/oauth/register", "", "")
		if r.Status != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "POST" {
			t.Fatalf("GET /oauth/register: %d %v", r.Status, r.Header)
		}
	})
	if list := adminJSON(t, g, "GET", "/oauth/clients", ""); strings.Count(string(list.Body), `"client_id"`) != 1 {
		t.Fatalf("a refused registration was stored: %s", list.Body)
	}
	// Private-use schemes (RFC 8252 §7.1) and every loopback form are fine.
	mustRegister(t, g, "", `{"redirect_uris":["com.example.agent:/cb","http://[::1]/cb","http://localhost:8000/cb"],"token_endpoint_auth_method":"none"}`)
}

// TestRegistrationManagement: the registration access token reads,
// replaces and deletes its own client (RFC 7592) and no other; a deleted
// client's tokens stop working.
func TestRegistrationManagement(t *testing.T) {
	g := startRegistration(t, `registration token {env.REG_TOKEN}
grants authorization_code refresh_token client_credentials`, "")
	a := mustRegister(t, g, regToken, `{"client_name":"A","grant_types":["client_credentials"],"scope":"read write"}`)
	b := mustRegister(t, g, regToken, `{"client_name":"B","redirect_uris":["https://b.example.com/cb"],"token_endpoint_auth_method":"none"}`)
	aID, aTok, aURI, aSecret := a.Str("client_id"), a.Str("registration_access_token"), a.Str("registration_client_uri"), a.Str("client_secret")
	bTok, bURI := b.Str("registration_access_token"), b.Str("registration_client_uri")

	read := regCall(t, http.MethodGet, aURI, aTok, "")
	if read.Status != 200 || read.Str("client_id") != aID || read.Str("client_name") != "A" || read.Str("scope") != "read write" ||
		read.Str("registration_access_token") != aTok || read.Str("registration_client_uri") != aURI ||
		read.Str("client_secret") != "" || read.JSON["client_secret_expires_at"] != float64(0) || read.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("read: %d %s", read.Status, read.Body)
	}
	wantRegChallenge(t, regCall(t, http.MethodGet, aURI, "", ""), "")
	wantRegChallenge(t, regCall(t, http.MethodGet, aURI, bTok, ""), "invalid_token")
	wantRegChallenge(t, regCall(t, http.MethodGet, bURI, aTok, ""), "invalid_token")
	wantRegChallenge(t, regCall(t, http.MethodGet, aURI, regToken, ""), "invalid_token")
	wantRegChallenge(t, regCall(t, http.MethodGet, g.URL+"/oauth/register/partner", aTok, ""), "invalid_token")
	wantRegChallenge(t, regCall(t, http.MethodGet, g.URL+"/oauth/register/c_nobody", aTok, ""), "invalid_token")

	// PUT replaces: what it leaves out returns to its default.
	put := regCall(t, http.MethodPut, aURI, aTok, `{"client_id":"`+aID+`","client_name":"A two","grant_types":["client_credentials"],"scope":"read"}`)
	if put.Status != 200 || put.Str("client_name") != "A two" || put.Str("scope") != "read" || put.Str("registration_access_token") != aTok {
		t.Fatalf("update: %d %s", put.Status, put.Body)
	}
	put = regCall(t, http.MethodPut, aURI, aTok, `{"client_id":"`+aID+`","grant_types":["client_credentials"],"client_secret":"`+aSecret+`"}`)
	if put.Status != 200 || put.Str("client_name") != "" || put.Str("scope") != "read write" || put.Str("client_secret") != "" {
		t.Fatalf("update leaving out the name and scope: %d %s", put.Status, put.Body)
	}
	if tok := clientCredentials(t, g, aID, aSecret); tok.Status != 200 {
		t.Fatalf("the secret survives an update: %d %s", tok.Status, tok.Body)
	}
	for _, tc := range []struct{ name, body string }{
		{"no client_id", `{"grant_types":["client_credentials"]}`},
		{"another client's client_id", `{"client_id":"` + b.Str("client_id") + `","grant_types":["client_credentials"]}`},
		{"a chosen secret", `{"client_id":"` + aID + `","grant_types":["client_credentials"],"client_secret":"my-own-secret"}`},
		{"its token back", `{"client_id":"` + aID + `","grant_types":["client_credentials"],"registration_access_token":"` + aTok + `"}`},
		{"issued at", `{"client_id":"` + aID + `","grant_types":["client_credentials"],"client_id_issued_at":1}`},
		{"public now", `{"client_id":"` + aID + `","grant_types":["client_credentials"],"token_endpoint_auth_method":"none"}`},
		{"a scope outside the policy", `{"client_id":"` + aID + `","grant_types":["client_credentials"],"scope":"admin"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, regCall(t, http.MethodPut, aURI, aTok, tc.body), http.StatusBadRequest, "invalid_client_metadata")
		})
	}
	wantRegChallenge(t, regCall(t, http.MethodPut, bURI, aTok, `{"client_id":"`+b.Str("client_id")+`","client_name":"taken over","redirect_uris":["https://evil.example/cb"]}`), "invalid_token")
	if r := regCall(t, http.MethodGet, bURI, bTok, ""); r.Str("client_name") != "B" || fmt.Sprint(strs(r.JSON["redirect_uris"])) != "[https://b.example.com/cb]" {
		t.Fatalf("B changed by A's refused requests: %s", r.Body)
	}
	if r := regCall(t, http.MethodPatch, aURI, aTok, `{}`); r.Status != http.StatusMethodNotAllowed {
		t.Fatalf("PATCH: %d %s", r.Status, r.Body)
	}

	// DELETE: another's token is refused; its own deletes it, and its
	// tokens and registration access token die with it.
	access := clientCredentials(t, g, aID, aSecret).Str("access_token")
	wantRegChallenge(t, regCall(t, http.MethodDelete, aURI, bTok, ""), "invalid_token")
	if del := regCall(t, http.MethodDelete, aURI, aTok, ""); del.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", del.Status, del.Body)
	}
	wantRegChallenge(t, regCall(t, http.MethodGet, aURI, aTok, ""), "invalid_token")
	wantRegChallenge(t, regCall(t, http.MethodDelete, aURI, aTok, ""), "invalid_token")
	if me := gt.Get(t, g.URL+"/oauth/me", access); me.Status != 401 {
		t.Fatalf("a deleted client's token: %d %s", me.Status, me.Body)
	}
	if tok := clientCredentials(t, g, aID, aSecret); tok.Status != 401 {
		t.Fatalf("a deleted client's secret: %d %s", tok.Status, tok.Body)
	}
	if r := regCall(t, http.MethodGet, bURI, bTok, ""); r.Status != 200 {
		t.Fatalf("B after A's deletion: %d %s", r.Status, r.Body)
	}
}

// agentAuthorize is an authorization request of a registered public
// client, with PKCE.
func agentAuthorize(id, redirect, state, challenge string) url.Values {
	return url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {redirect}, "state": {state},
		"scope": {"read"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
}

// TestRegistrationLoopbackAnyPort: a registered native client's loopback
// redirect URI matches with any port at authorize and token time (RFC
// 8252 §7.3), but nothing else about it may differ; a static client's
// loopback URI still matches exactly.
func TestRegistrationLoopbackAnyPort(t *testing.T) {
	g := startRegistration(t, "registration open", "")
	r := mustRegister(t, g, "", `{"client_name":"Native","redirect_uris":["http://127.0.0.1/callback","http://[::1]:8080/cb"],
		"grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"none"}`)
	id := r.Str("client_id")
	verifier, challenge := pkce("native")

	b := newBrowser(t, g.URL)
	ephemeral := "http://127.0.0.1:53124/callback"
	u := b.approve(agentAuthorize(id, ephemeral, "s1", challenge), "alice", "alice-pw")
	if got := u.Scheme + "://" + u.Host + u.Path; got != ephemeral || u.Query().Get("code") == "" || u.Query().Get("state") != "s1" {
		t.Fatalf("redirect to %s, want %s with a code", u, ephemeral)
	}
	tok := redeem(t, g, id, "", url.Values{"code": {u.Query().Get("code")}, "redirect_uri": {ephemeral}, "code_verifier": {verifier}})
	if tok.Status != 200 || tok.Str("refresh_token") == "" {
		t.Fatalf("token for the ephemeral port: %d %s", tok.Status, tok.Body)
	}
	// Another port for the IPv6 one, and its registered port.
	for _, uri := range []string{"http://[::1]:1/cb", "http://[::1]/cb", "http://[::1]:8080/cb"} {
		u := b.approve(agentAuthorize(id, uri, "s2", challenge), "alice", "alice-pw")
		if !strings.HasPrefix(u.String(), uri+"?") || u.Query().Get("code") == "" {
			t.Fatalf("redirect for %s: %s", uri, u)
		}
	}
	for _, uri := range []string{
		"http://127.0.0.1:53124/callback/x",
		"http://127.0.0.1:53124/callback?x=1",
		"http://localhost:53124/callback",
		"http://127.0.0.1:53124@evil.example/callback",
		"http://127.0.0.1.evil.example/callback",
		"https://127.0.0.1:53124/callback",
		"http://127.0.0.1:abc/callback",
		"http://127.0.0.1:53124/callback#x",
	} {
		page := b.authorize(agentAuthorize(id, uri, "s3", challenge))
		if page.Status != http.StatusBadRequest || !strings.Contains(string(page.Body), "Invalid redirect URI") {
			t.Fatalf("%s: %d %v", uri, page.Status, page.Header.Get("Location"))
		}
	}
	// The token request must name the redirect URI the code was issued
	// for, port included.
	u = clientRedirect(t, b.follow(b.authorize(agentAuthorize(id, ephemeral, "s4", challenge))))
	if tok := redeem(t, g, id, "", url.Values{"code": {u.Query().Get("code")}, "redirect_uri": {"http://127.0.0.1:1/callback"}, "code_verifier": {verifier}}); tok.Status != 400 || tok.Str("error") != "invalid_grant" {
		t.Fatalf("token for another port than the code's: %d %s", tok.Status, tok.Body)
	}
}

// TestRegistrationConsentPage: the consent screen of a registered client
// says it registered itself, shows its name as given and the host it
// sends to, and says the operator did not verify it; its invalid requests
// are not redirected, and it must use PKCE.
func TestRegistrationConsentPage(t *testing.T) {
	g := startRegistration(t, "registration open", "")
	r := mustRegister(t, g, "", `{"client_name":"Helpful <b>Agent</b>","redirect_uris":["https://agent.example.net/cb"],"token_endpoint_auth_method":"client_secret_basic"}`)
	id := r.Str("client_id")
	_, challenge := pkce("consent")

	b := newBrowser(t, g.URL)
	page := b.follow(b.login(b.follow(b.authorize(agentAuthorize(id, "https://agent.example.net/cb", "s", challenge))), "alice", "alice-pw"))
	body := string(page.Body)
	for _, want := range []string{`id="unvetted"`, "Helpful &lt;b&gt;Agent&lt;/b&gt;", "not verified by the operator", "agent.example.net", "registered itself"} {
		if !isPage(page, want) {
			t.Fatalf("consent page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<b>Agent</b>") || strings.Contains(body, `id="user-registered"`) {
		t.Fatalf("consent page: %s", body)
	}

	// Invalid requests show an error page instead of redirecting.
	for name, params := range map[string]url.Values{
		"bad response_type": {"response_type": {"token"}, "client_id": {id}, "redirect_uri": {"https://agent.example.net/cb"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}},
		"scope outside":     agentAuthorize(id, "https://agent.example.net/cb", "s", challenge),
		"no PKCE":           {"response_type": {"code"}, "client_id": {id}, "redirect_uri": {"https://agent.example.net/cb"}},
	} {
		if name == "scope outside" {
			params.Set("scope", "admin")
		}
		r := b.authorize(params)
		if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" {
			t.Fatalf("%s: %d, Location %q", name, r.Status, r.Header.Get("Location"))
		}
	}
}

// TestRegistrationConsentFollowsRedirectURI: a remembered consent to a
// registered client does not carry over to a redirect URI it adds later.
func TestRegistrationConsentFollowsRedirectURI(t *testing.T) {
	g := startRegistration(t, "registration open", "")
	r := mustRegister(t, g, "", `{"client_name":"Agent","redirect_uris":["https://agent.example.net/cb"],"token_endpoint_auth_method":"none"}`)
	id, tok, uri := r.Str("client_id"), r.Str("registration_access_token"), r.Str("registration_client_uri")
	_, challenge := pkce("memory")

	b := newBrowser(t, g.URL)
	b.approve(agentAuthorize(id, "https://agent.example.net/cb", "1", challenge), "alice", "alice-pw")
	if u := clientRedirect(t, b.follow(b.authorize(agentAuthorize(id, "https://agent.example.net/cb", "2", challenge)))); u.Host != "agent.example.net" {
		t.Fatalf("remembered consent: %s", u)
	}
	put := regCall(t, http.MethodPut, uri, tok, `{"client_id":"`+id+`","client_name":"Agent","token_endpoint_auth_method":"none",
		"redirect_uris":["https://agent.example.net/cb","https://collector.example.org/cb"]}`)
	if put.Status != 200 {
		t.Fatalf("update: %d %s", put.Status, put.Body)
	}
	page := b.follow(b.authorize(agentAuthorize(id, "https://collector.example.org/cb", "3", challenge)))
	if !isPage(page, "wants to access your account") || !isPage(page, "collector.example.org") {
		t.Fatalf("consent for a new redirect URI was not asked: %d %s", page.Status, page.Body)
	}
	// The first redirect URI keeps its consent.
	if u := clientRedirect(t, b.follow(b.authorize(agentAuthorize(id, "https://agent.example.net/cb", "4", challenge)))); u.Host != "agent.example.net" {
		t.Fatalf("remembered consent for the first URI: %s", u)
	}
}

// TestConsentRememberedPerRedirectURI: for every client, a remembered
// consent holds only for the redirect URI it was given for.
func TestConsentRememberedPerRedirectURI(t *testing.T) {
	g, _ := startAuthorize(t, "")
	b := newBrowser(t, g.URL)
	b.approve(webParams("1", "scope", "read"), "alice", "alice-pw")
	if u := clientRedirect(t, b.follow(b.authorize(webParams("2", "scope", "read")))); u.Query().Get("code") == "" {
		t.Fatalf("remembered consent: %s", u)
	}
	page := b.follow(b.authorize(webParams("3", "scope", "read", "redirect_uri", webCB2)))
	if !isPage(page, "wants to access your account") {
		t.Fatalf("consent given at %s applied at %s: %d %s", webCB, webCB2, page.Status, page.Header.Get("Location"))
	}
}

// TestRegistrationRateLimit: registration requests are limited per
// source address, management requests included, with the usual 429.
func TestRegistrationRateLimit(t *testing.T) {
	g := startRegistration(t, "registration open", "rate_limit {\n\tregister 3/h\n}")
	one, two := fromAddr("127.0.0.1"), fromAddr("127.0.0.2")
	// post registers, or with a token reads the client at target.
	post := func(c *http.Client, target, token, body string) *gt.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req, _ = http.NewRequest(http.MethodGet, target, nil)
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		out := &gt.Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
		_ = json.Unmarshal(raw, &out.JSON)
		return out
	}
	reg := g.URL + "/oauth/register"
	r := post(one, reg, "", agentMetadata)
	if r.Status != 201 {
		t.Fatalf("first registration: %d %s", r.Status, r.Body)
	}
	if bad := post(one, reg, "", `{}`); bad.Status != 400 {
		t.Fatalf("a refused registration: %d %s", bad.Status, bad.Body)
	}
	if read := post(one, r.Str("registration_client_uri"), r.Str("registration_access_token"), ""); read.Status != 200 {
		t.Fatalf("read: %d %s", read.Status, read.Body)
	}
	assertTooMany(t, "a 4th registration request from one address", post(one, reg, "", agentMetadata))
	assertTooMany(t, "a read past the limit", post(one, r.Str("registration_client_uri"), r.Str("registration_access_token"), ""))
	if r := post(two, reg, "", agentMetadata); r.Status != 201 {
		t.Fatalf("another address: %d %s", r.Status, r.Body)
	}
}

// TestRegistrationLifetime: a registered client issued no token expires
// after lifetime: its configuration endpoint, the admin API and the
// authorize endpoint no longer know it.
func TestRegistrationLifetime(t *testing.T) {
	g := startRegistration(t, "registration open\nlifetime 2s", "")
	r := mustRegister(t, g, "", agentMetadata)
	id, tok, uri := r.Str("client_id"), r.Str("registration_access_token"), r.Str("registration_client_uri")
	if read := regCall(t, http.MethodGet, uri, tok, ""); read.Status != 200 {
		t.Fatalf("read right after registering: %d %s", read.Status, read.Body)
	}
	poll.Until(t, 10*time.Second, "the unused registration to expire", func() bool {
		return regCall(t, http.MethodGet, uri, tok, "").Status == http.StatusUnauthorized
	})
	if s := adminJSON(t, g, "GET", "/oauth/clients/"+id, ""); s.Status != 404 {
		t.Fatalf("admin API after expiry: %d %s", s.Status, s.Body)
	}
	if list := adminJSON(t, g, "GET", "/oauth/clients", ""); strings.Contains(string(list.Body), id) {
		t.Fatalf("admin list after expiry: %s", list.Body)
	}
	_, challenge := pkce("expired")
	page := newBrowser(t, g.URL).authorize(agentAuthorize(id, "http://127.0.0.1/callback", "s", challenge))
	if page.Status != 400 || !strings.Contains(string(page.Body), "Unknown application") {
		t.Fatalf("authorize after expiry: %d %s", page.Status, page.Body)
	}
}

// TestRegistrationAdminView: registered clients are listed by the admin
// API and the command line as having registered themselves, and the
// operator can delete them.
func TestRegistrationAdminView(t *testing.T) {
	g := startRegistration(t, "registration open", "")
	r := mustRegister(t, g, "", agentMetadata)
	id, tok, uri := r.Str("client_id"), r.Str("registration_access_token"), r.Str("registration_client_uri")

	list := adminJSON(t, g, "GET", "/oauth/clients", "")
	var entries []map[string]any
	if err := json.Unmarshal(list.Body, &entries); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		if e["client_id"] == id {
			found = e["registered_by"] == "registration" && e["client_name"] == "Helpful Agent"
		}
	}
	if !found || strings.Contains(string(list.Body), tok) || strings.Contains(string(list.Body), "registration_token") {
		t.Fatalf("admin list: %s", list.Body)
	}
	out, err := oauthCLI(t, g, "client", "list")
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "registered itself") {
		t.Fatalf("caddy oauth client list: %v\n%s", err, out)
	}
	if del := adminJSON(t, g, "DELETE", "/oauth/clients/"+id, ""); del.Status != 204 {
		t.Fatalf("admin delete: %d %s", del.Status, del.Body)
	}
	wantRegChallenge(t, regCall(t, http.MethodGet, uri, tok, ""), "invalid_token")
}

// TestRegistrationSharedThroughRedis: a client registered on one gateway
// works on another sharing its Redis store, which also manages it.
func TestRegistrationSharedThroughRedis(t *testing.T) {
	rs := testredis.Start(t)
	cfg := gt.Config(`
oauth {
	store redis {{index .Vars "redis"}}
	scopes read
	rate_limit off
	dynamic_clients {
		registration token {env.REG_TOKEN}
		grants client_credentials
	}
}`, `oauth_server
respond "ok"`)
	opts := []gt.Option{gt.WithVars(map[string]string{"redis": rs.URL()}), gt.WithEnv("REG_TOKEN=" + regToken)}
	a := gt.Start(t, cfg, opts...)
	b := gt.Start(t, cfg, opts...)

	r := mustRegister(t, a, regToken, `{"client_name":"Shared","grant_types":["client_credentials"],"scope":"read"}`)
	id, secret, tok := r.Str("client_id"), r.Str("client_secret"), r.Str("registration_access_token")
	bURI := b.URL + "/oauth/register/" + id
	if read := regCall(t, http.MethodGet, bURI, tok, ""); read.Status != 200 || read.Str("client_name") != "Shared" {
		t.Fatalf("b reads a's registration: %d %s", read.Status, read.Body)
	}
	access := clientCredentials(t, b, id, secret)
	if access.Status != 200 {
		t.Fatalf("token on b: %d %s", access.Status, access.Body)
	}
	if del := regCall(t, http.MethodDelete, bURI, tok, ""); del.Status != 204 {
		t.Fatalf("delete on b: %d %s", del.Status, del.Body)
	}
	poll.Until(t, propagation, "a refuses the token of the client deleted on b", func() bool {
		return gt.Get(t, a.URL+"/oauth/me", access.Str("access_token")).Status == 401
	})
}
