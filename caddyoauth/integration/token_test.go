package integration

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// tokenGateway runs a gateway with a confidential client of every grant,
// a client_credentials client with a user, a second client, and alice.
func tokenGateway(t *testing.T, up *gt.Upstream, opts ...gt.Option) *gt.Gateway {
	t.Helper()
	oauth := fmt.Sprintf(`
oauth {
	store file {{.DataDir}}/tokens.db
	client conf {
		secret conf-secret
		grants client_credentials password refresh_token authorization_code
		redirect_uri https://a.example.com/cb
		scopes read write
		default_scope read
	}
	client other {
		secret other-secret
		grants client_credentials password refresh_token
		scopes read write
	}
	client svc {
		secret "s3cr:t/+%%&="
		grants client_credentials
		scopes read
		user service-7
	}
	user alice %s user-42
}`, gt.BcryptHash(t, "alice-password"))
	return gt.Start(t, gt.Config(oauth, fmt.Sprintf(`
oauth_server
oauth_protect {
	scope read
}
reverse_proxy %s`, up.Addr())), opts...)
}

func wantOAuthError(t *testing.T, r *gt.Response, status int, code string) {
	t.Helper()
	if r.Status != status || r.Str("error") != code {
		t.Fatalf("got %d %s, want %d error=%s", r.Status, r.Body, status, code)
	}
	if r.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("error answer headers %v", r.Header)
	}
}

func wantToken(t *testing.T, r *gt.Response) *gt.Response {
	t.Helper()
	if r.Status != 200 || r.Str("access_token") == "" || r.Str("token_type") != "Bearer" {
		t.Fatalf("got %d %s, want a token", r.Status, r.Body)
	}
	if r.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("token answer headers %v", r.Header)
	}
	if n, _ := r.JSON["expires_in"].(float64); n < 3590 || n > 3600 {
		t.Fatalf("expires_in = %v", r.JSON["expires_in"])
	}
	return r
}

// postRaw posts a raw body with the given headers (name, value pairs).
func postRaw(t *testing.T, target, body string, headers ...string) *gt.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return gt.Do(t, req)
}

func me(t *testing.T, g *gt.Gateway, token string) *gt.Response {
	t.Helper()
	return gt.Get(t, g.URL+"/oauth/me", token)
}

func TestTokenEndpoint(t *testing.T) {
	up := gt.StartUpstream(t)
	g := tokenGateway(t, up)
	tokenURL := g.URL + "/oauth/token"
	cc := url.Values{"grant_type": {"client_credentials"}}

	t.Run("client_credentials by basic, no user", func(t *testing.T) {
		r := wantToken(t, gt.PostForm(t, tokenURL, "conf", "conf-secret", cc))
		if r.Str("scope") != "read" || r.Str("refresh_token") != "" {
			t.Fatalf("answer %s", r.Body)
		}
		m := me(t, g, r.Str("access_token"))
		if m.Status != 200 || m.Str("client_id") != "conf" || m.Str("scope") != "read" || m.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("me: %d %s", m.Status, m.Body)
		}
		if _, ok := m.JSON["user_id"]; ok {
			t.Fatalf("me has a user_id for a token with no user: %s", m.Body)
		}
		if exp, _ := m.JSON["exp"].(float64); exp == 0 {
			t.Fatalf("me has no exp: %s", m.Body)
		}
	})
	t.Run("client_credentials by post, with the client's user and url-encoded basic", func(t *testing.T) {
		r := wantToken(t, postRaw(t, tokenURL, url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {"s3cr:t/+%&="}}.Encode()))
		if m := me(t, g, r.Str("access_token")); m.Str("user_id") != "service-7" || m.Str("client_id") != "svc" {
			t.Fatalf("me: %s", m.Body)
		}
		wantToken(t, gt.PostForm(t, tokenURL, "svc", "s3cr:t/+%&=", cc))
	})
	t.Run("password grant and refresh", func(t *testing.T) {
		r := wantToken(t, gt.PostForm(t, tokenURL, "conf", "conf-secret", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password"}, "scope": {"read write"}}))
		if m := me(t, g, r.Str("access_token")); m.Str("user_id") != "user-42" || m.Str("scope") != "read write" {
			t.Fatalf("me: %s", m.Body)
		}
		rt := r.Str("refresh_token")
		// Another client, with its own good credentials, cannot use it.
		wantOAuthError(t, gt.PostForm(t, tokenURL, "other", "other-secret", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}), 400, "invalid_grant")
		wantOAuthError(t, gt.PostForm(t, tokenURL, "conf", "conf-secret", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {"read write admin"}}), 400, "invalid_scope")
		n := wantToken(t, gt.PostForm(t, tokenURL, "conf", "conf-secret", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {"read"}}))
		if n.Str("scope") != "read" || n.Str("refresh_token") == "" || n.Str("refresh_token") == rt {
			t.Fatalf("refresh answer %s", n.Body)
		}
		if m := me(t, g, n.Str("access_token")); m.Str("user_id") != "user-42" || m.Str("scope") != "read" {
			t.Fatalf("me after refresh: %s", m.Body)
		}
		if m := me(t, g, r.Str("access_token")); m.Status != 401 {
			t.Fatalf("the replaced access token still works: %d", m.Status)
		}
	})
	t.Run("password grant failures", func(t *testing.T) {
		wantOAuthError(t, gt.PostForm(t, tokenURL, "conf", "conf-secret", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wrong"}}), 400, "invalid_grant")
		wantOAuthError(t, gt.PostForm(t, tokenURL, "conf", "conf-secret", url.Values{"grant_type": {"password"}, "username": {"nobody"}, "password": {"x"}}), 400, "invalid_grant")
		wantOAuthError(t, gt.PostForm(t, tokenURL, "svc", "s3cr:t/+%&=", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password"}}), 400, "unauthorized_client")
	})
	t.Run("authorization_code with an unknown code", func(t *testing.T) {
		wantOAuthError(t, gt.PostForm(t, tokenURL, "conf", "conf-secret", url.Values{"grant_type": {"authorization_code"}, "code": {"nope"}, "redirect_uri": {"https://a.example.com/cb"}}), 400, "invalid_grant")
	})
	t.Run("errors", func(t *testing.T) {
		wantOAuthError(t, gt.PostForm(t, tokenURL, "conf", "wrong", cc), 401, "invalid_client")
		if r := gt.PostForm(t, tokenURL, "conf", "wrong", cc); !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic ") {
			t.Fatalf("no Basic challenge: %v", r.Header)
		}
		post := postRaw(t, tokenURL, "grant_type=client_credentials&client_id=conf&client_secret=wrong")
		wantOAuthError(t, post, 401, "invalid_client")
		if post.Header.Get("WWW-Authenticate") != "" {
			t.Fatal("a Basic challenge for client_secret_post")
		}
		wantOAuthError(t, gt.PostForm(t, tokenURL, "ghost", "x", cc), 401, "invalid_client")
		wantOAuthError(t, postRaw(t, tokenURL, "grant_type=client_credentials"), 401, "invalid_client")
		wantOAuthError(t, gt.PostForm(t, tokenURL, "conf", "conf-secret", url.Values{"grant_type": {"client_credentials"}, "client_secret": {"conf-secret"}}), 400, "invalid_request")
		wantOAuthError(t, gt.PostForm(t, tokenURL, "conf", "conf-secret", url.Values{"grant_type": {"device_code"}}), 400, "unsupported_grant_type")
		wantOAuthError(t, gt.PostForm(t, tokenURL, "conf", "conf-secret", url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}}), 400, "invalid_scope")
		wantOAuthError(t, gt.PostForm(t, tokenURL, "conf", "conf-secret", url.Values{}), 400, "invalid_request")
		basic := "Basic Y29uZjpjb25mLXNlY3JldA==" // conf:conf-secret
		wantToken(t, postRaw(t, tokenURL, "grant_type=client_credentials", "Authorization", basic))
		wantOAuthError(t, postRaw(t, tokenURL, "grant_type=client_credentials", "Authorization", basic, "Authorization", basic), 400, "invalid_request")
		wantOAuthError(t, postRaw(t, tokenURL, "grant_type=client_credentials&grant_type=client_credentials", "Authorization", basic), 400, "invalid_request")
		wantOAuthError(t, postRaw(t, tokenURL, "grant_type=client_credentials&x=%zz", "Authorization", basic), 400, "invalid_request")
		wantOAuthError(t, postRaw(t, tokenURL, "grant_type=client_credentials&pad="+strings.Repeat("a", 64<<10), "Authorization", basic), 400, "invalid_request")
		wantOAuthError(t, postRaw(t, tokenURL+"?client_secret=conf-secret", "grant_type=client_credentials&client_id=conf"), 400, "invalid_request")
		wantOAuthError(t, postRaw(t, tokenURL, "grant_type=client_credentials", "Authorization", "Basic %%%"), 401, "invalid_client")
		wantOAuthError(t, gt.Get(t, tokenURL, ""), 405, "invalid_request")
		req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(`{"grant_type":"client_credentials"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", basic)
		wantOAuthError(t, gt.Do(t, req), 400, "invalid_request")
	})
	t.Run("metadata lists the token endpoint", func(t *testing.T) {
		r := gt.Get(t, g.URL+"/.well-known/oauth-authorization-server", "")
		if r.Status != 200 || r.Str("issuer") != g.URL || r.Str("token_endpoint") != g.URL+"/oauth/token" {
			t.Fatalf("metadata: %d %s", r.Status, r.Body)
		}
		if fmt.Sprint(r.JSON["grant_types_supported"]) != "[authorization_code client_credentials password refresh_token]" {
			t.Fatalf("grant_types_supported = %v", r.JSON["grant_types_supported"])
		}
	})
	t.Run("me refusals", func(t *testing.T) {
		r := me(t, g, "")
		if r.Status != 401 || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer realm=") {
			t.Fatalf("me without token: %d %v", r.Status, r.Header)
		}
		r = me(t, g, "unknown")
		if r.Status != 401 || r.Str("error") != "invalid_token" || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("me with a bad token: %d %s", r.Status, r.Body)
		}
		if r := gt.Get(t, g.URL+"/oauth/me", "", "Authorization", "Bearer a", "Authorization", "Bearer b"); r.Status != 400 {
			t.Fatalf("me with two Authorization headers: %d", r.Status)
		}
		if r := gt.Get(t, g.URL+"/oauth/nothing", ""); r.Status != 404 {
			t.Fatalf("unknown endpoint: %d", r.Status)
		}
	})
	if up.Count() != 0 {
		t.Fatalf("the token endpoint passed %d requests to the upstream", up.Count())
	}
	if logs := g.Logs(); strings.Contains(logs, "conf-secret") || strings.Contains(logs, "alice-password") || strings.Contains(logs, "s3cr:t") {
		t.Fatal("a secret reached the gateway's log")
	}
}
