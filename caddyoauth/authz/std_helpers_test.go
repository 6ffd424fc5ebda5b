package authz

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-oauth2/oauth2/v4"
	"golang.org/x/crypto/bcrypt"

	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
)

const stdRedirect = "https://app.example.com/cb"

// stdClients: app may use every grant; other is a second confidential
// client; rs is a resource server that may introspect; pub is public.
func stdClients() StaticClients {
	app := &Client{ID: "app", Grants: KnownGrants, Scopes: []string{"read", "write"}, RedirectURIs: []string{stdRedirect}}
	app.SetSecret("app-secret")
	other := &Client{ID: "other", Grants: KnownGrants, Scopes: []string{"read"}, RedirectURIs: []string{stdRedirect}}
	other.SetSecret("other-secret")
	rs := &Client{ID: "rs", Introspect: true}
	rs.SetSecret("rs-secret")
	pub := &Client{ID: "pub", Public: true, Grants: []string{GrantAuthorizationCode, GrantRefreshToken}, Scopes: []string{"read"}, RedirectURIs: []string{stdRedirect}}
	return StaticClients{"app": app, "other": other, "rs": rs, "pub": pub}
}

var stdSecrets = map[string]string{"app": "app-secret", "other": "other-secret", "rs": "rs-secret"}

func stdUsers(t testing.TB) StaticUsers {
	h, err := bcrypt.GenerateFromPassword([]byte("alice-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return StaticUsers{"alice": {Username: "alice", PasswordHash: h, UserID: "user-1"}}
}

// fixedIssuer is a Config.Issuer naming iss.
func fixedIssuer(iss string) func() (string, error) {
	return func() (string, error) { return iss, nil }
}

// newStdService builds a Service on an in-memory store with rotation on
// and the given changes to its config.
func newStdService(t testing.TB, change func(*Config)) (*Service, StaticClients) {
	t.Helper()
	db, err := filestore.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := Config{AccessTokenTTL: time.Hour, RefreshTokenTTL: 24 * time.Hour, CodeTTL: time.Minute,
		RefreshRotation: true, RefreshGrace: 10 * time.Second, Issuer: fixedIssuer("https://auth.example.com")}
	if change != nil {
		change(&cfg)
	}
	clients := stdClients()
	return New(cfg, db, clients, stdUsers(t), nil), clients
}

// result is an endpoint's answer.
type result struct {
	status int
	header http.Header
	body   string
	json   map[string]any
}

func (r *result) str(k string) string { s, _ := r.json[k].(string); return s }

// post sends a form to handler as client (HTTP Basic; no auth when client
// is empty; client_id in the form for a public client).
func stdPost(t testing.TB, handler http.HandlerFunc, client string, form url.Values) *result {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "https://auth.example.com/oauth/x", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if sec, ok := stdSecrets[client]; ok {
		req.SetBasicAuth(client, sec)
	}
	rec := httptest.NewRecorder()
	handler(rec, req)
	out := &result{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
	_ = json.Unmarshal(rec.Body.Bytes(), &out.json)
	return out
}

// stdPasswordTokens gets alice's tokens for client app.
func stdPasswordTokens(t testing.TB, s *Service) (access, refresh string) {
	t.Helper()
	r := stdPost(t, s.ServeToken, "app", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-pw"}, "scope": {"read write"}})
	if r.status != 200 || r.str("access_token") == "" || r.str("refresh_token") == "" {
		t.Fatalf("password grant: %d %s", r.status, r.body)
	}
	return r.str("access_token"), r.str("refresh_token")
}

func refreshWith(t testing.TB, s *Service, client, token string) *result {
	t.Helper()
	return stdPost(t, s.ServeToken, client, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}})
}

// stdMintCode issues an authorization code server-side, as the authorize
// endpoint does.
func stdMintCode(t testing.TB, s *Service, client, userID, scope string) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "https://auth.example.com/oauth/authorize", nil)
	ti, err := s.Manager().GenerateAuthToken(context.Background(), oauth2.Code, &oauth2.TokenGenerateRequest{
		ClientID: client, UserID: userID, RedirectURI: stdRedirect, Scope: scope, Request: req})
	if err != nil {
		t.Fatal(err)
	}
	return ti.GetCode()
}

func valid(s *Service, access string) bool {
	_, err := s.Validate(context.Background(), access)
	return err == nil
}

func wantError(t testing.TB, r *result, status int, code string) {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Fatalf("got %d %s, want %d %s", r.status, r.body, status, code)
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Fatalf("Cache-Control = %q, want no-store", got)
	}
}
