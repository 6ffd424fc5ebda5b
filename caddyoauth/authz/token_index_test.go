package authz

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// setMembers returns the sorted members of a store set.
func setMembers(t *testing.T, s *Service, set string) []string {
	t.Helper()
	m, err := s.store.Members(context.Background(), set)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

func wantMembers(t *testing.T, s *Service, set string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := setMembers(t, s, set); !slices.Equal(got, want) {
		t.Fatalf("members of %s = %q, want %q", set[:4], got, want)
	}
}

// familyOfRefresh reads the family a refresh token belongs to.
func familyOfRefresh(t *testing.T, s *Service, refresh string) string {
	t.Helper()
	r, err := s.load(context.Background(), refreshKey(refresh))
	if err != nil || r.Family == "" {
		t.Fatalf("refresh record: %+v %v", r, err)
	}
	return r.Family
}

// TestRefreshGrantIndexesOnlyTheRefreshToken: a grant whose refresh token
// outlives its access token puts only the refresh key in its user's set
// (and writes no family set), also after refreshes with and without rotation, and every
// revocation path still ends the access token, which it reaches through
// the refresh record's Pair.
func TestRefreshGrantIndexesOnlyTheRefreshToken(t *testing.T) {
	ctx := context.Background()
	revocations := map[string]func(s *Service, refresh, family string) error{
		"RevokeUser":       func(s *Service, _, _ string) error { return s.RevokeUser(ctx, "user-1") },
		"RevokeFamily":     func(s *Service, _, fam string) error { return s.RevokeFamily(ctx, "user-1", fam) },
		"RevokeUserClient": func(s *Service, _, _ string) error { return s.RevokeUserClient(ctx, "user-1", "app") },
		"RevokeRefreshToken": func(s *Service, refresh, _ string) error {
			return s.Revoke(ctx, s.clients.(StaticClients)["app"], refresh, HintRefreshToken)
		},
	}
	for _, refreshes := range []string{"none", "rotation", "no rotation"} {
		for name, revoke := range revocations {
			t.Run(refreshes+"/"+name, func(t *testing.T) {
				s, _ := newTestService(t, func(c *Config) { c.RefreshRotation = refreshes != "no rotation" })
				access, refresh := aliceTokens(t, s)
				var r *reply
				if refreshes != "none" {
					r = refreshGrant(t, s, refresh, "", as("app"))
					if r.status != 200 {
						t.Fatalf("refresh: %d %s", r.status, r.body)
					}
					if valid(s, access) {
						t.Fatal("the access token a refresh replaced still works")
					}
					access = r.str("access_token")
				}
				fam := familyOfRefresh(t, s, refresh)
				if refreshes == "rotation" {
					// The used refresh token stays indexed: a reuse of it
					// must still find its family.
					used := refresh
					refresh = r.str("refresh_token")
					wantMembers(t, s, userSet("user-1"), refreshKey(used), refreshKey(refresh))
				} else {
					wantMembers(t, s, userSet("user-1"), refreshKey(refresh))
				}
				// The user's set indexes the family: no set of its own.
				wantMembers(t, s, familySet(fam))
				if !valid(s, access) {
					t.Fatal("access token does not work")
				}
				if g, err := s.UserGrants(ctx, "user-1"); err != nil || len(g) != 1 || g[0].ClientID != "app" {
					t.Fatalf("UserGrants = %+v, %v", g, err)
				}
				if err := revoke(s, refresh, fam); err != nil {
					t.Fatal(err)
				}
				if valid(s, access) {
					t.Fatal("access token works after the revocation")
				}
				refreshGrant(t, s, refresh, "", as("app")).wantError(t, 400, "invalid_grant")
			})
		}
	}
}

// TestAccessIndexedWhenRefreshExpiresFirst: an access token that outlives
// its refresh token cannot be reached through it once the refresh record
// expires, so it stays a member of its user's set, and RevokeUser ends it.
func TestAccessIndexedWhenRefreshExpiresFirst(t *testing.T) {
	s, _ := newTestService(t, func(c *Config) { c.AccessTokenTTL, c.RefreshTokenTTL = time.Hour, 30*time.Minute })
	access, refresh := aliceTokens(t, s)
	fam := familyOfRefresh(t, s, refresh)
	wantMembers(t, s, userSet("user-1"), accessKey(access), refreshKey(refresh))
	wantMembers(t, s, familySet(fam))
	// The refresh record gone (as once expired), the index still finds
	// the access token.
	if err := s.store.Delete(context.Background(), refreshKey(refresh)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeUser(context.Background(), "user-1"); err != nil {
		t.Fatal(err)
	}
	if valid(s, access) {
		t.Fatal("access token works after RevokeUser")
	}
}

// TestReissueLateIndexesAccess: without rotation, an access token issued
// when the refresh token has less left to live than an access token does
// is indexed itself, and RevokeUser and RevokeFamily find it after the
// refresh record is gone.
func TestReissueLateIndexesAccess(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"RevokeUser", "RevokeFamily"} {
		t.Run(name, func(t *testing.T) {
			s, _ := newTestService(t, func(c *Config) { c.RefreshRotation = false })
			now := time.Now()
			at := &record{ClientID: "app", UserID: "user-1", Scope: "read", Family: "fam-late",
				IssuedAt: now.UnixNano(), ExpiresAt: expiresAt(now, time.Hour)}
			rt := &record{ClientID: "app", UserID: "user-1", Scope: "read", Family: "fam-late",
				IssuedAt: now.Add(-23 * time.Hour).UnixNano(), ExpiresAt: expiresAt(now, 10*time.Minute)}
			old, refresh := randomToken(), randomToken()
			if err := s.saveTokens(ctx, old, at, refresh, rt); err != nil {
				t.Fatal(err)
			}
			wantMembers(t, s, userSet("user-1"), accessKey(old), refreshKey(refresh))
			r := refreshGrant(t, s, refresh, "", as("app"))
			if r.status != 200 {
				t.Fatalf("refresh: %d %s", r.status, r.body)
			}
			access := r.str("access_token")
			wantMembers(t, s, userSet("user-1"), accessKey(old), accessKey(access), refreshKey(refresh))
			if err := s.store.Delete(ctx, refreshKey(refresh)); err != nil {
				t.Fatal(err)
			}
			if err := revokeBy(ctx, s, name, "user-1", "fam-late"); err != nil {
				t.Fatal(err)
			}
			if valid(s, access) {
				t.Fatalf("access token works after %s", name)
			}
		})
	}
}

// TestClientCredentialsTokenRevokedByRevokeUser: a client_credentials token
// of a client acting as a user has no refresh token, so it is indexed
// itself, and RevokeUser ends it.
func TestClientCredentialsTokenRevokedByRevokeUser(t *testing.T) {
	s, clients := newTestService(t, nil)
	clients["app"].UserID = "user-1"
	r := call(t, s.ServeToken, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, as("app"))
	if r.status != 200 || r.str("refresh_token") != "" {
		t.Fatalf("client_credentials: %d %s", r.status, r.body)
	}
	access := r.str("access_token")
	wantMembers(t, s, userSet("user-1"), accessKey(access))
	if err := s.RevokeUser(context.Background(), "user-1"); err != nil {
		t.Fatal(err)
	}
	if valid(s, access) {
		t.Fatal("client_credentials token works after RevokeUser")
	}
}

// TestRevocationRacingRefresh: refreshes racing a revocation of their
// family or user leave no access token working, with and without
// rotation: each refresh names its new access token in the refresh record
// or the user's set before it checks the family's revocation mark.
func TestRevocationRacingRefresh(t *testing.T) {
	ctx := context.Background()
	for _, rotation := range []bool{false, true} {
		for _, how := range []string{"RevokeFamily", "RevokeUser"} {
			t.Run(fmt.Sprintf("rotation=%v/%s", rotation, how), func(t *testing.T) {
				s, _ := newTestService(t, func(c *Config) { c.RefreshRotation = rotation; c.RefreshGrace = time.Hour })
				for round := 0; round < 20; round++ {
					access, refresh := aliceTokens(t, s)
					fam := familyOfRefresh(t, s, refresh)
					var (
						mu     sync.Mutex
						issued = []string{access}
						wg     sync.WaitGroup
					)
					for w := 0; w < 4; w++ {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for i := 0; i < 3; i++ {
								r := refreshGrant(t, s, refresh, "", as("app"))
								if r.status != 200 {
									return
								}
								mu.Lock()
								issued = append(issued, r.str("access_token"))
								mu.Unlock()
							}
						}()
					}
					if err := revokeBy(ctx, s, how, "user-1", fam); err != nil {
						t.Fatal(err)
					}
					wg.Wait()
					for i, a := range issued {
						if valid(s, a) {
							t.Fatalf("round %d: access token %d of %d works after %s", round, i, len(issued), how)
						}
					}
				}
			})
		}
	}
}

// revokeBy ends the tokens of userID (how "RevokeUser") or of family.
func revokeBy(ctx context.Context, s *Service, how, userID, family string) error {
	if how == "RevokeUser" {
		return s.RevokeUser(ctx, userID)
	}
	return s.RevokeFamily(ctx, userID, family)
}

// hookStore runs hook once, right after the first Members or Get call
// that match accepts: a refresh put there lands exactly between two steps
// of a revocation.
type hookStore struct {
	store.Store
	mu    sync.Mutex
	match func(op, key string) bool
	hook  func()
}

func (h *hookStore) fire(op, key string) {
	h.mu.Lock()
	f := h.hook
	if f != nil && h.match(op, key) {
		h.hook = nil
	} else {
		f = nil
	}
	h.mu.Unlock()
	if f != nil {
		f()
	}
}

func (h *hookStore) Members(ctx context.Context, set string) ([]string, error) {
	m, err := h.Store.Members(ctx, set)
	h.fire("members", set)
	return m, err
}

func (h *hookStore) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := h.Store.Get(ctx, key)
	h.fire("get", key)
	return b, err
}

// TestRevocationInterleavedWithRefresh puts a whole refresh between the
// steps of RevokeUser and RevokeFamily: after the listing of the set, and
// after the read of the refresh record whose Pair the revocation follows.
// No access token may work afterwards: a refresh that saw no revocation
// mark has named its new token where the revocation, listing and reading
// after the mark, finds it.
func TestRevocationInterleavedWithRefresh(t *testing.T) {
	ctx := context.Background()
	for _, rotation := range []bool{false, true} {
		for _, how := range []string{"RevokeUser", "RevokeFamily"} {
			for _, after := range []string{"members", "get"} {
				t.Run(fmt.Sprintf("rotation=%v/%s/after-%s", rotation, how, after), func(t *testing.T) {
					s, _ := newTestService(t, func(c *Config) { c.RefreshRotation = rotation })
					access, refresh := aliceTokens(t, s)
					fam := familyOfRefresh(t, s, refresh)
					var racing string
					h := &hookStore{Store: s.store,
						match: func(op, key string) bool {
							return op == after && (op == "members" || key == refreshKey(refresh))
						},
						hook: func() {
							r := refreshGrant(t, s, refresh, "", as("app"))
							if r.status != 200 {
								t.Errorf("the racing refresh failed: %d %s", r.status, r.body)
							}
							racing = r.str("access_token")
						}}
					s.store = h
					if err := revokeBy(ctx, s, how, "user-1", fam); err != nil {
						t.Fatal(err)
					}
					if racing == "" {
						t.Fatal("the refresh did not run inside the revocation")
					}
					for name, a := range map[string]string{"first": access, "racing": racing} {
						if valid(s, a) {
							t.Fatalf("the %s access token works after %s", name, how)
						}
					}
				})
			}
		}
	}
}

// TestRevokeFamilyLeavesTheUsersOtherGrants: a family is found in its
// user's set among the user's other grants; revoking it ends its tokens
// and leaves the other grant working and indexed.
func TestRevokeFamilyLeavesTheUsersOtherGrants(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestService(t, nil)
	access1, refresh1 := aliceTokens(t, s)
	access2, refresh2 := aliceTokens(t, s)
	if err := s.RevokeFamily(ctx, "user-1", familyOfRefresh(t, s, refresh1)); err != nil {
		t.Fatal(err)
	}
	if valid(s, access1) {
		t.Fatal("the revoked family's access token works")
	}
	refreshGrant(t, s, refresh1, "", as("app")).wantError(t, 400, "invalid_grant")
	if !valid(s, access2) {
		t.Fatal("the user's other grant was revoked with the family")
	}
	wantMembers(t, s, userSet("user-1"), refreshKey(refresh2))
	if r := refreshGrant(t, s, refresh2, "", as("app")); r.status != 200 {
		t.Fatalf("refresh of the other grant: %d %s", r.status, r.body)
	}
}

// TestUserlessFamilyIndexedByItsOwnSet: a grant without a user (a refresh
// token a client holds for itself) has no user's set, so its family set
// indexes it, and RevokeFamily ends it through that set.
func TestUserlessFamilyIndexedByItsOwnSet(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestService(t, nil)
	access, refresh := saveGrant(t, s, "", "fam-c")
	wantMembers(t, s, familySet("fam-c"), refreshKey(refresh))
	if err := s.RevokeFamily(ctx, "", "fam-c"); err != nil {
		t.Fatal(err)
	}
	if valid(s, access) {
		t.Fatal("access token works after RevokeFamily")
	}
	wantMembers(t, s, familySet("fam-c"))
}

// TestFamilySetsWrittenBeforeStillRevoke: a store written when every
// family had a set of its own as well as its user's (and a used code's
// marker named the family alone) is revoked through the user's set, and
// RevokeFamily also drops the old family set; a marker without a user
// revokes through the family set.
func TestFamilySetsWrittenBeforeStillRevoke(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestService(t, nil)
	old := func(fam string) (access string) {
		access, refresh := saveGrant(t, s, "user-1", fam)
		if err := s.store.AddMember(ctx, familySet(fam), refreshKey(refresh), 2*time.Hour); err != nil {
			t.Fatal(err)
		}
		return access
	}
	a1, a2 := old("fam-old-1"), old("fam-old-2")
	if err := s.RevokeFamily(ctx, "user-1", "fam-old-1"); err != nil {
		t.Fatal(err)
	}
	if valid(s, a1) || !valid(s, a2) {
		t.Fatalf("after revoking fam-old-1: first works %v, second works %v; want false, true", valid(s, a1), valid(s, a2))
	}
	wantMembers(t, s, familySet("fam-old-1"))

	fam, user := parseUsedCodeMarker([]byte("fam-old-2"))
	if fam != "fam-old-2" || user != "" {
		t.Fatalf("marker without a user parsed as %q, %q", fam, user)
	}
	if err := s.RevokeFamily(ctx, user, fam); err != nil {
		t.Fatal(err)
	}
	if valid(s, a2) {
		t.Fatal("a family revoked by a marker without its user still works")
	}
	if fam, user := parseUsedCodeMarker(usedCodeMarker("f", "u")); fam != "f" || user != "u" {
		t.Fatalf("marker round trip: %q, %q", fam, user)
	}
}

// saveGrant saves an access token (1 h) and a refresh token (2 h) of client
// app for userID in family, as a grant does.
func saveGrant(t *testing.T, s *Service, userID, family string) (access, refresh string) {
	t.Helper()
	now := time.Now()
	at := &record{ClientID: "app", UserID: userID, Family: family, IssuedAt: now.UnixNano(), ExpiresAt: expiresAt(now, time.Hour)}
	rt := &record{ClientID: "app", UserID: userID, Family: family, IssuedAt: now.UnixNano(), ExpiresAt: expiresAt(now, 2*time.Hour)}
	access, refresh = randomToken(), randomToken()
	if err := s.saveTokens(context.Background(), access, at, refresh, rt); err != nil {
		t.Fatal(err)
	}
	return access, refresh
}
