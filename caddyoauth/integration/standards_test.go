package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
	"github.com/caddyoauth/gateway/internal/poll"
)

// standardsOAuth is the oauth block of these tests: app uses every grant
// but the code one, rs is a resource server that may introspect, pub is a
// public client. extra is added to the block (token_format and the like).
func standardsOAuth(t *testing.T, extra string) string {
	return fmt.Sprintf(`
oauth {
	store memory
	%s
	client app {
		secret app-secret
		grants authorization_code client_credentials password refresh_token
		redirect_uri http://127.0.0.1/app/callback
		scopes read write
	}
	client rs {
		secret rs-secret
		introspect
	}
	user alice %s user-1
}`, extra, gt.BcryptHash(t, "alice-pw"))
}

func standardsSite(up *gt.Upstream) string {
	return fmt.Sprintf(`
oauth_server
oauth_protect
reverse_proxy %s`, up.Addr())
}

// fetchMetadata reads the RFC 8414 document.
func fetchMetadata(t *testing.T, base string) map[string]any {
	t.Helper()
	r := gt.Get(t, base+"/.well-known/oauth-authorization-server", "")
	if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || r.JSON == nil {
		t.Fatalf("metadata: %d %q %s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	return r.JSON
}

func strs(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestMetadataDocument checks RFC 8414 §2 field by field: the issuer is
// the origin when none is configured, every endpoint is absolute under it,
// jwks_uri appears only for JWT access tokens.
func TestMetadataDocument(t *testing.T) {
	up := gt.StartUpstream(t)
	g := gt.Start(t, gt.Config(standardsOAuth(t, ""), standardsSite(up)))
	md := fetchMetadata(t, g.URL)
	if md["issuer"] != g.URL {
		t.Fatalf("issuer = %v, want %s", md["issuer"], g.URL)
	}
	for field, path := range map[string]string{"authorization_endpoint": "/oauth/authorize", "token_endpoint": "/oauth/token", "revocation_endpoint": "/oauth/revoke", "introspection_endpoint": "/oauth/introspect"} {
		if md[field] != g.URL+path {
			t.Errorf("%s = %v, want %s", field, md[field], g.URL+path)
		}
	}
	if _, ok := md["jwks_uri"]; ok {
		t.Error("jwks_uri listed for opaque tokens")
	}
	if r := gt.Get(t, g.URL+"/oauth/jwks", ""); r.Status != 404 {
		t.Errorf("/oauth/jwks with opaque tokens: %d", r.Status)
	}
	lists := map[string][]string{
		"grant_types_supported":                            {"authorization_code", "client_credentials", "password", "refresh_token"},
		"response_types_supported":                         {"code"},
		"code_challenge_methods_supported":                 {"S256"},
		"scopes_supported":                                 {"read", "write"},
		"token_endpoint_auth_methods_supported":            {"client_secret_basic", "client_secret_post", "none", "private_key_jwt"},
		"revocation_endpoint_auth_methods_supported":       {"client_secret_basic", "client_secret_post", "none", "private_key_jwt"},
		"introspection_endpoint_auth_methods_supported":    {"client_secret_basic", "client_secret_post", "private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": {"RS256", "PS256", "ES256", "EdDSA"},
	}
	for field, want := range lists {
		if got := strs(md[field]); !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", field, got, want)
		}
	}

	// A configured issuer is used as is, and JWT tokens add jwks_uri.
	g2 := gt.Start(t, gt.Config(standardsOAuth(t, "issuer https://auth.example.com/\n\ttoken_format jwt"), standardsSite(up)))
	md = fetchMetadata(t, g2.URL)
	if md["issuer"] != "https://auth.example.com" || md["jwks_uri"] != "https://auth.example.com/oauth/jwks" ||
		md["revocation_endpoint"] != "https://auth.example.com/oauth/revoke" {
		t.Fatalf("configured issuer: %v", md)
	}
}

// TestRevokeAndIntrospectEndpoints: the RFC 7009 and RFC 7662 answers over
// real HTTP, status codes and headers included.
func TestRevokeAndIntrospectEndpoints(t *testing.T) {
	up := gt.StartUpstream(t)
	g := gt.Start(t, gt.Config(standardsOAuth(t, ""), standardsSite(up)))
	tok := gt.PostForm(t, g.URL+"/oauth/token", "app", "app-secret", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-pw"}, "scope": {"read"}})
	access, refresh := tok.Str("access_token"), tok.Str("refresh_token")
	if tok.Status != 200 || access == "" || refresh == "" {
		t.Fatalf("token: %d %s", tok.Status, tok.Body)
	}

	in := gt.PostForm(t, g.URL+"/oauth/introspect", "rs", "rs-secret", url.Values{"token": {access}})
	if in.Status != 200 || in.JSON["active"] != true || in.Str("username") != "alice" || in.Str("sub") != "user-1" ||
		in.Str("client_id") != "app" || in.Str("scope") != "read" || in.Str("token_type") != "Bearer" ||
		in.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(in.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("introspection: %d %v %s", in.Status, in.Header, in.Body)
	}
	bad := gt.PostForm(t, g.URL+"/oauth/introspect", "rs", "wrong", url.Values{"token": {access}})
	if bad.Status != 401 || bad.Str("error") != "invalid_client" || !strings.HasPrefix(bad.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("introspection with a bad secret: %d %v %s", bad.Status, bad.Header, bad.Body)
	}
	if r := gt.Get(t, g.URL+"/oauth/introspect", ""); r.Status != 405 || r.Header.Get("Allow") != "POST" {
		t.Fatalf("GET introspect: %d", r.Status)
	}

	// rs may introspect app's tokens but not revoke them (RFC 7009 §2.1).
	if r := gt.PostForm(t, g.URL+"/oauth/revoke", "rs", "rs-secret", url.Values{"token": {access}}); r.Status != 400 || r.Str("error") != "unauthorized_client" {
		t.Fatalf("revoking another client's token: %d %s", r.Status, r.Body)
	}
	if r := gt.Get(t, g.URL+"/api", access); r.Status != 200 {
		t.Fatalf("before revocation: %d", r.Status)
	}
	rv := gt.PostForm(t, g.URL+"/oauth/revoke", "app", "app-secret", url.Values{"token": {refresh}, "token_type_hint": {"refresh_token"}})
	if rv.Status != 200 || len(rv.Body) != 0 {
		t.Fatalf("revocation: %d %s", rv.Status, rv.Body)
	}
	// The refresh token's access token went with it.
	if r := gt.Get(t, g.URL+"/api", access); r.Status != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("after revocation: %d %v", r.Status, r.Header)
	}
	in = gt.PostForm(t, g.URL+"/oauth/introspect", "rs", "rs-secret", url.Values{"token": {access}})
	if in.Status != 200 || string(in.Body) != "{\"active\":false}\n" {
		t.Fatalf("introspection after revocation: %d %s", in.Status, in.Body)
	}
	if r := gt.PostForm(t, g.URL+"/oauth/revoke", "app", "app-secret", url.Values{}); r.Status != 400 || r.Str("error") != "invalid_request" {
		t.Fatalf("revocation without token: %d %s", r.Status, r.Body)
	}
	if r := gt.PostForm(t, g.URL+"/oauth/revoke", "app", "nope", url.Values{"token": {"x"}}); r.Status != 401 || r.Str("error") != "invalid_client" || r.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("revocation with a bad secret: %d %v %s", r.Status, r.Header, r.Body)
	}
}

// TestInteropGoOAuth2: golang.org/x/oauth2 runs client_credentials, the
// password grant and a TokenSource refresh against the gateway, and its
// tokens pass oauth_protect.
func TestInteropGoOAuth2(t *testing.T) {
	up := gt.StartUpstream(t)
	g := gt.Start(t, gt.Config(standardsOAuth(t, ""), standardsSite(up)))
	ctx := context.Background()

	cc := &clientcredentials.Config{ClientID: "app", ClientSecret: "app-secret", TokenURL: g.URL + "/oauth/token", Scopes: []string{"read"}}
	resp, err := cc.Client(ctx).Get(g.URL + "/api")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || up.Last().Get("X-OAuth-Client-ID") != "app" || up.Last().Get("X-OAuth-Scope") != "read" {
		t.Fatalf("client_credentials call: %d %v", resp.StatusCode, up.Last())
	}

	cfg := &oauth2.Config{ClientID: "app", ClientSecret: "app-secret", Endpoint: oauth2.Endpoint{TokenURL: g.URL + "/oauth/token"}}
	tok, err := cfg.PasswordCredentialsToken(ctx, "alice", "alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || tok.Expiry.IsZero() {
		t.Fatalf("password token %+v", tok)
	}
	tok.Expiry = time.Now().Add(-time.Minute) // make the TokenSource refresh
	resp, err = cfg.Client(ctx, tok).Get(g.URL + "/api")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || up.Last().Get("X-User-ID") != "user-1" {
		t.Fatalf("refreshed call: %d %v", resp.StatusCode, up.Last())
	}
	if r := gt.Get(t, g.URL+"/api", tok.AccessToken); r.Status != 401 {
		t.Fatalf("the access token replaced by the refresh still works: %d", r.Status)
	}
	_, err = cfg.PasswordCredentialsToken(ctx, "alice", "wrong")
	if re, ok := err.(*oauth2.RetrieveError); !ok || re.ErrorCode != "invalid_grant" {
		t.Fatalf("wrong password: %v", err)
	}
}

// verifyWithJWKS checks a JWT access token with go-jose against the JWKS
// fetched from jwksURL, and returns its claims.
func verifyWithJWKS(t *testing.T, token, jwksURL string) map[string]any {
	t.Helper()
	r := gt.Get(t, jwksURL, "")
	if r.Status != 200 || r.Header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("jwks: %d %v %s", r.Status, r.Header, r.Body)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(r.Body, &set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	sig := jws.Signatures[0].Protected
	if sig.ExtraHeaders["typ"] != "at+jwt" {
		t.Fatalf("typ = %v", sig.ExtraHeaders["typ"])
	}
	keys := set.Key(sig.KeyID)
	if len(keys) != 1 || !keys[0].Valid() || keys[0].Use != "sig" || keys[0].Algorithm != sig.Algorithm {
		t.Fatalf("no published key %q for alg %s in %s", sig.KeyID, sig.Algorithm, r.Body)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("signature: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// TestJWTVerifiedByGoJose: a JWT access token verifies with go-jose against
// /oauth/jwks and carries the RFC 9068 claims; the gateway still refuses it
// once revoked.
func TestJWTVerifiedByGoJose(t *testing.T) {
	up := gt.StartUpstream(t)
	g := gt.Start(t, gt.Config(standardsOAuth(t, "token_format jwt\n\taudience https://api.example.com"), standardsSite(up)))
	tok := gt.PostForm(t, g.URL+"/oauth/token", "app", "app-secret", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-pw"}, "scope": {"read"}})
	access := tok.Str("access_token")
	claims := verifyWithJWKS(t, access, g.URL+"/oauth/jwks")
	want := map[string]any{"iss": g.URL, "sub": "user-1", "aud": "https://api.example.com", "client_id": "app", "scope": "read"}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("%s = %v, want %v", k, claims[k], v)
		}
	}
	exp, _ := claims["exp"].(float64)
	iat, _ := claims["iat"].(float64)
	if exp-iat != 3600 || claims["jti"] == "" || time.Unix(int64(iat), 0).After(time.Now().Add(time.Second)) {
		t.Errorf("exp %v iat %v jti %v", claims["exp"], claims["iat"], claims["jti"])
	}
	if r := gt.Get(t, g.URL+"/api", access); r.Status != 200 {
		t.Fatalf("JWT refused: %d %s", r.Status, r.Body)
	}
	if r := gt.PostForm(t, g.URL+"/oauth/jwks", "", "", url.Values{}); r.Status != 405 || r.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST /oauth/jwks: %d %v", r.Status, r.Header)
	}
	// The refresh path signs too.
	ref := gt.PostForm(t, g.URL+"/oauth/token", "app", "app-secret", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.Str("refresh_token")}})
	verifyWithJWKS(t, ref.Str("access_token"), g.URL+"/oauth/jwks")

	gt.PostForm(t, g.URL+"/oauth/revoke", "app", "app-secret", url.Values{"token": {ref.Str("access_token")}})
	if r := gt.Get(t, g.URL+"/api", ref.Str("access_token")); r.Status != 401 {
		t.Fatalf("revoked JWT accepted: %d", r.Status)
	}
}

// TestMetadataDrivenClient: a client that knows only the gateway's origin
// configures itself from the metadata document and runs every grant it may
// use, a refresh, introspection and revocation, with no hand-written
// endpoint URL. (authorization_code needs the interactive authorize
// endpoint; its exchange is covered in authz's interop test.)
func TestMetadataDrivenClient(t *testing.T) {
	up := gt.StartUpstream(t)
	g := gt.Start(t, gt.Config(standardsOAuth(t, "token_format jwt"), standardsSite(up)))
	ctx := context.Background()
	md := fetchMetadata(t, g.URL)
	endpoint := func(field string) string {
		s, _ := md[field].(string)
		if s == "" {
			t.Fatalf("metadata lacks %s", field)
		}
		return s
	}
	authURL, tokenURL, revokeURL, introspectURL, jwksURL := endpoint("authorization_endpoint"), endpoint("token_endpoint"),
		endpoint("revocation_endpoint"), endpoint("introspection_endpoint"), endpoint("jwks_uri")
	grants := strs(md["grant_types_supported"])
	scopes := strs(md["scopes_supported"])

	var issued []*oauth2.Token
	if slices.Contains(grants, "client_credentials") {
		tok, err := (&clientcredentials.Config{ClientID: "app", ClientSecret: "app-secret", TokenURL: tokenURL, Scopes: scopes}).Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		issued = append(issued, tok)
	}
	cfg := &oauth2.Config{ClientID: "app", ClientSecret: "app-secret", RedirectURL: "http://127.0.0.1/app/callback",
		Endpoint: oauth2.Endpoint{AuthURL: authURL, TokenURL: tokenURL}, Scopes: scopes}
	if slices.Contains(grants, "authorization_code") {
		verifier := oauth2.GenerateVerifier()
		back := newBrowser(t, g.URL).approveURL(cfg.AuthCodeURL("md-state", oauth2.S256ChallengeOption(verifier)), "alice", "alice-pw")
		tok, err := cfg.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("authorization code from the metadata's authorization_endpoint: %v", err)
		}
		issued = append(issued, tok)
	}
	if slices.Contains(grants, "password") {
		tok, err := cfg.PasswordCredentialsToken(ctx, "alice", "alice-pw")
		if err != nil {
			t.Fatal(err)
		}
		issued = append(issued, tok)
		if slices.Contains(grants, "refresh_token") {
			tok.Expiry = time.Now().Add(-time.Minute)
			next, err := cfg.TokenSource(ctx, tok).Token()
			if err != nil {
				t.Fatal(err)
			}
			issued = append(issued, next)
		}
	}
	if len(issued) != 4 {
		t.Fatalf("metadata advertised grants %v; ran %d", grants, len(issued))
	}
	last := issued[len(issued)-1]
	verifyWithJWKS(t, last.AccessToken, jwksURL)

	in := gt.PostForm(t, introspectURL, "rs", "rs-secret", url.Values{"token": {last.AccessToken}})
	if in.JSON["active"] != true || in.Str("sub") != "user-1" {
		t.Fatalf("introspection: %s", in.Body)
	}
	if r := gt.PostForm(t, revokeURL, "app", "app-secret", url.Values{"token": {last.RefreshToken}}); r.Status != 200 {
		t.Fatalf("revocation: %d %s", r.Status, r.Body)
	}
	in = gt.PostForm(t, introspectURL, "rs", "rs-secret", url.Values{"token": {last.AccessToken}})
	if in.JSON["active"] != false {
		t.Fatalf("introspection after revocation: %s", in.Body)
	}
	if r := gt.Get(t, g.URL+"/api", issued[0].AccessToken); r.Status != 200 {
		t.Fatalf("client_credentials token: %d", r.Status)
	}
}

// TestRemovedClientByReload: a config reloaded through the admin API
// without a client ends that client's tokens.
func TestRemovedClientByReload(t *testing.T) {
	up := gt.StartUpstream(t)
	hash := gt.BcryptHash(t, "alice-pw")
	block := func(withApp bool) string {
		app := ""
		if withApp {
			app = "client app {\n\t\tsecret app-secret\n\t\tgrants client_credentials\n\t}"
		}
		return fmt.Sprintf("oauth {\n\tstore file {{.DataDir}}/oauth.db\n\t%s\n\tclient keep {\n\t\tsecret keep-secret\n\t\tgrants client_credentials\n\t}\n\tuser alice %s\n}", app, hash)
	}
	g := gt.Start(t, gt.Config(block(true), standardsSite(up)))
	access := gt.PostForm(t, g.URL+"/oauth/token", "app", "app-secret", url.Values{"grant_type": {"client_credentials"}}).Str("access_token")
	kept := gt.PostForm(t, g.URL+"/oauth/token", "keep", "keep-secret", url.Values{"grant_type": {"client_credentials"}}).Str("access_token")
	if r := gt.Get(t, g.URL+"/api", access); r.Status != 200 {
		t.Fatalf("before reload: %d", r.Status)
	}

	if r := g.Reload(gt.Config(block(false), standardsSite(up)), false); r.Status != 200 {
		t.Fatalf("reload: %d %s", r.Status, r.Body)
	}
	// Poll on fresh connections: the old config's server closes the ones it
	// served, and a request racing that close would fail with EOF.
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	status := func() int {
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/api", nil)
		req.Header.Set("Authorization", "Bearer "+access)
		resp, err := fresh.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	poll.Until(t, 10*time.Second, "the removed client's token refused after the reload", func() bool { return status() == 401 })
	if r := gt.Get(t, g.URL+"/api", kept); r.Status != 200 {
		t.Fatalf("a kept client's token stopped working: %d", r.Status)
	}
}

// replaceStoreMemory drops the memory store line of standardsOAuth, for a
// config that names its own store.
func replaceStoreMemory(cfg string) string {
	return strings.Replace(cfg, "store memory\n", "", 1)
}
