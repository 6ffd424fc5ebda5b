package integration

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
	"github.com/caddyoauth/gateway/internal/poll"
)

// protectGateway: /admin/* needs write (user in X-Remote-User), /public/*
// is proxied with no oauth_protect, /whoami answers from placeholders,
// everything else needs read. The access log goes to the process output.
func protectGateway(t *testing.T, up *gt.Upstream) *gt.Gateway {
	t.Helper()
	oauth := fmt.Sprintf(`
oauth {
	store file {{.DataDir}}/tokens.db
	# Bursts of token requests (racing redemptions); limits_test.go tests the limits.
	rate_limit off
	client conf {
		secret conf-secret
		grants password refresh_token client_credentials authorization_code
		redirect_uri https://a.example.com/cb
		scopes read write
	}
	client reader {
		secret reader-secret
		grants client_credentials
		scopes read
		user reader-1
	}
	client anon {
		secret anon-secret
		grants client_credentials
		scopes read write
	}
	user alice %s user-42
}`, gt.BcryptHash(t, "alice-password"))
	return gt.Start(t, gt.Config(oauth, fmt.Sprintf(`
log {
	output stdout
}
oauth_server
handle /admin/* {
	oauth_protect {
		scope write
		user_header X-Remote-User
		realm admin
		forward_token
	}
	request_header X-Caller "{http.auth.user.id}|{oauth.client_id}|{oauth.scope}"
	reverse_proxy %[1]s
}
handle /public/* {
	reverse_proxy %[1]s
}
handle /whoami {
	oauth_protect
	respond "user={http.auth.user.id} client={oauth.client_id} scope={oauth.scope}"
}
handle {
	oauth_protect {
		scope read
	}
	reverse_proxy %[1]s
}`, up.Addr())))
}

func clientToken(t *testing.T, g *gt.Gateway, id, secret, scope string) string {
	t.Helper()
	f := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		f.Set("scope", scope)
	}
	return wantToken(t, gt.PostForm(t, g.URL+"/oauth/token", id, secret, f)).Str("access_token")
}

func aliceTokens(t *testing.T, g *gt.Gateway, scope string) *gt.Response {
	t.Helper()
	return wantToken(t, gt.PostForm(t, g.URL+"/oauth/token", "conf", "conf-secret", url.Values{
		"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password"}, "scope": {scope}}))
}

// forged are identity headers a caller tries to smuggle, in the spellings
// an upstream might read as the same header.
var forged = []string{
	"X-User-ID", "admin", "x_user_id", "admin", "X-USER_ID", "admin",
	"X-Remote-User", "admin", "X_Remote_User", "admin",
	"X-OAuth-Client-ID", "forged", "X-OAuth-Scope", "admin", "x_oauth_scope", "admin",
}

// identityHeaders returns every upstream header that normalizes to one of
// the identity header names, with its values.
func identityHeaders(h http.Header) map[string][]string {
	out := map[string][]string{}
	for k, v := range h {
		switch normalized(k) {
		case "x-user-id", "x-remote-user", "x-oauth-client-id", "x-oauth-scope":
			out[k] = v
		}
	}
	return out
}

// wantChallenge checks a refusal's status and challenge; in challenge,
// {md} stands for the resource_metadata of the site's origin (RFC 9728
// §5.1), which every block of protectGateway guards.
func wantChallenge(t *testing.T, g *gt.Gateway, r *gt.Response, status int, challenge string) {
	t.Helper()
	challenge = strings.Replace(challenge, "{md}", `, resource_metadata="`+g.URL+`/.well-known/oauth-protected-resource"`, 1)
	if r.Status != status || r.Header.Get("WWW-Authenticate") != challenge {
		t.Fatalf("got %d WWW-Authenticate %q, want %d %q", r.Status, r.Header.Get("WWW-Authenticate"), status, challenge)
	}
}

func TestProtectedRoutes(t *testing.T) {
	up := gt.StartUpstream(t)
	g := protectGateway(t, up)
	reader := clientToken(t, g, "reader", "reader-secret", "")
	anon := clientToken(t, g, "anon", "anon-secret", "read")
	alice := aliceTokens(t, g, "read write")
	aliceWrite := aliceTokens(t, g, "write")
	inQuery := clientToken(t, g, "reader", "reader-secret", "")

	t.Run("read route with a user", func(t *testing.T) {
		n := up.Count()
		r := gt.Get(t, g.URL+"/api/items", reader, forged...)
		if r.Status != 200 || up.Count() != n+1 {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		got := identityHeaders(up.Last())
		want := map[string][]string{"X-User-Id": {"reader-1"}, "X-Oauth-Client-Id": {"reader"}, "X-Oauth-Scope": {"read"}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("upstream identity headers %v, want %v", got, want)
		}
	})
	t.Run("token with no user sends no user header", func(t *testing.T) {
		r := gt.Get(t, g.URL+"/api/items", anon, forged...)
		if r.Status != 200 {
			t.Fatalf("got %d", r.Status)
		}
		got := identityHeaders(up.Last())
		want := map[string][]string{"X-Oauth-Client-Id": {"anon"}, "X-Oauth-Scope": {"read"}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("upstream identity headers %v, want %v", got, want)
		}
	})
	t.Run("bearer scheme in any case", func(t *testing.T) {
		if r := gt.Get(t, g.URL+"/api", "", "Authorization", "bEARER "+reader); r.Status != 200 {
			t.Fatalf("got %d", r.Status)
		}
	})
	t.Run("admin route needs write", func(t *testing.T) {
		n := up.Count()
		wantChallenge(t, g, gt.Get(t, g.URL+"/admin/users", reader, forged...), 403, `Bearer realm="admin"{md}, error="insufficient_scope", scope="write"`)
		wantChallenge(t, g, gt.Get(t, g.URL+"/admin/users", alice.Str("access_token")[:10]+"x", forged...), 401, `Bearer realm="admin"{md}, error="invalid_token", error_description="the access token is invalid or revoked"`)
		if up.Count() != n {
			t.Fatal("a refused request reached the upstream")
		}
		r := gt.Get(t, g.URL+"/admin/users", aliceWrite.Str("access_token"), forged...)
		if r.Status != 200 {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		got := identityHeaders(up.Last())
		want := map[string][]string{"X-Remote-User": {"user-42"}, "X-Oauth-Client-Id": {"conf"}, "X-Oauth-Scope": {"write"}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("upstream identity headers %v, want %v", got, want)
		}
		if c := up.Last().Get("X-Caller"); c != "user-42|conf|write" {
			t.Fatalf("request_header saw placeholders %q", c)
		}
		// This block has forward_token: the upstream gets the token too.
		if a := up.Last().Values("Authorization"); len(a) != 1 || a[0] != "Bearer "+aliceWrite.Str("access_token") {
			t.Fatalf("forward_token: upstream Authorization %q", a)
		}
	})
	t.Run("the token stays at the gateway by default", func(t *testing.T) {
		if r := gt.Get(t, g.URL+"/api/items", reader); r.Status != 200 {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		if a, ok := up.Last()["Authorization"]; ok {
			t.Fatalf("the upstream received the bearer token: %q", a)
		}
	})
	t.Run("read route refuses a write-only token", func(t *testing.T) {
		wantChallenge(t, g, gt.Get(t, g.URL+"/api", aliceWrite.Str("access_token")), 403, `Bearer realm="api"{md}, error="insufficient_scope", scope="read"`)
		if r := gt.Get(t, g.URL+"/api", alice.Str("access_token")); r.Status != 200 {
			t.Fatalf("got %d", r.Status)
		}
	})
	t.Run("no token", func(t *testing.T) {
		wantChallenge(t, g, gt.Get(t, g.URL+"/api", ""), 401, `Bearer realm="api"{md}`)
		// Not read from the query (RFC 6750 §2.3 is not supported: access
		// logs keep URIs). This token is left out of the log check below.
		wantChallenge(t, g, gt.Get(t, g.URL+"/api?access_token="+inQuery, ""), 401, `Bearer realm="api"{md}`)
		wantChallenge(t, g, gt.Get(t, g.URL+"/api", "", "Authorization", "Basic cmVhZGVyOnJlYWRlci1zZWNyZXQ="), 401, `Bearer realm="api"{md}`)
	})
	t.Run("bad tokens", func(t *testing.T) {
		wantChallenge(t, g, gt.Get(t, g.URL+"/api", "not-a-token"), 401, `Bearer realm="api"{md}, error="invalid_token", error_description="the access token is invalid or revoked"`)
		for _, h := range [][]string{
			{"Authorization", "Bearer a b"},
			{"Authorization", "Bearer"},
			{"Authorization", `Bearer "x"`},
			{"Authorization", "Bearer " + reader, "Authorization", "Bearer " + reader},
		} {
			r := gt.Get(t, g.URL+"/api", "", h...)
			if r.Status != 400 || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_request"`) {
				t.Fatalf("%q: got %d %q", h, r.Status, r.Header.Get("WWW-Authenticate"))
			}
		}
	})
	t.Run("route without oauth_protect forwards no identity", func(t *testing.T) {
		r := gt.Get(t, g.URL+"/public/page", "", forged...)
		if r.Status != 200 {
			t.Fatalf("got %d", r.Status)
		}
		if got := identityHeaders(up.Last()); len(got) != 0 {
			t.Fatalf("the upstream received %v", got)
		}
	})
	t.Run("placeholders", func(t *testing.T) {
		r := gt.Get(t, g.URL+"/whoami", alice.Str("access_token"))
		if r.Status != 200 || string(r.Body) != "user=user-42 client=conf scope=read write" {
			t.Fatalf("got %d %q", r.Status, r.Body)
		}
		r = gt.Get(t, g.URL+"/whoami", anon)
		if string(r.Body) != "user= client=anon scope=read" {
			t.Fatalf("got %q", r.Body)
		}
		// The access log names the user, never the token.
		if !poll.Wait(5*time.Second, func() bool { return strings.Contains(g.Logs(), `"user_id":"user-42"`) }) {
			t.Fatalf("no access log entry with the user:\n%s", g.Logs())
		}
		for _, tok := range []string{reader, anon, alice.Str("access_token"), alice.Str("refresh_token")} {
			if strings.Contains(g.Logs(), tok) {
				t.Fatal("a token reached the log")
			}
		}
	})
}

// TestTokensSurviveRestartAndExpire: with the file store, tokens outlive a
// restart; a token whose stored expiry has passed is refused as expired.
func TestTokensSurviveRestartAndExpire(t *testing.T) {
	up := gt.StartUpstream(t)
	g := protectGateway(t, up)
	keep := aliceTokens(t, g, "read")
	doomed := clientToken(t, g, "reader", "reader-secret", "")

	g.Stop()
	dbPath := filepath.Join(g.Params.DataDir, "tokens.db")
	raw, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{keep.Str("access_token"), keep.Str("refresh_token"), doomed} {
		if strings.Contains(string(raw), tok) {
			t.Fatal("the store file holds a token in plain")
		}
		if !strings.Contains(string(raw), digest(tok)) {
			t.Fatal("the store file lacks a token's digest: is this the store?")
		}
	}
	db, err := filestore.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	key := "at:" + digest(doomed)
	ctx := context.Background()
	if _, err = db.Get(ctx, key); err == nil {
		// The record is replaced by one in the JSON form records had before
		// the binary one, which the gateway still reads, with its expiry
		// passed.
		b, _ := json.Marshal(map[string]any{"cid": "reader",
			"iat": time.Now().Add(-2 * time.Hour).UnixNano(), "exp": time.Now().Add(-time.Minute).UnixNano()})
		err = db.Put(ctx, key, b, 0)
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("rewriting the stored token: %v", err)
	}
	g.Restart()

	if r := gt.Get(t, g.URL+"/api", keep.Str("access_token")); r.Status != 200 || up.Last().Get("X-User-ID") != "user-42" {
		t.Fatalf("after restart: %d", r.Status)
	}
	wantChallenge(t, g, gt.Get(t, g.URL+"/api", doomed), 401, `Bearer realm="api"{md}, error="invalid_token", error_description="the access token expired"`)
	if r := me(t, g, doomed); r.Status != 401 || r.Str("error") != "invalid_token" {
		t.Fatalf("me with an expired token: %d %s", r.Status, r.Body)
	}
	n := wantToken(t, gt.PostForm(t, g.URL+"/oauth/token", "conf", "conf-secret", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {keep.Str("refresh_token")}}))
	if r := gt.Get(t, g.URL+"/api", n.Str("access_token")); r.Status != 200 {
		t.Fatalf("refreshed after restart: %d", r.Status)
	}
}

// digest is the store key part of a token: base64url(SHA-256).
func digest(token string) string {
	d := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(d[:])
}
