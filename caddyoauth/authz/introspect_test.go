package authz

import (
	"net/url"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/internal/poll"
)

func introspect(t testing.TB, s *Service, client string, form url.Values) *reply {
	t.Helper()
	return call(t, s.ServeIntrospect, form, as(client))
}

func wantInactive(t testing.TB, r *reply) {
	t.Helper()
	// RFC 7662 §2.2: an inactive token answers only active false.
	if r.status != 200 || len(r.json) != 1 || r.json["active"] != false {
		t.Fatalf("want exactly {\"active\":false}, got %d %s", r.status, r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Fatal("introspection answer may be cached")
	}
}

// TestIntrospectActiveAccessToken: the fields of RFC 7662 §2.2 for a
// client's own token and, with the introspect option, for a resource
// server.
func TestIntrospectActiveAccessToken(t *testing.T) {
	s, _ := newTestService(t, nil)
	before := time.Now().Unix()
	access, _ := aliceTokens(t, s)
	for _, client := range []string{"app", "rs"} {
		r := introspect(t, s, client, url.Values{"token": {access}})
		if r.status != 200 || r.json["active"] != true {
			t.Fatalf("%s: %d %s", client, r.status, r.body)
		}
		want := map[string]string{"scope": "read write", "client_id": "app", "username": "alice", "sub": "user-1", "token_type": "Bearer"}
		for k, v := range want {
			if r.str(k) != v {
				t.Errorf("%s: %s = %q, want %q", client, k, r.str(k), v)
			}
		}
		iat, _ := r.json["iat"].(float64)
		exp, _ := r.json["exp"].(float64)
		if int64(iat) < before || int64(iat) > time.Now().Unix() || int64(exp) != int64(iat)+3600 {
			t.Errorf("%s: iat=%v exp=%v", client, r.json["iat"], r.json["exp"])
		}
		if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Content-Type") != "application/json;charset=UTF-8" {
			t.Errorf("headers: %v", r.header)
		}
	}
}

// TestIntrospectClientCredentialsSub: with no user, sub is the client.
func TestIntrospectClientCredentialsSub(t *testing.T) {
	s, _ := newTestService(t, nil)
	tok := call(t, s.ServeToken, url.Values{"grant_type": {"client_credentials"}}, as("app"))
	r := introspect(t, s, "app", url.Values{"token": {tok.str("access_token")}})
	if r.json["active"] != true || r.str("sub") != "app" || r.str("username") != "" {
		t.Fatalf("got %s", r.body)
	}
}

// TestIntrospectRefreshToken: a live refresh token is active, with no
// token_type; once rotated it is not.
func TestIntrospectRefreshToken(t *testing.T) {
	s, _ := newTestService(t, nil)
	_, refresh := aliceTokens(t, s)
	r := introspect(t, s, "app", url.Values{"token": {refresh}, "token_type_hint": {"refresh_token"}})
	if r.json["active"] != true || r.str("client_id") != "app" || r.str("token_type") != "" {
		t.Fatalf("got %s", r.body)
	}
	refreshGrant(t, s, refresh, "", as("app"))
	wantInactive(t, introspect(t, s, "app", url.Values{"token": {refresh}}))
}

// TestIntrospectInactive: unknown, revoked, foreign, and removed-client
// tokens all answer only {"active": false}.
func TestIntrospectInactive(t *testing.T) {
	s, clients := newTestService(t, nil)
	access, _ := aliceTokens(t, s)
	wantInactive(t, introspect(t, s, "other", url.Values{"token": {access}}))
	wantInactive(t, introspect(t, s, "app", url.Values{"token": {"unknown"}}))

	revoke(t, s, "app", url.Values{"token": {access}})
	wantInactive(t, introspect(t, s, "app", url.Values{"token": {access}}))

	access, _ = aliceTokens(t, s)
	delete(clients, "app")
	wantInactive(t, introspect(t, s, "rs", url.Values{"token": {access}}))
}

// TestIntrospectExpired: an expired token is inactive.
func TestIntrospectExpired(t *testing.T) {
	s, _ := newTestService(t, func(c *Config) { c.AccessTokenTTL = time.Millisecond })
	tok := call(t, s.ServeToken, url.Values{"grant_type": {"client_credentials"}}, as("app"))
	poll.Until(t, 5*time.Second, "the token expires", func() bool { return !valid(s, tok.str("access_token")) })
	wantInactive(t, introspect(t, s, "rs", url.Values{"token": {tok.str("access_token")}}))
}

// TestIntrospectErrors: public clients and unauthenticated callers get
// invalid_client (401); a missing token is invalid_request.
func TestIntrospectErrors(t *testing.T) {
	s, _ := newTestService(t, nil)
	access, _ := aliceTokens(t, s)
	introspect(t, s, "pub", url.Values{"token": {access}, "client_id": {"pub"}}).wantError(t, 401, "invalid_client")
	introspect(t, s, "", url.Values{"token": {access}}).wantError(t, 401, "invalid_client")
	introspect(t, s, "rs", url.Values{}).wantError(t, 400, "invalid_request")
}
