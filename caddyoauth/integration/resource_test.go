package integration

import (
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// Protected resource metadata (RFC 9728) and resource indicators (RFC
// 8707) on a real gateway: one site with oauth_server, an MCP-like path
// resource needing write, a block requiring an audience, and the rest of
// the site (the origin's resource) needing read.

// resourceOAuth is standardsOAuth's oauth block on the file store, with
// JWT access tokens and a resource no block guards.
func resourceOAuth(t *testing.T) string {
	return strings.Replace(standardsOAuth(t, "token_format jwt\n\tresources urn:example:reports"), "store memory", "store file", 1)
}

func resourceSite(up *gt.Upstream) string {
	return `
oauth_server
handle /mcp/* {
	oauth_protect {
		realm mcp
		resource http://{{.Addr}}/mcp
		scope write
	}
	reverse_proxy ` + up.Addr() + `
}
handle /strict/* {
	oauth_protect {
		audience required
	}
	reverse_proxy ` + up.Addr() + `
}
handle {
	oauth_protect {
		scope read
	}
	reverse_proxy ` + up.Addr() + `
}`
}

// startResourceGateway starts the gateway of these tests.
func startResourceGateway(t *testing.T) *gt.Gateway {
	t.Helper()
	return gt.Start(t, gt.Config(resourceOAuth(t), resourceSite(gt.StartUpstream(t))))
}

var resourceMetadataRE = regexp.MustCompile(`resource_metadata="([^"]*)"`)

// challengeMetadata returns the resource_metadata of a WWW-Authenticate
// challenge, failing unless the challenge also has realm.
func challengeMetadata(t *testing.T, r *gt.Response) string {
	t.Helper()
	ch := r.Header.Get("WWW-Authenticate")
	m := resourceMetadataRE.FindStringSubmatch(ch)
	if !strings.HasPrefix(ch, `Bearer realm="`) || m == nil {
		t.Fatalf("challenge %q has no realm or resource_metadata (status %d)", ch, r.Status)
	}
	return m[1]
}

// getWithHost sends a GET with Host header host.
func getWithHost(t *testing.T, target, host string) *gt.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	return withHost(t, req, host)
}

// wantResourceMetadata checks an RFC 9728 §3.2 answer field by field.
func wantResourceMetadata(t *testing.T, r *gt.Response, resource, issuer string, scopes []string) {
	t.Helper()
	if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || r.JSON == nil {
		t.Fatalf("metadata: %d %q %s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	want := map[string]any{"resource": resource, "authorization_servers": []any{issuer}, "bearer_methods_supported": []any{"header"},
		"dpop_signing_alg_values_supported": []any{"ES256", "ES384", "EdDSA", "RS256", "PS256"}}
	if strings.HasPrefix(resource, "https://") {
		want["tls_client_certificate_bound_access_tokens"] = true
	}
	if scopes != nil {
		var s []any
		for _, v := range scopes {
			s = append(s, v)
		}
		want["scopes_supported"] = s
	}
	if !reflect.DeepEqual(r.JSON, want) {
		t.Fatalf("metadata %s, want %v", r.Body, want)
	}
}

// TestResourceMetadataDocument: each resource of the site has its RFC 9728
// document, at the well-known path for the origin and followed by its path
// for a path resource; a challenge names it (401 and 403 alike), and from
// it a client finds the authorization server's own metadata. A Host header
// changes nothing in them.
func TestResourceMetadataDocument(t *testing.T) {
	g := startResourceGateway(t)
	origin := g.URL + "/.well-known/oauth-protected-resource"
	for _, host := range []string{"", "127.0.0.1:1"} {
		r := getWithHost(t, origin, host)
		wantResourceMetadata(t, r, g.URL, g.URL, []string{"read"})
		wantResourceMetadata(t, getWithHost(t, origin+"/mcp", host), g.URL+"/mcp", g.URL, []string{"write"})
	}
	if r := gt.Get(t, origin+"/nothing", ""); r.Status != 404 {
		t.Fatalf("metadata of an unknown path: %d %s", r.Status, r.Body)
	}
	if r := gt.PostForm(t, origin, "", "", url.Values{}); r.Status != 405 || r.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST to the metadata: %d %v", r.Status, r.Header)
	}

	// 401 without a token and with a bad one, 403 for a missing scope:
	// each names the metadata of the block's resource.
	for name, r := range map[string]*gt.Response{
		"no token":      gt.Get(t, g.URL+"/data", ""),
		"invalid token": gt.Get(t, g.URL+"/data", "not-a-token"),
	} {
		if r.Status != 401 || challengeMetadata(t, r) != origin {
			t.Fatalf("%s: %d %q", name, r.Status, r.Header.Get("WWW-Authenticate"))
		}
	}
	read := gt.PostForm(t, g.URL+"/oauth/token", "app", "app-secret", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}})
	r := gt.Get(t, g.URL+"/mcp/tools", read.Str("access_token"))
	if r.Status != 403 || challengeMetadata(t, r) != origin+"/mcp" ||
		!strings.Contains(r.Header.Get("WWW-Authenticate"), `error="insufficient_scope", scope="write"`) {
		t.Fatalf("missing scope: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	r = gt.Get(t, g.URL+"/mcp/tools", "")
	if r.Status != 401 || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), `Bearer realm="mcp", resource_metadata="`+origin+`/mcp"`) {
		t.Fatalf("no token at /mcp: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}

	// Discovery: 401 → resource metadata → authorization server metadata.
	prm := gt.Get(t, challengeMetadata(t, gt.Get(t, g.URL+"/mcp/tools", "")), "")
	as := strs(prm.JSON["authorization_servers"])
	if len(as) != 1 {
		t.Fatalf("authorization_servers %v", prm.JSON["authorization_servers"])
	}
	if md := fetchMetadata(t, as[0]); md["issuer"] != as[0] || md["token_endpoint"] != as[0]+"/oauth/token" {
		t.Fatalf("authorization server metadata %v", md)
	}
}

// TestResourceMetadataIgnoresHostHeader: on a site address with no host
// (any Host header reaches it) and a configured issuer, the document names
// the configured resource and issuer whatever the Host header says.
func TestResourceMetadataIgnoresHostHeader(t *testing.T) {
	up := gt.StartUpstream(t)
	cfg := gt.Config(standardsOAuth(t, "issuer https://auth.example.com"), `
oauth_server
oauth_protect {
	resource https://api.example.com
}
reverse_proxy `+up.Addr())
	g := gt.Start(t, strings.Replace(cfg, "http://{{.Addr}} {", "http://:{{.Port}} {", 1))
	for _, host := range []string{"evil.example", "api.example.com:1", "127.0.0.1"} {
		r := getWithHost(t, g.URL+"/.well-known/oauth-protected-resource", host)
		wantResourceMetadata(t, r, "https://api.example.com", "https://auth.example.com", nil)
		r = getWithHost(t, g.URL+"/data", host)
		if r.Status != 401 || challengeMetadata(t, r) != "https://api.example.com/.well-known/oauth-protected-resource" {
			t.Fatalf("Host %s: %d %q", host, r.Status, r.Header.Get("WWW-Authenticate"))
		}
	}
}

// TestResourceIndicatorsCodeFlow: a resource named at the authorization
// endpoint goes with the code to the token: its aud (JWT, introspection,
// /oauth/me) is that resource, it works there and is refused (401
// invalid_token) at the site's other resource; a refresh may narrow to
// it, never widen to another, and the binding survives a restart of the
// gateway on the file store.
func TestResourceIndicatorsCodeFlow(t *testing.T) {
	g := startResourceGateway(t)
	mcp := g.URL + "/mcp"
	b := newBrowser(t, g.URL)
	params := url.Values{"response_type": {"code"}, "client_id": {"app"}, "redirect_uri": {"http://127.0.0.1/app/callback"},
		"scope": {"read write"}, "state": {"s1"}, "resource": {mcp}}
	code := b.approve(params, "alice", "alice-pw").Query().Get("code")
	if code == "" {
		t.Fatal("no code")
	}
	redeem := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://127.0.0.1/app/callback"}}
	// A resource the code was not issued for: invalid_target, and the
	// code is still good.
	wrong := url.Values{"resource": {g.URL}}
	for k, v := range redeem {
		wrong[k] = v
	}
	if r := gt.PostForm(t, g.URL+"/oauth/token", "app", "app-secret", wrong); r.Status != 400 || r.Str("error") != "invalid_target" {
		t.Fatalf("code for another resource: %d %s", r.Status, r.Body)
	}
	redeem.Set("resource", mcp)
	tok := gt.PostForm(t, g.URL+"/oauth/token", "app", "app-secret", redeem)
	if tok.Status != 200 {
		t.Fatalf("token: %d %s", tok.Status, tok.Body)
	}
	access, refresh := tok.Str("access_token"), tok.Str("refresh_token")
	checkBoundToMCP := func(access string) {
		t.Helper()
		if c := jwtPayload(t, access); c["aud"] != mcp || c["iss"] != g.URL {
			t.Fatalf("JWT claims %v", c)
		}
		in := gt.PostForm(t, g.URL+"/oauth/introspect", "rs", "rs-secret", url.Values{"token": {access}})
		if in.JSON["active"] != true || in.Str("aud") != mcp {
			t.Fatalf("introspection: %s", in.Body)
		}
		if me := gt.Get(t, g.URL+"/oauth/me", access); me.Status != 200 || me.Str("aud") != mcp || me.Str("user_id") != "user-1" {
			t.Fatalf("/oauth/me: %d %s", me.Status, me.Body)
		}
		if r := gt.Get(t, g.URL+"/mcp/tools", access); r.Status != 200 {
			t.Fatalf("the token at its resource: %d %s", r.Status, r.Body)
		}
		for _, path := range []string{"/data", "/strict/x"} {
			r := gt.Get(t, g.URL+path, access)
			if r.Status != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Fatalf("the token at %s: %d %q", path, r.Status, r.Header.Get("WWW-Authenticate"))
			}
		}
	}
	checkBoundToMCP(access)

	// Widening the resource at a refresh: invalid_target, and the refresh
	// token is not spent.
	r := gt.PostForm(t, g.URL+"/oauth/token", "app", "app-secret", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "resource": {g.URL}})
	if r.Status != 400 || r.Str("error") != "invalid_target" {
		t.Fatalf("widening refresh: %d %s", r.Status, r.Body)
	}
	r = gt.PostForm(t, g.URL+"/oauth/token", "app", "app-secret", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "resource": {mcp}})
	if r.Status != 200 {
		t.Fatalf("refresh for the same resource: %d %s", r.Status, r.Body)
	}
	checkBoundToMCP(r.Str("access_token"))
	refreshed, next := r.Str("access_token"), r.Str("refresh_token")

	g.Restart()
	checkBoundToMCP(refreshed)
	r = gt.PostForm(t, g.URL+"/oauth/token", "app", "app-secret", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next}})
	if r.Status != 200 {
		t.Fatalf("refresh after the restart: %d %s", r.Status, r.Body)
	}
	checkBoundToMCP(r.Str("access_token"))
}

// TestResourceIndicatorsClientCredentials: client_credentials takes
// resource; a token for no resource works everywhere but where the block
// says audience required; a token for a resource the gateway only lists
// (resources) passes no block, and introspection names it.
func TestResourceIndicatorsClientCredentials(t *testing.T) {
	g := startResourceGateway(t)
	token := func(resources ...string) string {
		t.Helper()
		r := gt.PostForm(t, g.URL+"/oauth/token", "app", "app-secret", url.Values{"grant_type": {"client_credentials"},
			"scope": {"read write"}, "resource": resources})
		if r.Status != 200 {
			t.Fatalf("token for %v: %d %s", resources, r.Status, r.Body)
		}
		return r.Str("access_token")
	}
	status := func(path, access string) int {
		t.Helper()
		return gt.Get(t, g.URL+path, access).Status
	}
	none, origin, both, reports := token(), token(g.URL), token(g.URL, g.URL+"/mcp"), token("urn:example:reports")
	want := map[string]map[string]int{
		"/data":     {"none": 200, "origin": 200, "both": 200, "reports": 401},
		"/mcp/x":    {"none": 200, "origin": 401, "both": 200, "reports": 401},
		"/strict/x": {"none": 401, "origin": 200, "both": 200, "reports": 401},
	}
	tokens := map[string]string{"none": none, "origin": origin, "both": both, "reports": reports}
	for path, byToken := range want {
		for name, code := range byToken {
			if got := status(path, tokens[name]); got != code {
				t.Errorf("token %s at %s: %d, want %d", name, path, got, code)
			}
		}
	}
	if c := jwtPayload(t, both); !reflect.DeepEqual(c["aud"], []any{g.URL, g.URL + "/mcp"}) {
		t.Fatalf("aud of a token for two resources: %v", c["aud"])
	}
	if c := jwtPayload(t, none); c["aud"] != g.URL {
		t.Fatalf("aud of a token for no resource: %v", c["aud"])
	}
	in := gt.PostForm(t, g.URL+"/oauth/introspect", "rs", "rs-secret", url.Values{"token": {reports}})
	if in.JSON["active"] != true || in.Str("aud") != "urn:example:reports" {
		t.Fatalf("introspection: %s", in.Body)
	}
}

// TestResourceInvalidTarget: a resource that is relative, has a fragment
// or is unknown gets 400 invalid_target at the token endpoint, and
// error=invalid_target at the client's redirect URI from the authorization
// endpoint; never a 500.
func TestResourceInvalidTarget(t *testing.T) {
	g := startResourceGateway(t)
	b := newBrowser(t, g.URL)
	for _, bad := range []string{"/mcp", "mcp", g.URL + "/mcp#x", "https://unknown.example.com", g.URL + "/other", "http://[::1"} {
		r := gt.PostForm(t, g.URL+"/oauth/token", "app", "app-secret", url.Values{"grant_type": {"client_credentials"}, "resource": {bad}})
		if r.Status != 400 || r.Str("error") != "invalid_target" || r.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("token for %q: %d %s", bad, r.Status, r.Body)
		}
		params := url.Values{"response_type": {"code"}, "client_id": {"app"}, "redirect_uri": {"http://127.0.0.1/app/callback"},
			"state": {"s1"}, "resource": {bad}}
		u := clientRedirect(t, b.authorize(params))
		if q := u.Query(); q.Get("error") != "invalid_target" || q.Get("state") != "s1" || q.Get("iss") != g.URL {
			t.Fatalf("authorization request for %q: %s", bad, u)
		}
	}
}
