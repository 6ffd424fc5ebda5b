package authz

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/go-oauth2/oauth2/v4"

	"github.com/caddyoauth/gateway/caddyoauth/store"
	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
	"github.com/caddyoauth/gateway/caddyoauth/store/redisstore"
)

// The resources the resource-indicator tests' service knows.
const (
	resAPI   = "https://api.example.com"
	resMCP   = "https://mcp.example.com/mcp"
	resOther = "https://other.example.com"
)

// resourceService is the test service knowing resAPI, resMCP and resOther,
// with change applied to its config.
func resourceService(t testing.TB, change func(*Config)) *Service {
	t.Helper()
	s, _ := newTestService(t, func(c *Config) {
		c.Resources = func() (map[string]bool, error) {
			return map[string]bool{resAPI: true, resMCP: true, resOther: true}, nil
		}
		if change != nil {
			change(c)
		}
	})
	return s
}

// withResources adds resource parameters to a form.
func withResources(f url.Values, resources ...string) url.Values {
	for _, r := range resources {
		f.Add("resource", r)
	}
	return f
}

// audienceOf validates access and returns its audience.
func tokenAudience(t testing.TB, s *Service, access string) string {
	t.Helper()
	id, err := s.Validate(context.Background(), access)
	if err != nil {
		t.Fatalf("the access token does not validate: %v", err)
	}
	return id.Audience
}

// mintCodeFor issues a code for the resources, as the authorize endpoint
// does for a request naming them.
func mintCodeFor(t testing.TB, s *Service, resources ...string) string {
	t.Helper()
	ctx := withCodeResource(context.Background(), strings.Join(resources, " "))
	ti, err := s.manager.GenerateAuthToken(ctx, oauth2.Code, &oauth2.TokenGenerateRequest{
		ClientID: "app", RedirectURI: appRedirect, UserID: "user-1", Scope: "read",
	})
	if err != nil {
		t.Fatal(err)
	}
	return ti.GetCode()
}

func redeemFor(t testing.TB, s *Service, code string, resources ...string) *reply {
	t.Helper()
	return post(t, s, withResources(form("grant_type", "authorization_code", "code", code, "redirect_uri", appRedirect), resources...), as("app"))
}

// TestParseResource: RFC 8707 §2: an absolute URI with no fragment, in a
// canonical form so the same URI compares equal.
func TestParseResource(t *testing.T) {
	good := map[string]string{
		"https://api.example.com":          "https://api.example.com",
		"https://API.Example.com/":         "https://api.example.com",
		"HTTPS://api.example.com:443":      "https://api.example.com",
		"http://localhost:80/x":            "http://localhost/x",
		"http://127.0.0.1:8080/mcp":        "http://127.0.0.1:8080/mcp",
		"https://api.example.com/a/":       "https://api.example.com/a/",
		"https://api.example.com/%7Efoo":   "https://api.example.com/%7Efoo",
		"https://api.example.com/?v=1":     "https://api.example.com/?v=1",
		"urn:example:resource":             "urn:example:resource",
		"https://[::1]:443/r":              "https://[::1]/r",
		"https://api.example.com:8443/Mcp": "https://api.example.com:8443/Mcp",
	}
	for in, want := range good {
		if got, err := ParseResource(in); err != nil || got != want {
			t.Errorf("ParseResource(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "/relative", "api.example.com", "https://api.example.com/#frag", "https://api.example.com#",
		"https://user@api.example.com", "https:///path", "http://", "https://api.example.com/a b", "https://api.example.com/\"",
		"https://api.example.com/é", "https://api.example.com/\x00", "https://api.example.com/" + strings.Repeat("a", 3000)} {
		if got, err := ParseResource(bad); err == nil {
			t.Errorf("ParseResource(%q) = %q, want an error", bad, got)
		}
	}
	// A protected resource also needs http(s), a host and no query.
	for _, bad := range []string{"urn:example:resource", "https://api.example.com/?v=1", "ftp://api.example.com"} {
		if _, err := ParseProtectedResource(bad); err == nil {
			t.Errorf("ParseProtectedResource(%q) accepted", bad)
		}
	}
	for res, want := range map[string]string{
		"https://api.example.com":      "https://api.example.com/.well-known/oauth-protected-resource",
		"https://api.example.com/mcp":  "https://api.example.com/.well-known/oauth-protected-resource/mcp",
		"http://127.0.0.1:8080/a/b/":   "http://127.0.0.1:8080/.well-known/oauth-protected-resource/a/b/",
		"https://api.example.com/%7Ex": "https://api.example.com/.well-known/oauth-protected-resource/%7Ex",
	} {
		if got, path := ResourceMetadataURL(res); got != want || !strings.HasSuffix(want, path) {
			t.Errorf("ResourceMetadataURL(%q) = %q, %q; want %q", res, got, path, want)
		}
	}
}

// TestHasAudience: a token's resources are matched whole, never by prefix.
func TestHasAudience(t *testing.T) {
	cases := []struct {
		aud, res string
		want     bool
	}{
		{resAPI, resAPI, true},
		{resAPI + " " + resMCP, resMCP, true},
		{resMCP + " " + resAPI, resMCP, true},
		{resAPI + "/x", resAPI, false},
		{resAPI, resAPI + "/x", false},
		{"", resAPI, false},
		{resAPI, "", false},
		{"", "", false},
	}
	for _, c := range cases {
		if got := HasAudience(c.aud, c.res); got != c.want {
			t.Errorf("HasAudience(%q, %q) = %v", c.aud, c.res, got)
		}
	}
	if n := testing.AllocsPerRun(100, func() { HasAudience(resAPI+" "+resMCP, resMCP) }); n != 0 {
		t.Fatalf("HasAudience allocates %v times", n)
	}
}

// TestResourceClientCredentials: the token's audience is the resource
// requested, in the record (Validate), introspection and, for JWTs, aud;
// several resources give a multi-valued aud; a token requested with none
// has no audience.
func TestResourceClientCredentials(t *testing.T) {
	s := resourceService(t, nil)
	r := post(t, s, withResources(form("grant_type", "client_credentials", "scope", "read"), resAPI), as("app")).wantToken(t)
	if got := tokenAudience(t, s, r.str("access_token")); got != resAPI {
		t.Fatalf("audience %q, want %q", got, resAPI)
	}
	in := introspect(t, s, "rs", url.Values{"token": {r.str("access_token")}})
	if in.json["active"] != true || in.str("aud") != resAPI {
		t.Fatalf("introspection: %s", in.body)
	}
	// Non-canonical spellings of one URI count once.
	r = post(t, s, withResources(form("grant_type", "client_credentials"), resMCP, "HTTPS://API.example.com/", resAPI), as("app")).wantToken(t)
	if got := tokenAudience(t, s, r.str("access_token")); got != resMCP+" "+resAPI {
		t.Fatalf("audience %q", got)
	}
	in = introspect(t, s, "rs", url.Values{"token": {r.str("access_token")}})
	if got, _ := in.json["aud"].([]any); len(got) != 2 || got[0] != resMCP || got[1] != resAPI {
		t.Fatalf("introspection aud %v", in.json["aud"])
	}
	r = post(t, s, form("grant_type", "client_credentials"), as("app")).wantToken(t)
	if got := tokenAudience(t, s, r.str("access_token")); got != "" {
		t.Fatalf("a token requested for no resource has audience %q", got)
	}
	if in := introspect(t, s, "rs", url.Values{"token": {r.str("access_token")}}); in.json["aud"] != nil {
		t.Fatalf("introspection of an opaque token for no resource names aud: %s", in.body)
	}

	t.Run("jwt", func(t *testing.T) {
		s := resourceService(t, func(c *Config) { c.TokenFormat = FormatJWT })
		var claims map[string]any
		r := post(t, s, withResources(form("grant_type", "client_credentials"), resAPI), as("app")).wantToken(t)
		decodePart(t, strings.Split(r.str("access_token"), ".")[1], &claims)
		if claims["aud"] != resAPI || tokenAudience(t, s, r.str("access_token")) != resAPI {
			t.Fatalf("aud %v", claims["aud"])
		}
		if in := introspect(t, s, "rs", url.Values{"token": {r.str("access_token")}}); in.str("aud") != resAPI {
			t.Fatalf("introspection: %s", in.body)
		}
		r = post(t, s, withResources(form("grant_type", "client_credentials"), resAPI, resMCP), as("app")).wantToken(t)
		decodePart(t, strings.Split(r.str("access_token"), ".")[1], &claims)
		if !reflect.DeepEqual(claims["aud"], []any{resAPI, resMCP}) {
			t.Fatalf("aud %v", claims["aud"])
		}
		// With no resource, aud stays the issuer.
		r = post(t, s, form("grant_type", "client_credentials"), as("app")).wantToken(t)
		decodePart(t, strings.Split(r.str("access_token"), ".")[1], &claims)
		if claims["aud"] != "https://auth.example.com" || tokenAudience(t, s, r.str("access_token")) != "" {
			t.Fatalf("aud %v", claims["aud"])
		}
	})
}

// TestResourceInvalidTarget: a relative URI, one with a fragment, one the
// gateway does not know, or too many get 400 invalid_target, at every
// grant, and the grant's code or refresh token is not spent.
func TestResourceInvalidTarget(t *testing.T) {
	s := resourceService(t, nil)
	tooMany := make([]string, MaxResources+1)
	for i := range tooMany {
		tooMany[i] = resAPI
	}
	bad := map[string][]string{
		"relative":  {"/api"},
		"no scheme": {"api.example.com"},
		"fragment":  {resAPI + "#x"},
		"unknown":   {"https://unknown.example.com"},
		"one bad":   {resAPI, "https://unknown.example.com"},
		"too many":  tooMany,
	}
	_, refresh := aliceTokens(t, s)
	for name, res := range bad {
		post(t, s, withResources(form("grant_type", "client_credentials"), res...), as("app")).wantError(t, 400, "invalid_target")
		post(t, s, withResources(form("grant_type", "password", "username", "alice", "password", alicePass), res...), as("app")).
			wantError(t, 400, "invalid_target")
		code := mintCodeFor(t, s)
		redeemFor(t, s, code, res...).wantError(t, 400, "invalid_target")
		redeemFor(t, s, code).wantToken(t)
		post(t, s, withResources(form("grant_type", "refresh_token", "refresh_token", refresh), res...), as("app")).
			wantError(t, 400, "invalid_target")
		if t.Failed() {
			t.Fatalf("case %s", name)
		}
	}
	// The refresh token still works: nothing was spent.
	refreshGrant(t, s, refresh, "", as("app")).wantToken(t)

	// A service that knows no resource refuses every one.
	s2, _ := newTestService(t, nil)
	post(t, s2, withResources(form("grant_type", "client_credentials"), resAPI), as("app")).wantError(t, 400, "invalid_target")
}

// TestResourceAuthorizationCode: the code carries the resources of its
// authorization request; the token request may name some of them (the
// token is for those), none (the token is for all), never another.
func TestResourceAuthorizationCode(t *testing.T) {
	s := resourceService(t, nil)
	r := redeemFor(t, s, mintCodeFor(t, s, resAPI, resMCP), resMCP).wantToken(t)
	if got := tokenAudience(t, s, r.str("access_token")); got != resMCP {
		t.Fatalf("audience %q, want %q", got, resMCP)
	}
	// Its refresh token keeps the code's resources: refreshing may name
	// the other one.
	r2 := post(t, s, withResources(form("grant_type", "refresh_token", "refresh_token", r.str("refresh_token")), resAPI), as("app")).wantToken(t)
	if got := tokenAudience(t, s, r2.str("access_token")); got != resAPI {
		t.Fatalf("refreshed audience %q, want %q", got, resAPI)
	}

	r = redeemFor(t, s, mintCodeFor(t, s, resAPI, resMCP)).wantToken(t)
	if got := tokenAudience(t, s, r.str("access_token")); got != resAPI+" "+resMCP {
		t.Fatalf("audience %q, want both", got)
	}

	// A resource the code was not issued for: invalid_target, and the
	// code is not consumed.
	code := mintCodeFor(t, s, resAPI)
	redeemFor(t, s, code, resOther).wantError(t, 400, "invalid_target")
	redeemFor(t, s, code, resAPI, resOther).wantError(t, 400, "invalid_target")
	r = redeemFor(t, s, code, resAPI).wantToken(t)
	if got := tokenAudience(t, s, r.str("access_token")); got != resAPI {
		t.Fatalf("audience %q", got)
	}

	// A code issued for no resource may be redeemed for any known one.
	r = redeemFor(t, s, mintCodeFor(t, s), resOther).wantToken(t)
	if got := tokenAudience(t, s, r.str("access_token")); got != resOther {
		t.Fatalf("audience %q", got)
	}

	// Another client presenting the code learns nothing of its resources:
	// invalid_grant, as for any code not its own.
	code = mintCodeFor(t, s, resAPI)
	post(t, s, withResources(form("grant_type", "authorization_code", "code", code, "redirect_uri", "https://b.example.com/cb"), resOther), as("other")).
		wantError(t, 400, "invalid_grant")
}

// TestResourceRefreshNarrowsNeverWidens: a refresh may name some of its
// grant's resources, never another; without one it keeps the grant's. A
// grant for no resource may be narrowed to any known one.
func TestResourceRefreshNarrowsNeverWidens(t *testing.T) {
	for _, rotation := range []bool{true, false} {
		s := resourceService(t, func(c *Config) { c.RefreshRotation = rotation })
		r := post(t, s, withResources(form("grant_type", "password", "username", "alice", "password", alicePass), resAPI, resMCP), as("app")).wantToken(t)
		rt := r.str("refresh_token")
		if got := tokenAudience(t, s, r.str("access_token")); got != resAPI+" "+resMCP {
			t.Fatalf("audience %q", got)
		}
		narrowed := post(t, s, withResources(form("grant_type", "refresh_token", "refresh_token", rt), resMCP), as("app")).wantToken(t)
		if got := tokenAudience(t, s, narrowed.str("access_token")); got != resMCP {
			t.Fatalf("rotation %v: narrowed audience %q", rotation, got)
		}
		rt = narrowed.str("refresh_token")
		post(t, s, withResources(form("grant_type", "refresh_token", "refresh_token", rt), resOther), as("app")).wantError(t, 400, "invalid_target")
		post(t, s, withResources(form("grant_type", "refresh_token", "refresh_token", rt), resMCP, resOther), as("app")).wantError(t, 400, "invalid_target")
		// The refused refresh spent nothing, and the grant keeps both.
		again := refreshGrant(t, s, rt, "", as("app")).wantToken(t)
		if got := tokenAudience(t, s, again.str("access_token")); got != resAPI+" "+resMCP {
			t.Fatalf("rotation %v: audience after refresh %q", rotation, got)
		}

		// From a grant for no resource.
		_, open := aliceTokens(t, s)
		n := post(t, s, withResources(form("grant_type", "refresh_token", "refresh_token", open), resOther), as("app")).wantToken(t)
		if got := tokenAudience(t, s, n.str("access_token")); got != resOther {
			t.Fatalf("audience %q", got)
		}
		if rotation {
			open = n.str("refresh_token")
		}
		n = refreshGrant(t, s, open, "", as("app")).wantToken(t)
		if got := tokenAudience(t, s, n.str("access_token")); got != "" {
			t.Fatalf("a grant for no resource refreshed without one has audience %q", got)
		}
	}
}

// TestResourceFormRepeats: resource may be given several times (RFC 8707
// §2); any other parameter given twice is still refused.
func TestResourceFormRepeats(t *testing.T) {
	s := resourceService(t, nil)
	post(t, s, withResources(form("grant_type", "client_credentials"), resAPI, resMCP), as("app")).wantToken(t)
	postRaw(t, s, "grant_type=client_credentials&scope=read&scope=write", as("app")).wantError(t, 400, "invalid_request")
	// An empty resource counts as omitted.
	r := postRaw(t, s, "grant_type=client_credentials&resource=&resource="+url.QueryEscape(resAPI), as("app")).wantToken(t)
	if got := tokenAudience(t, s, r.str("access_token")); got != resAPI {
		t.Fatalf("audience %q", got)
	}
}

// TestResourceAuthorizeEndpoint: the authorization endpoint takes
// resource, several times too, and refuses a bad one with invalid_target
// at the redirect URI.
func TestResourceAuthorizeEndpoint(t *testing.T) {
	s := resourceService(t, nil)
	a := s.NewAuthorizer(AuthorizeConfig{})
	base := "response_type=code&client_id=app&redirect_uri=" + url.QueryEscape(appRedirect) + "&state=s"
	for _, bad := range []string{"/api", resAPI + "#f", "https://unknown.example.com"} {
		w := authorizeGET(a, base+"&resource="+url.QueryEscape(bad))
		loc, _ := url.Parse(w.Header().Get("Location"))
		if w.Code != http.StatusFound || loc == nil || loc.Query().Get("error") != "invalid_target" || loc.Query().Get("state") != "s" {
			t.Fatalf("resource %q: %d %s", bad, w.Code, w.Header().Get("Location"))
		}
	}
	w := authorizeGET(a, base+"&resource="+url.QueryEscape(resAPI)+"&resource="+url.QueryEscape(resMCP))
	if w.Code != http.StatusFound || !strings.Contains(w.Header().Get("Location"), "/oauth/login?request_id=") {
		t.Fatalf("two resources: %d %s", w.Code, w.Header().Get("Location"))
	}
}

// TestResourceRecordsInStores: the audience is kept in the token records of
// the file store and the Redis store.
func TestResourceRecordsInStores(t *testing.T) {
	check := func(t *testing.T, st store.Store) {
		s := New(Config{AccessTokenTTL: 3600e9, RefreshTokenTTL: 7200e9, RefreshRotation: true,
			Resources: func() (map[string]bool, error) { return map[string]bool{resAPI: true, resMCP: true}, nil }},
			st, testClients(), testUsers(t), nil)
		r := post(t, s, withResources(form("grant_type", "password", "username", "alice", "password", alicePass), resAPI, resMCP), as("app")).wantToken(t)
		if got := tokenAudience(t, s, r.str("access_token")); got != resAPI+" "+resMCP {
			t.Fatalf("audience %q", got)
		}
		n := post(t, s, withResources(form("grant_type", "refresh_token", "refresh_token", r.str("refresh_token")), resAPI), as("app")).wantToken(t)
		if got := tokenAudience(t, s, n.str("access_token")); got != resAPI {
			t.Fatalf("audience %q", got)
		}
	}
	t.Run("file", func(t *testing.T) {
		db, err := filestore.Open(filepath.Join(t.TempDir(), "oauth.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		check(t, db)
	})
	t.Run("redis", func(t *testing.T) {
		onRedis(t, func(t *testing.T, st *redisstore.Store) { check(t, st) })
	})
}
