package integration

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// withHost sends req with Host header host, whatever its URL names.
func withHost(t *testing.T, req *http.Request, host string) *gt.Response {
	t.Helper()
	req.Host = host
	return gt.Do(t, req)
}

// jwtPayload decodes the claims of a JWT without checking it.
func jwtPayload(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestIssuerIgnoresHostHeader: requests with a foreign Host header get the
// gateway's issuer in the metadata, in the iss and aud of the JWT access
// tokens they obtain, and in the iss of the authorization responses (RFC
// 9207), whether the issuer is derived from the site address or
// configured for a site whose address has no host.
func TestIssuerIgnoresHostHeader(t *testing.T) {
	up := gt.StartUpstream(t)
	t.Run("derived from the site address", func(t *testing.T) {
		g := gt.Start(t, gt.Config(standardsOAuth(t, "token_format jwt"), standardsSite(up)))
		// The site's host matcher ignores the port, so a Host header
		// naming another port reaches oauth_server.
		checkIssuerUnderHost(t, g, "127.0.0.1:1", g.URL)
	})
	t.Run("configured, on a site address with no host", func(t *testing.T) {
		cfg := gt.Config(standardsOAuth(t, "token_format jwt\n\tissuer https://auth.example.com"), standardsSite(up))
		g := gt.Start(t, strings.Replace(cfg, "http://{{.Addr}} {", "http://:{{.Port}} {", 1))
		checkIssuerUnderHost(t, g, "evil.example", "https://auth.example.com")
	})
}

// checkIssuerUnderHost sends the metadata, token and authorization
// requests to g with Host header host, and wants issuer want in each.
func checkIssuerUnderHost(t *testing.T, g *gt.Gateway, host, want string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/.well-known/oauth-authorization-server", nil)
	md := withHost(t, req, host)
	if md.Status != 200 || md.Str("issuer") != want {
		t.Fatalf("metadata under Host %s: %d, issuer %q, want %q", host, md.Status, md.Str("issuer"), want)
	}
	for field, v := range md.JSON {
		if s, ok := v.(string); ok && (strings.HasSuffix(field, "_endpoint") || field == "jwks_uri") && !strings.HasPrefix(s, want+"/") {
			t.Errorf("metadata %s = %q, not under %s", field, s, want)
		}
	}

	req, _ = http.NewRequest(http.MethodPost, g.URL+"/oauth/token", strings.NewReader("grant_type=client_credentials&scope=read"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", "app-secret")
	tok := withHost(t, req, host)
	if tok.Status != 200 {
		t.Fatalf("token under Host %s: %d %s", host, tok.Status, tok.Body)
	}
	access := tok.Str("access_token")
	if c := jwtPayload(t, access); c["iss"] != want || c["aud"] != want {
		t.Fatalf("JWT issued under Host %s: iss %v, aud %v, want %s", host, c["iss"], c["aud"], want)
	}
	if r := gt.Get(t, g.URL+"/data", access); r.Status != 200 {
		t.Fatalf("the JWT on the gateway: %d %s", r.Status, r.Body)
	}
	in := gt.PostForm(t, g.URL+"/oauth/introspect", "rs", "rs-secret", url.Values{"token": {access}})
	if in.JSON["active"] != true || in.Str("iss") != want {
		t.Fatalf("introspection: %s", in.Body)
	}

	b := newBrowser(t, g.URL)
	b.host = host
	if strings.HasPrefix(want, "https://") {
		b.behindTLS() // the session cookie of an https issuer is Secure
	}
	params := url.Values{"response_type": {"code"}, "client_id": {"app"}, "redirect_uri": {"http://127.0.0.1/app/callback"},
		"scope": {"read"}, "state": {"s1"}}
	u := b.approve(params, "alice", "alice-pw")
	if q := u.Query(); q.Get("code") == "" || q.Get("iss") != want {
		t.Fatalf("authorization response under Host %s: %s, want iss %s", host, u, want)
	}
	// An error response names the issuer too.
	params.Set("response_type", "token")
	u = clientRedirect(t, b.authorize(params))
	if q := u.Query(); q.Get("error") != "unsupported_response_type" || q.Get("iss") != want {
		t.Fatalf("authorization error response under Host %s: %s, want iss %s", host, u, want)
	}
}

// runRefused runs `caddy run` on a Caddyfile and wants the gateway to exit
// with an error containing msg.
func runRefused(t *testing.T, caddyfile, msg string) {
	t.Helper()
	if out := gt.RunRefused(t, caddyfile, t.TempDir()); !strings.Contains(out, msg) {
		t.Fatalf("want an exit with %q, got:\n%s", msg, out)
	}
}

// TestIssuerAmbiguousConfigRefused: without issuer, a config whose
// oauth_server sites name no single origin is refused when it starts,
// asking for the issuer option; on a reload the previous config keeps
// serving.
func TestIssuerAmbiguousConfigRefused(t *testing.T) {
	global := "{\n\tadmin off\n\tpersist_config off\n\toauth {\n\t\tstore memory\n\t}\n}\n\n"
	t.Run("two hosts", func(t *testing.T) {
		p := gt.FreePort(t)
		runRefused(t, global+fmt.Sprintf("http://a.example:%d {\n\toauth_server\n}\n\nhttp://b.example:%d {\n\toauth_server\n}\n", p, p),
			fmt.Sprintf("oauth: set issuer in the oauth global option: oauth_server is served on several origins (http://a.example:%d, http://b.example:%d)", p, p))
	})
	t.Run("no host", func(t *testing.T) {
		p := gt.FreePort(t)
		runRefused(t, global+fmt.Sprintf("http://:%d {\n\toauth_server\n}\n", p),
			fmt.Sprintf("oauth: set issuer in the oauth global option: oauth_server is served on a site address with no host (:%d)", p))
	})
	t.Run("reload", func(t *testing.T) {
		up := gt.StartUpstream(t)
		cfg := gt.Config(standardsOAuth(t, ""), standardsSite(up))
		g := gt.Start(t, cfg)
		r := g.Reload(strings.Replace(cfg, "http://{{.Addr}} {", "http://:{{.Port}} {", 1), false)
		if r.Status == 200 || !strings.Contains(string(r.Body), "set issuer in the oauth global option") {
			t.Fatalf("reload onto an address with no host: %d %s", r.Status, r.Body)
		}
		// Caddy may reset a connection it accepts during the listener
		// handoff of a reload (see the README): the GET is resent once
		// when its connection broke before any answer.
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := client.Get(g.URL + "/.well-known/oauth-authorization-server")
		if err != nil {
			resp, err = client.Get(g.URL + "/.well-known/oauth-authorization-server")
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var md map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&md); err != nil || md["issuer"] != g.URL {
			t.Fatalf("after the refused reload: %d, issuer %v, %v", resp.StatusCode, md["issuer"], err)
		}
	})
}

// TestJWTOfAnotherIssuerRefused: a JWT access token whose iss or aud is
// not the gateway's current one is refused by oauth_protect and inactive
// at introspection: here the gateway's store is started again under
// another issuer (derived from its site address), then another audience.
func TestJWTOfAnotherIssuerRefused(t *testing.T) {
	up := gt.StartUpstream(t)
	dir := t.TempDir()
	config := func(extra string) string {
		return gt.Config(`oauth {
	token_format jwt
	`+extra+`
	client app {
		secret app-secret
		grants client_credentials
		scopes read
	}
	client rs {
		secret rs-secret
		introspect
	}
}`, standardsSite(up))
	}
	a := gt.Start(t, config("issuer https://auth.example.com"), gt.WithDataDir(dir))
	tok := gt.PostForm(t, a.URL+"/oauth/token", "app", "app-secret", url.Values{"grant_type": {"client_credentials"}})
	access := tok.Str("access_token")
	if c := jwtPayload(t, access); c["iss"] != "https://auth.example.com" {
		t.Fatalf("iss %v", c["iss"])
	}
	if r := gt.Get(t, a.URL+"/data", access); r.Status != 200 {
		t.Fatalf("the JWT on its own gateway: %d %s", r.Status, r.Body)
	}
	a.Stop()

	for _, extra := range []string{"", "issuer https://auth.example.com\n\taudience https://api.example.com"} {
		g := gt.Start(t, config(extra), gt.WithDataDir(dir))
		r := gt.Get(t, g.URL+"/data", access)
		if r.Status != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("with %q, the JWT of another issuer or audience: %d %q", extra, r.Status, r.Header.Get("WWW-Authenticate"))
		}
		in := gt.PostForm(t, g.URL+"/oauth/introspect", "rs", "rs-secret", url.Values{"token": {access}})
		if in.Status != 200 || in.JSON["active"] != false || len(in.JSON) != 1 {
			t.Fatalf("with %q, introspection: %d %s", extra, in.Status, in.Body)
		}
		// The store and its signing key still serve: a token of this
		// issuer passes.
		own := gt.PostForm(t, g.URL+"/oauth/token", "app", "app-secret", url.Values{"grant_type": {"client_credentials"}})
		if r := gt.Get(t, g.URL+"/data", own.Str("access_token")); r.Status != 200 {
			t.Fatalf("with %q, a token of the gateway: %d %s", extra, r.Status, r.Body)
		}
		g.Stop()
	}
}
