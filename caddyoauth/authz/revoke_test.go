package authz

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func revoke(t testing.TB, s *Service, client string, form url.Values) *reply {
	t.Helper()
	return call(t, s.ServeRevoke, form, as(client))
}

func wantRevoked200(t testing.TB, r *reply) {
	t.Helper()
	if r.status != 200 || r.body != "" {
		t.Fatalf("revocation: got %d %q, want 200 with an empty body", r.status, r.body)
	}
}

// TestRevokeAccessToken: RFC 7009 §2.2: 200, and the token is gone; the
// refresh token issued with it stays (§2.1 only says MAY).
func TestRevokeAccessToken(t *testing.T) {
	s, _ := newTestService(t, nil)
	access, refresh := aliceTokens(t, s)
	wantRevoked200(t, revoke(t, s, "app", url.Values{"token": {access}, "token_type_hint": {"access_token"}}))
	if valid(s, access) {
		t.Fatal("revoked access token still works")
	}
	if r := refreshGrant(t, s, refresh, "", as("app")); r.status != 200 {
		t.Fatalf("the refresh token should survive its access token's revocation: %d %s", r.status, r.body)
	}
}

// TestRevokeRefreshTokenRevokesFamily: revoking a refresh token ends the
// access tokens issued with it (RFC 7009 §2.1), even under a wrong hint.
func TestRevokeRefreshTokenRevokesFamily(t *testing.T) {
	s, _ := newTestService(t, nil)
	_, rt0 := aliceTokens(t, s)
	r := refreshGrant(t, s, rt0, "", as("app"))
	access, refresh := r.str("access_token"), r.str("refresh_token")
	wantRevoked200(t, revoke(t, s, "app", url.Values{"token": {refresh}, "token_type_hint": {"access_token"}}))
	if valid(s, access) {
		t.Fatal("the access token of a revoked refresh token still works")
	}
	refreshGrant(t, s, refresh, "", as("app")).wantError(t, 400, "invalid_grant")
}

// TestRevokeUnsupportedHintIgnored: RFC 7009 §2.1: the hint is only a
// hint; an unknown value does not stop the search, and unsupported_token_type
// is not answered since both kinds of token can be revoked.
func TestRevokeUnsupportedHintIgnored(t *testing.T) {
	s, _ := newTestService(t, nil)
	access, _ := aliceTokens(t, s)
	wantRevoked200(t, revoke(t, s, "app", url.Values{"token": {access}, "token_type_hint": {"id_token"}}))
	if valid(s, access) {
		t.Fatal("token not revoked under an unknown hint")
	}
}

// TestRevokeOtherClientsTokenRefused: a client cannot revoke another's
// token: RFC 7009 §2.1 has the request refused and the client told, here
// with RFC 6749's unauthorized_client, and nothing is revoked.
func TestRevokeOtherClientsTokenRefused(t *testing.T) {
	s, _ := newTestService(t, nil)
	access, refresh := aliceTokens(t, s)
	revoke(t, s, "other", url.Values{"token": {access}}).wantError(t, 400, "unauthorized_client")
	revoke(t, s, "other", url.Values{"token": {refresh}, "token_type_hint": {"refresh_token"}}).wantError(t, 400, "unauthorized_client")
	revoke(t, s, "pub", url.Values{"token": {access}, "client_id": {"pub"}}).wantError(t, 400, "unauthorized_client")
	if !valid(s, access) {
		t.Fatal("another client revoked the token")
	}
	if r := refreshGrant(t, s, refresh, "", as("app")); r.status != 200 {
		t.Fatalf("another client revoked the refresh token: %d %s", r.status, r.body)
	}
}

// TestRevokeUnknownToken: an invalid token answers 200 (RFC 7009 §2.2).
func TestRevokeUnknownToken(t *testing.T) {
	s, _ := newTestService(t, nil)
	wantRevoked200(t, revoke(t, s, "app", url.Values{"token": {"no-such-token"}}))
	wantRevoked200(t, revoke(t, s, "app", url.Values{"token": {strings.Repeat("x", MaxTokenLength+1)}}))
}

// TestRevokePublicClient: a public client identifies by client_id and may
// revoke its own tokens.
func TestRevokePublicClient(t *testing.T) {
	s, _ := newTestService(t, nil)
	code := mintCode(t, s, "pub", appRedirect, "user-1", "read")
	r := call(t, s.ServeToken, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}, "client_id": {"pub"}}, as("pub"))
	if r.status != 200 {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	wantRevoked200(t, revoke(t, s, "pub", url.Values{"token": {r.str("refresh_token")}, "client_id": {"pub"}}))
	if valid(s, r.str("access_token")) {
		t.Fatal("public client's revocation did not take")
	}
}

// TestRevokeErrors: RFC 7009 §2.2.1 / RFC 6749 §5.2 error answers.
func TestRevokeErrors(t *testing.T) {
	s, _ := newTestService(t, nil)
	access, _ := aliceTokens(t, s)

	revoke(t, s, "app", url.Values{}).wantError(t, 400, "invalid_request")
	revoke(t, s, "", url.Values{"token": {access}}).wantError(t, 401, "invalid_client")

	// Wrong Basic credentials: 401 with a Basic challenge.
	req := httptest.NewRequest(http.MethodPost, "/oauth/revoke", strings.NewReader("token="+access))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", "wrong")
	rec := httptest.NewRecorder()
	s.ServeRevoke(rec, req)
	if rec.Code != 401 || !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("bad Basic credentials: %d %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}

	// Not POST.
	rec = httptest.NewRecorder()
	s.ServeRevoke(rec, httptest.NewRequest(http.MethodGet, "/oauth/revoke?token=x", nil))
	if rec.Code != 405 || rec.Header().Get("Allow") != "POST" {
		t.Fatalf("GET: %d Allow=%q", rec.Code, rec.Header().Get("Allow"))
	}

	// The token in the URL, where access logs keep it.
	req = httptest.NewRequest(http.MethodPost, "/oauth/revoke?token="+access, strings.NewReader("token="+access))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", "app-secret")
	rec = httptest.NewRecorder()
	s.ServeRevoke(rec, req)
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "invalid_request") {
		t.Fatalf("token in the URL: %d %s", rec.Code, rec.Body)
	}
	if !valid(s, access) {
		t.Fatal("a refused revocation revoked")
	}
}

// TestRevokeClientLimit: a confidential client over its revocation budget
// gets 429 temporarily_unavailable with Retry-After and revokes nothing; a
// public client, which proves only its client_id, is never counted as a
// client (the per-address limit covers it).
func TestRevokeClientLimit(t *testing.T) {
	s, _ := newTestService(t, nil)
	allow := true
	var asked []string
	s.SetHooks(Hooks{AllowClient: func(_ context.Context, endpoint, id string) (time.Duration, bool) {
		asked = append(asked, endpoint+"/"+id)
		return 3 * time.Second, allow
	}})
	access, _ := aliceTokens(t, s)
	asked = nil // the token request above
	allow = false
	r := call(t, s.ServeRevoke, url.Values{"token": {access}}, as("app"))
	if r.status != 429 || r.header.Get("Retry-After") != "3" || r.str("error") != "temporarily_unavailable" {
		t.Fatalf("limited revocation: %d %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	if !valid(s, access) {
		t.Fatal("a refused revocation revoked the token")
	}
	allow = true
	if r := call(t, s.ServeRevoke, url.Values{"token": {access}}, as("app")); r.status != 200 {
		t.Fatalf("revocation within the limit: %d %s", r.status, r.body)
	}
	if valid(s, access) {
		t.Fatal("the token works after its revocation")
	}
	if r := call(t, s.ServeRevoke, url.Values{"client_id": {"pub"}, "token": {"unknown"}}, as("pub")); r.status != 200 {
		t.Fatalf("public client's revocation: %d %s", r.status, r.body)
	}
	if strings.Join(asked, ",") != "revoke/app,revoke/app" {
		t.Fatalf("AllowClient asked for %v, want revoke/app twice and never the public client", asked)
	}
}
