package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	gooidc "github.com/coreos/go-oidc/v3/oidc"
	zrp "github.com/zitadel/oidc/v3/pkg/client/rp"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// The gateway as an OpenID provider, driven by real relying parties
// through the real sign-in and consent pages.

const rpCB = "https://rp.example/callback"

// startOP starts a gateway whose client rp may ask for openid, with users
// from each source: alice (a user line with claims), bob (a users_file
// entry with claims) and carol (the login upstream, claims_from).
func startOP(t *testing.T, clientExtra string) *gt.Gateway {
	t.Helper()
	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var creds struct{ Username, Password string }
		_ = json.NewDecoder(r.Body).Decode(&creds)
		if creds.Username != "carol" || creds.Password != "carol-pw" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `{"id":"legacy-carol","display_name":"Carol Legacy","mail":"carol@legacy.example"}`)
	}))
	t.Cleanup(legacy.Close)
	users := filepath.Join(t.TempDir(), "users.json")
	entry := fmt.Sprintf(`[{"username":"bob","password_hash":%q,"user_id":"u-bob","claims":{"name":"Bob File","email":"bob@example.com","email_verified":false}}]`, gt.BcryptHash(t, "bob-pw"))
	if err := os.WriteFile(users, []byte(entry), 0o600); err != nil {
		t.Fatal(err)
	}
	return gt.Start(t, gt.Config(fmt.Sprintf(`
oauth {
	store memory
	user alice %s u-alice {
		name "Alice Liddell"
		given_name Alice
		email alice@example.com
		email_verified
	}
	users_file %s
	login_upstream %s {
		claims_from name=display_name email=mail
	}
	client rp {
		name "Relying Party"
		secret rp-secret
		redirect_uri %s
		grants authorization_code refresh_token
		scopes openid profile email read
		%s
	}
}`, gt.BcryptHash(t, "alice-pw"), users, legacy.URL, rpCB, clientExtra), "oauth_server\nrespond \"site\""))
}

// TestOpenIDInteropGoOIDC: coreos/go-oidc discovers the gateway, and
// golang.org/x/oauth2 runs the code flow with a nonce through the sign-in
// and consent pages; go-oidc verifies the ID token (signature from the
// JWKS, iss, aud, exp, nonce, at_hash) and reads UserInfo.
func TestOpenIDInteropGoOIDC(t *testing.T) {
	g := startOP(t, "")
	ctx := context.Background()
	provider, err := gooidc.NewProvider(ctx, g.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := &oauth2.Config{ClientID: "rp", ClientSecret: "rp-secret", RedirectURL: rpCB,
		Endpoint: provider.Endpoint(), Scopes: []string{gooidc.ScopeOpenID, "profile", "email"}}
	verifier := provider.Verifier(&gooidc.Config{ClientID: "rp"})

	for _, u := range []struct {
		username, password, sub, name, email string
	}{
		{"alice", "alice-pw", "u-alice", "Alice Liddell", "alice@example.com"},
		{"bob", "bob-pw", "u-bob", "Bob File", "bob@example.com"},
		{"carol", "carol-pw", "legacy-carol", "Carol Legacy", "carol@legacy.example"},
	} {
		t.Run(u.username, func(t *testing.T) {
			nonce := "nonce-" + u.username
			authURL := conf.AuthCodeURL("st-"+u.username, gooidc.Nonce(nonce))
			back := newBrowser(t, g.URL).approveURL(authURL, u.username, u.password)
			if back.Query().Get("state") != "st-"+u.username || back.Query().Get("iss") != g.URL {
				t.Fatalf("redirect %s", back)
			}
			tok, err := conf.Exchange(ctx, back.Query().Get("code"))
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			raw, _ := tok.Extra("id_token").(string)
			idt, err := verifier.Verify(ctx, raw)
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if idt.Nonce != nonce || idt.Subject != u.sub {
				t.Fatalf("nonce %q sub %q", idt.Nonce, idt.Subject)
			}
			if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
				t.Fatalf("at_hash: %v", err)
			}
			info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
			if err != nil {
				t.Fatalf("userinfo: %v", err)
			}
			var claims struct {
				Name string `json:"name"`
			}
			if err := info.Claims(&claims); err != nil {
				t.Fatal(err)
			}
			if info.Subject != u.sub || info.Email != u.email || claims.Name != u.name {
				t.Fatalf("userinfo sub %q email %q name %q", info.Subject, info.Email, claims.Name)
			}
		})
	}
}

// TestOpenIDDiscovery: the provider configuration has every field OpenID
// Connect Discovery requires and those it recommends that apply, agrees
// with the RFC 8414 document, and names RS256; the JWKS is served though
// access tokens are opaque.
func TestOpenIDDiscovery(t *testing.T) {
	g := startOP(t, "")
	oidcDoc := gt.Get(t, g.URL+"/.well-known/openid-configuration", "")
	asDoc := gt.Get(t, g.URL+"/.well-known/oauth-authorization-server", "")
	if oidcDoc.Status != 200 || asDoc.Status != 200 {
		t.Fatalf("documents: %d %d", oidcDoc.Status, asDoc.Status)
	}
	var md, as map[string]any
	if err := json.Unmarshal(oidcDoc.Body, &md); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(asDoc.Body, &as)
	for _, f := range []string{"issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
		"end_session_endpoint", "scopes_supported", "response_types_supported", "response_modes_supported",
		"grant_types_supported", "subject_types_supported", "id_token_signing_alg_values_supported",
		"token_endpoint_auth_methods_supported", "claims_supported", "claims_parameter_supported",
		"request_parameter_supported", "request_uri_parameter_supported", "code_challenge_methods_supported",
		"backchannel_logout_supported", "backchannel_logout_session_supported"} {
		if _, ok := md[f]; !ok {
			t.Errorf("no %s", f)
		}
		if fmt.Sprint(md[f]) != fmt.Sprint(as[f]) {
			t.Errorf("%s: %v in the OpenID document, %v in RFC 8414's", f, md[f], as[f])
		}
	}
	if md["issuer"] != g.URL || md["userinfo_endpoint"] != g.URL+"/oauth/userinfo" || md["jwks_uri"] != g.URL+"/oauth/jwks" {
		t.Fatalf("endpoints: %v", md)
	}
	if !strings.Contains(fmt.Sprint(md["id_token_signing_alg_values_supported"]), "RS256") ||
		!strings.Contains(fmt.Sprint(md["scopes_supported"]), "openid") ||
		fmt.Sprint(md["subject_types_supported"]) != "[public]" || md["request_uri_parameter_supported"] != false {
		t.Fatalf("document: %s", oidcDoc.Body)
	}
	jwks := gt.Get(t, g.URL+"/oauth/jwks", "")
	if jwks.Status != 200 || !strings.Contains(string(jwks.Body), `"alg":"RS256"`) {
		t.Fatalf("jwks: %d %s", jwks.Status, jwks.Body)
	}
}

// TestOpenIDOffWithoutOpenIDScope: a gateway whose clients cannot be
// given openid serves no discovery, UserInfo or (with opaque tokens) JWKS.
func TestOpenIDOffWithoutOpenIDScope(t *testing.T) {
	g := gt.Start(t, gt.Config(`
oauth {
	store memory
	client c {
		secret s
		grants client_credentials
		scopes read
	}
}`, "oauth_server\nrespond \"site\""))
	for _, p := range []string{"/oauth/userinfo", "/oauth/jwks"} {
		if r := gt.Get(t, g.URL+p, ""); r.Status != http.StatusNotFound {
			t.Errorf("%s: %d", p, r.Status)
		}
	}
	// Outside /oauth/ the request goes on to the site.
	if r := gt.Get(t, g.URL+"/.well-known/openid-configuration", ""); string(r.Body) != "site" {
		t.Errorf("discovery served: %d %s", r.Status, r.Body)
	}
	var md map[string]any
	_ = json.Unmarshal(gt.Get(t, g.URL+"/.well-known/oauth-authorization-server", "").Body, &md)
	if _, ok := md["userinfo_endpoint"]; ok {
		t.Fatalf("RFC 8414 metadata names UserInfo: %v", md)
	}
}

// TestQuickstartOpenID: the quickstart's demo web app gets an ID token for
// alice, whose UserInfo holds the name and email the Caddyfile gives her.
func TestQuickstartOpenID(t *testing.T) {
	upPort := gt.FreePort(t)
	g := gt.Start(t, quickstartTemplate(t), gt.WithVars(map[string]string{"upstream": itoa(upPort)}))
	ctx := context.Background()
	provider, err := gooidc.NewProvider(ctx, g.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := &oauth2.Config{ClientID: "demo-web", RedirectURL: fmt.Sprintf("http://127.0.0.1:%d/callback", upPort),
		Endpoint: provider.Endpoint(), Scopes: []string{"openid", "profile", "email"}}
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	pkceVerifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("xyz", gooidc.Nonce("n-42"), oauth2.S256ChallengeOption(pkceVerifier))
	// The demo client registered localhost; the harness moved it.
	back := newBrowser(t, g.URL).approveURL(authURL, "alice", "alice-password")
	tok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(pkceVerifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	idt, err := provider.Verifier(&gooidc.Config{ClientID: "demo-web"}).Verify(ctx, tok.Extra("id_token").(string))
	if err != nil || idt.Nonce != "n-42" || idt.Subject != "user-42" {
		t.Fatalf("ID token: %v %+v", err, idt)
	}
	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	var claims struct{ Name string }
	if err != nil || info.Claims(&claims) != nil || claims.Name != "Alice Liddell" || info.Email != "alice@example.com" || !info.EmailVerified {
		t.Fatalf("userinfo: %v %+v %+v", err, info, claims)
	}
}

// rpFlow signs username in for rp with extra authorization parameters and
// returns the browser and the client's redirect.
func rpFlow(t *testing.T, g *gt.Gateway, b *browser, extra url.Values, username, password string) *url.URL {
	t.Helper()
	q := url.Values{"response_type": {"code"}, "client_id": {"rp"}, "redirect_uri": {rpCB},
		"scope": {"openid profile email"}, "state": {"s1"}, "nonce": {"n1"}}
	for k, v := range extra {
		q[k] = v
	}
	return b.approve(q, username, password)
}

// TestOpenIDFormPostInBrowser: headless Chromium signs in and consents
// with response_mode=form_post; the answer page's script, allowed by its
// CSP nonce alone, posts the code to the client without a click, and the
// code is redeemed for an ID token.
func TestOpenIDFormPostInBrowser(t *testing.T) {
	got := make(chan url.Values, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "post expected", http.StatusMethodNotAllowed)
			return
		}
		_ = r.ParseForm()
		select {
		case got <- r.PostForm:
		default:
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, `<!doctype html><html lang="en"><title>Client</title><body><h1 id="callback">Client received a form post</h1></body></html>`)
	}))
	t.Cleanup(app.Close)
	g := gt.Start(t, gt.Config(fmt.Sprintf(`
oauth {
	store memory
	user alice %s u-alice {
		name "Alice Liddell"
	}
	client rp {
		secret rp-secret
		redirect_uri %s/cb
		grants authorization_code
		scopes openid profile
	}
}`, gt.BcryptHash(t, "alice-pw"), app.URL), "oauth_server\nrespond \"site\""))

	ctx := startChromium(t, 900, 760, 60*time.Second)
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	start := g.URL + "/oauth/authorize?" + url.Values{"response_type": {"code"}, "client_id": {"rp"},
		"scope": {"openid profile"}, "state": {"fp-1"}, "nonce": {"fp-nonce"}, "response_mode": {"form_post"}}.Encode()
	do("open the authorization request", chromedp.Navigate(start), chromedp.WaitVisible(chromedp.ID("username")))
	do("sign in",
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "alice-pw"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)))
	do("allow: the answer page posts itself", chromedp.Click(chromedp.CSS(`button[value=allow]`)), chromedp.WaitVisible(chromedp.ID("callback")))

	form := <-got
	if form.Get("state") != "fp-1" || form.Get("iss") != g.URL || form.Get("code") == "" {
		t.Fatalf("the client received %v", form)
	}
	tok := gt.PostForm(t, g.URL+"/oauth/token", "rp", "rp-secret", url.Values{"grant_type": {"authorization_code"}, "code": {form.Get("code")}})
	if tok.Status != 200 || tok.Str("id_token") == "" {
		t.Fatalf("token: %d %s", tok.Status, tok.Body)
	}
}

type nonceKey struct{}

// TestOpenIDInteropZitadel: the relying party of zitadel/oidc discovers
// the gateway and runs the code flow with PKCE and a nonce through the
// sign-in and consent pages, verifies the ID token, reads UserInfo,
// refreshes (a new ID token with the same auth_time) and logs out
// RP-initiated to its registered URI, which ends the sign-in.
func TestOpenIDInteropZitadel(t *testing.T) {
	g := startOP(t, "post_logout_redirect_uri https://rp.example/bye")
	nonceOf := func(ctx context.Context) string { s, _ := ctx.Value(nonceKey{}).(string); return s }
	party, err := zrp.NewRelyingPartyOIDC(context.Background(), g.URL, "rp", "rp-secret", rpCB,
		[]string{"openid", "profile", "email"}, zrp.WithVerifierOpts(zrp.WithNonce(nonceOf)))
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	verifier := oauth2.GenerateVerifier()
	withNonce := func() []oauth2.AuthCodeOption {
		return []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("nonce", "z-nonce")}
	}
	authURL := zrp.AuthURL("z-state", party, zrp.WithCodeChallenge(oauth2.S256ChallengeFromVerifier(verifier)), withNonce)
	b := newBrowser(t, g.URL)
	back := b.approveURL(authURL, "alice", "alice-pw")
	ctx := context.WithValue(context.Background(), nonceKey{}, "z-nonce")
	tokens, err := zrp.CodeExchange[*zoidc.IDTokenClaims](ctx, back.Query().Get("code"), party, zrp.WithCodeVerifier(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	if tokens.IDTokenClaims.Subject != "u-alice" || tokens.IDTokenClaims.Nonce != "z-nonce" {
		t.Fatalf("ID token %+v", tokens.IDTokenClaims)
	}
	info, err := zrp.Userinfo[*zoidc.UserInfo](context.Background(), tokens.AccessToken, tokens.TokenType, "u-alice", party)
	if err != nil || info.Name != "Alice Liddell" || info.GivenName != "Alice" || info.Email != "alice@example.com" || !bool(info.EmailVerified) {
		t.Fatalf("userinfo: %v %+v", err, info)
	}
	refreshed, err := zrp.RefreshTokens[*zoidc.IDTokenClaims](context.Background(), party, tokens.RefreshToken, "", "")
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if refreshed.IDToken == "" || !refreshed.IDTokenClaims.GetAuthTime().Equal(tokens.IDTokenClaims.GetAuthTime()) {
		t.Fatalf("refreshed ID token %+v", refreshed.IDTokenClaims)
	}
	loc, err := zrp.EndSession(context.Background(), party, refreshed.IDToken, "https://rp.example/bye", "z-bye", "", nil)
	if err != nil || loc == nil || loc.String() != "https://rp.example/bye?state=z-bye" {
		t.Fatalf("end session: %v %v", loc, err)
	}
	// The browser's sign-in is over: the next request asks for the password.
	r := b.get(authURL[len(g.URL):])
	if !strings.HasPrefix(location(t, r), "/oauth/login") {
		t.Fatalf("still signed in after logout: %s", location(t, r))
	}
}

// TestOpenIDBackchannelLogout: an RP-initiated logout of the real gateway
// posts the client's backchannel_logout_uri a logout token that verifies
// against the published JWKS, names the user and the session of the ID
// token, and carries the back-channel logout event.
func TestOpenIDBackchannelLogout(t *testing.T) {
	got := make(chan string, 4)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		got <- r.PostForm.Get("logout_token")
	}))
	t.Cleanup(receiver.Close)
	g := startOP(t, "backchannel_logout_uri "+receiver.URL+"/logout")
	ctx := context.Background()
	provider, err := gooidc.NewProvider(ctx, g.URL)
	if err != nil {
		t.Fatal(err)
	}
	conf := &oauth2.Config{ClientID: "rp", ClientSecret: "rp-secret", RedirectURL: rpCB, Endpoint: provider.Endpoint(), Scopes: []string{"openid"}}
	back := newBrowser(t, g.URL).approveURL(conf.AuthCodeURL("s", gooidc.Nonce("n")), "alice", "alice-pw")
	tok, err := conf.Exchange(ctx, back.Query().Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	verifier := provider.Verifier(&gooidc.Config{ClientID: "rp"})
	idt, err := verifier.Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var idClaims struct{ Sid string }
	_ = idt.Claims(&idClaims)

	r := gt.Get(t, g.URL+"/oauth/end_session?id_token_hint="+url.QueryEscape(tok.Extra("id_token").(string)), "")
	if r.Status != 200 {
		t.Fatalf("end_session: %d %s", r.Status, r.Body)
	}
	var raw string
	select {
	case raw = <-got:
	case <-time.After(10 * time.Second):
		t.Fatalf("no logout token arrived; gateway log:\n%s", g.Logs())
	}
	lt, err := verifier.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("the logout token does not verify: %v", err)
	}
	var claims struct {
		Sid    string                    `json:"sid"`
		Nonce  *string                   `json:"nonce"`
		Events map[string]map[string]any `json:"events"`
	}
	if err := lt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if lt.Subject != "u-alice" || claims.Sid == "" || claims.Sid != idClaims.Sid || claims.Nonce != nil {
		t.Fatalf("logout token sub %q sid %q (ID token sid %q) nonce %v", lt.Subject, claims.Sid, idClaims.Sid, claims.Nonce)
	}
	if _, ok := claims.Events["http://schemas.openid.net/event/backchannel-logout"]; !ok {
		t.Fatalf("events %v", claims.Events)
	}
}

// TestOpenIDAdminAPIClient: a client registered over the admin API with
// OpenID Connect metadata gets ES256 ID tokens as it asked, may be sent
// back to its post_logout_redirect_uri after logout, and receives logout
// tokens at its backchannel_logout_uri, also when the operator revokes the
// user.
func TestOpenIDAdminAPIClient(t *testing.T) {
	got := make(chan string, 4)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		got <- r.PostForm.Get("logout_token")
	}))
	t.Cleanup(receiver.Close)
	g := startOP(t, "")
	r := adminJSON(t, g, "POST", "/oauth/clients", `{"client_id":"dyn-rp","client_name":"Dynamic RP","redirect_uris":["`+rpCB+`"],
		"grant_types":["authorization_code"],"scope":"openid profile","id_token_signed_response_alg":"ES256",
		"post_logout_redirect_uris":["https://dyn.example/bye"],"backchannel_logout_uri":"`+receiver.URL+`/bc"}`)
	if r.Status != 201 || r.Str("id_token_signed_response_alg") != "ES256" || r.Str("backchannel_logout_uri") == "" {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	wantError(t, adminJSON(t, g, "POST", "/oauth/clients", `{"redirect_uris":["`+rpCB+`"],"id_token_signed_response_alg":"none"}`), 400, "invalid_client_metadata")

	ctx := context.Background()
	provider, err := gooidc.NewProvider(ctx, g.URL)
	if err != nil {
		t.Fatal(err)
	}
	conf := &oauth2.Config{ClientID: "dyn-rp", ClientSecret: r.Str("client_secret"), RedirectURL: rpCB, Endpoint: provider.Endpoint(), Scopes: []string{"openid"}}
	wait := func() string {
		t.Helper()
		select {
		case raw := <-got:
			return raw
		case <-time.After(10 * time.Second):
			t.Fatalf("no logout token arrived; gateway log:\n%s", g.Logs())
		}
		return ""
	}
	verifier := provider.Verifier(&gooidc.Config{ClientID: "dyn-rp", SupportedSigningAlgs: []string{"ES256"}})
	signIn := func() string {
		t.Helper()
		back := newBrowser(t, g.URL).approveURL(conf.AuthCodeURL("s", gooidc.Nonce("n")), "alice", "alice-pw")
		tok, err := conf.Exchange(ctx, back.Query().Get("code"))
		if err != nil {
			t.Fatal(err)
		}
		raw := tok.Extra("id_token").(string)
		if _, err := verifier.Verify(ctx, raw); err != nil {
			t.Fatalf("the ES256 ID token does not verify: %v", err)
		}
		return raw
	}
	idt := signIn()
	bye := gt.Get(t, g.URL+"/oauth/end_session?"+url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {"https://dyn.example/bye"}, "state": {"b"}}.Encode(), "")
	if bye.Status != http.StatusFound || bye.Header.Get("Location") != "https://dyn.example/bye?state=b" {
		t.Fatalf("end_session: %d %v", bye.Status, bye.Header)
	}
	if _, err := verifier.Verify(ctx, wait()); err != nil {
		t.Fatalf("logout token: %v", err)
	}
	bad := gt.Get(t, g.URL+"/oauth/end_session?"+url.Values{"client_id": {"dyn-rp"}, "post_logout_redirect_uri": {"https://evil.example/"}}.Encode(), "")
	if bad.Status != http.StatusBadRequest || bad.Header.Get("Location") != "" {
		t.Fatalf("an unregistered post_logout_redirect_uri: %d %v", bad.Status, bad.Header)
	}

	signIn()
	if r := adminJSON(t, g, "POST", "/oauth/users/u-alice/revoke", ""); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	lt, err := verifier.Verify(ctx, wait())
	var claims struct{ Sid string }
	if err != nil || lt.Subject != "u-alice" || lt.Claims(&claims) != nil || claims.Sid != "" {
		t.Fatalf("revocation logout token: %v %+v %+v", err, lt, claims)
	}
}
