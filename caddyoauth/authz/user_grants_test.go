package authz

import (
	"context"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func newGrantsService(t *testing.T) *Service {
	t.Helper()
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	users := StaticUsers{
		"alice": {Username: "alice", PasswordHash: hash, UserID: "alice"},
		"bob":   {Username: "bob", PasswordHash: hash, UserID: "bob"},
	}
	clients := StaticClients{}
	for _, id := range []string{"app-a", "app-b"} {
		c := &Client{ID: id, Grants: []string{GrantPassword, GrantRefreshToken}, Scopes: []string{"read"}}
		c.SetSecret(id + "-secret")
		clients[id] = c
	}
	return New(Config{AccessTokenTTL: time.Hour, RefreshTokenTTL: time.Hour, CodeTTL: time.Minute, RefreshRotation: true}, memStore(t), clients, users, nil)
}

func passwordToken(t *testing.T, s *Service, client, user string) string {
	t.Helper()
	return post(t, s, form("grant_type", "password", "username", user, "password", "pw"), basic(client, client+"-secret")).wantToken(t).str("access_token")
}

// TestRevokeUserClient: revoking one app for one user ends exactly that
// app's tokens for that user.
func TestRevokeUserClient(t *testing.T) {
	s := newGrantsService(t)
	ctx := context.Background()
	aliceA := passwordToken(t, s, "app-a", "alice")
	aliceB := passwordToken(t, s, "app-b", "alice")
	bobA := passwordToken(t, s, "app-a", "bob")

	grants, err := s.UserGrants(ctx, "alice")
	if err != nil || len(grants) != 2 || grants[0].ClientID != "app-a" || grants[1].ClientID != "app-b" || grants[0].IssuedAt.IsZero() {
		t.Fatalf("alice's grants: %+v %v", grants, err)
	}
	if err := s.RevokeUserClient(ctx, "alice", "app-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Validate(ctx, aliceA); err != ErrTokenInvalid {
		t.Fatalf("alice's app-a token after revoke: %v", err)
	}
	for name, tok := range map[string]string{"alice/app-b": aliceB, "bob/app-a": bobA} {
		if _, err := s.Validate(ctx, tok); err != nil {
			t.Fatalf("%s token after revoking alice/app-a: %v", name, err)
		}
	}
	grants, _ = s.UserGrants(ctx, "alice")
	if len(grants) != 1 || grants[0].ClientID != "app-b" {
		t.Fatalf("alice's grants after revoke: %+v", grants)
	}
	if g, _ := s.UserGrants(ctx, ""); g != nil {
		t.Fatal("grants for an empty user id")
	}
}
