package authz

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// TestStolenRotatedRefreshTokenRevokesFamily: the legitimate client
// rotates; an attacker then presents the old refresh token after the grace
// period. The attacker gets invalid_grant and the legitimate client's
// newest tokens stop working too (RFC 9700 §4.14.2).
func TestStolenRotatedRefreshTokenRevokesFamily(t *testing.T) {
	s, _ := newTestService(t, func(c *Config) { c.RefreshGrace = 0 })
	at0, rt0 := aliceTokens(t, s)
	r := refreshGrant(t, s, rt0, "", as("app"))
	if r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	at1, rt1 := r.str("access_token"), r.str("refresh_token")
	if rt1 == rt0 || at1 == at0 {
		t.Fatal("rotation returned the same tokens")
	}
	if valid(s, at0) {
		t.Fatal("the access token issued with the rotated refresh token still works")
	}
	if !valid(s, at1) {
		t.Fatal("the new access token does not work")
	}

	refreshGrant(t, s, rt0, "", as("app")).wantError(t, 400, "invalid_grant")
	if valid(s, at1) {
		t.Fatal("after a reuse the newest access token still works")
	}
	refreshGrant(t, s, rt1, "", as("app")).wantError(t, 400, "invalid_grant")
}

// TestConcurrentRefreshGraceZero: of racing refreshes of one token with no
// grace exactly one gets tokens; the others are reuses, answered
// invalid_grant, and revoke the family, the winner's tokens included.
func TestConcurrentRefreshGraceZero(t *testing.T) {
	s, _ := newTestService(t, func(c *Config) { c.RefreshGrace = 0 })
	_, rt0 := aliceTokens(t, s)
	const n = 12
	results := make([]*reply, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = refreshGrant(t, s, rt0, "", as("app")) }()
	}
	wg.Wait()
	var wins []*reply
	for _, r := range results {
		switch {
		case r.status == 200:
			wins = append(wins, r)
		case r.status == 400 && r.str("error") == "invalid_grant":
		default:
			t.Fatalf("unexpected answer %d %s", r.status, r.body)
		}
	}
	if len(wins) != 1 {
		t.Fatalf("%d refreshes won, want exactly 1", len(wins))
	}
	if valid(s, wins[0].str("access_token")) {
		t.Fatal("the winner's access token survived the detected reuse")
	}
	refreshGrant(t, s, wins[0].str("refresh_token"), "", as("app")).wantError(t, 400, "invalid_grant")
}

// TestRotatedRefreshRetryWithinGrace: the same client may present a just-rotated
// refresh token again within the grace period, concurrently too, and every
// token it got keeps working; another client may not.
func TestRotatedRefreshRetryWithinGrace(t *testing.T) {
	s, _ := newTestService(t, func(c *Config) { c.RefreshGrace = time.Minute })
	_, rt0 := aliceTokens(t, s)
	first := refreshGrant(t, s, rt0, "", as("app"))
	if first.status != 200 {
		t.Fatalf("refresh: %d %s", first.status, first.body)
	}
	results := make([]*reply, 6)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = refreshGrant(t, s, rt0, "", as("app")) }()
	}
	wg.Wait()
	for _, r := range append(results, first) {
		if r.status != 200 {
			t.Fatalf("retry within grace: %d %s", r.status, r.body)
		}
		if !valid(s, r.str("access_token")) {
			t.Fatal("a token issued within the grace period does not work")
		}
	}
	refreshGrant(t, s, rt0, "", as("other")).wantError(t, 400, "invalid_grant")
	if !valid(s, first.str("access_token")) {
		t.Fatal("another client's attempt revoked the family")
	}
}

// TestRefreshRotationOff: one long-lived refresh token, reusable; each use
// replaces the previous access token.
func TestRefreshRotationOff(t *testing.T) {
	s, _ := newTestService(t, func(c *Config) { c.RefreshRotation = false; c.RefreshGrace = 0 })
	prev, rt := aliceTokens(t, s)
	for i := range 3 {
		r := refreshGrant(t, s, rt, "", as("app"))
		if r.status != 200 || r.str("refresh_token") != rt {
			t.Fatalf("refresh %d: %d %s", i, r.status, r.body)
		}
		if valid(s, prev) || !valid(s, r.str("access_token")) {
			t.Fatalf("refresh %d: the previous access token must stop, the new one work", i)
		}
		prev = r.str("access_token")
	}
	// Concurrent uses all succeed: the token is not consumed.
	var wg sync.WaitGroup
	results := make([]*reply, 8)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = refreshGrant(t, s, rt, "", as("app")) }()
	}
	wg.Wait()
	for _, r := range results {
		if r.status != 200 {
			t.Fatalf("concurrent refresh without rotation: %d %s", r.status, r.body)
		}
	}
}

// TestAuthorizationCodeReplayRevokesTokens: RFC 6749 §4.1.2: a second
// redemption fails and revokes the tokens issued from the code.
func TestAuthorizationCodeReplayRevokesTokens(t *testing.T) {
	s, _ := newTestService(t, nil)
	code := mintCode(t, s, "app", appRedirect, "user-1", "read")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}}
	r := call(t, s.ServeToken, form, as("app"))
	if r.status != 200 {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	access, refresh := r.str("access_token"), r.str("refresh_token")
	if !valid(s, access) {
		t.Fatal("the access token does not work")
	}
	call(t, s.ServeToken, form, as("app")).wantError(t, 400, "invalid_grant")
	if valid(s, access) {
		t.Fatal("the access token survived the code's replay")
	}
	refreshGrant(t, s, refresh, "", as("app")).wantError(t, 400, "invalid_grant")
}

// TestRevokedFamilyWithdrawsLateTokens: tokens a grant saves into a family
// after that family was revoked (a refresh or code exchange racing the
// revocation) do not work.
func TestRevokedFamilyWithdrawsLateTokens(t *testing.T) {
	s, _ := newTestService(t, nil)
	ctx := context.Background()
	if err := s.RevokeFamily(ctx, "", "fam-1"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	at := &record{ClientID: "app", Family: "fam-1", IssuedAt: now.UnixNano(), ExpiresAt: expiresAt(now, time.Hour)}
	rt := &record{ClientID: "app", Family: "fam-1", IssuedAt: now.UnixNano(), ExpiresAt: expiresAt(now, time.Hour)}
	access, refresh := randomToken(), randomToken()
	if err := s.saveTokens(ctx, access, at, refresh, rt); err != nil {
		t.Fatal(err)
	}
	if valid(s, access) {
		t.Fatal("an access token saved into a revoked family works")
	}
	refreshGrant(t, s, refresh, "", as("app")).wantError(t, 400, "invalid_grant")

	// A family not revoked is unaffected.
	at.Family, rt.Family = "fam-2", "fam-2"
	access = randomToken()
	if err := s.saveTokens(ctx, access, at, randomToken(), rt); err != nil {
		t.Fatal(err)
	}
	if !valid(s, access) {
		t.Fatal("a token of a live family does not work")
	}
}

// TestRemovedClientTokensInvalid: a client dropped from the config takes
// its tokens with it.
func TestRemovedClientTokensInvalid(t *testing.T) {
	s, clients := newTestService(t, nil)
	access, _ := aliceTokens(t, s)
	if !valid(s, access) {
		t.Fatal("token does not work")
	}
	delete(clients, "app")
	if valid(s, access) {
		t.Fatal("the token of a removed client still works")
	}
}

// TestReuseAfterSuccessorUsedRevokesFamily: within the grace period, a
// rotated refresh token whose successor has been used is presented again
// (R0→R1, R1→R2, then R0; or R0→R1→R2→R3, then R1). Its response was not
// lost, so this is the theft signal of RFC 9700 §4.14.2: invalid_grant,
// and the whole family is revoked, the newest access and refresh tokens
// included.
func TestReuseAfterSuccessorUsedRevokesFamily(t *testing.T) {
	for _, tc := range []struct{ refreshes, reused int }{{2, 0}, {3, 1}} {
		t.Run(fmt.Sprintf("R%d", tc.reused), func(t *testing.T) {
			s, _ := newTestService(t, func(c *Config) { c.RefreshGrace = time.Hour })
			_, rt0 := aliceTokens(t, s)
			chain := []string{rt0}
			var access string
			for i := range tc.refreshes {
				r := refreshGrant(t, s, chain[i], "", as("app"))
				if r.status != 200 {
					t.Fatalf("refresh of R%d: %d %s", i, r.status, r.body)
				}
				chain, access = append(chain, r.str("refresh_token")), r.str("access_token")
			}
			refreshGrant(t, s, chain[tc.reused], "", as("app")).wantError(t, 400, "invalid_grant")
			if valid(s, access) {
				t.Fatal("the newest access token works after the reuse")
			}
			refreshGrant(t, s, chain[tc.refreshes], "", as("app")).wantError(t, 400, "invalid_grant")
		})
	}
}

// TestConcurrentFirstRefreshesWithinGrace: two refreshes of one token
// started together within the grace period both get tokens, and both
// branches keep working: each access token validates and each new refresh
// token refreshes, its tokens working too.
func TestConcurrentFirstRefreshesWithinGrace(t *testing.T) {
	s, _ := newTestService(t, nil) // grace 10s
	for round := range 20 {
		_, rt0 := aliceTokens(t, s)
		var pair [2]*reply
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range pair {
			wg.Add(1)
			go func() { defer wg.Done(); <-start; pair[i] = refreshGrant(t, s, rt0, "", as("app")) }()
		}
		close(start)
		wg.Wait()
		for i, r := range pair {
			if r.status != 200 {
				t.Fatalf("round %d: refresh %d: %d %s", round, i, r.status, r.body)
			}
			if !valid(s, r.str("access_token")) {
				t.Fatalf("round %d: access token %d does not work", round, i)
			}
		}
		if pair[0].str("refresh_token") == pair[1].str("refresh_token") {
			t.Fatalf("round %d: both refreshes returned one refresh token", round)
		}
		var next [2]*reply
		for i, r := range pair {
			if next[i] = refreshGrant(t, s, r.str("refresh_token"), "", as("app")); next[i].status != 200 {
				t.Fatalf("round %d: refresh of successor %d: %d %s", round, i, next[i].status, next[i].body)
			}
		}
		for i, r := range next {
			if !valid(s, r.str("access_token")) {
				t.Fatalf("round %d: the access token of successor %d's refresh does not work", round, i)
			}
		}
	}
}

// swapFailStore fails every Swap of key while failing is set.
type swapFailStore struct {
	store.Store
	key     string
	failing atomic.Bool
}

func (f *swapFailStore) Swap(ctx context.Context, key string, prev, next []byte, ttl time.Duration) error {
	if key == f.key && f.failing.Load() {
		return errDown
	}
	return f.Store.Swap(ctx, key, prev, next, ttl)
}

// TestSuccessorUseNotedBeforeRotation: when the store fails to note in R0
// that its successor R1 is being used, the refresh of R1 answers 503
// temporarily_unavailable and R1 stays unused, so the client's retry of
// R1 notes it; then R0 is a reuse, even within the grace period.
func TestSuccessorUseNotedBeforeRotation(t *testing.T) {
	s, _ := newTestService(t, nil)
	_, rt0 := aliceTokens(t, s)
	r1 := refreshGrant(t, s, rt0, "", as("app"))
	if r1.status != 200 {
		t.Fatalf("refresh of R0: %d %s", r1.status, r1.body)
	}
	f := &swapFailStore{Store: s.store, key: refreshKey(rt0)}
	f.failing.Store(true)
	s.store = f
	refreshGrant(t, s, r1.str("refresh_token"), "", as("app")).wantError(t, 503, "temporarily_unavailable")
	f.failing.Store(false)
	r2 := refreshGrant(t, s, r1.str("refresh_token"), "", as("app"))
	if r2.status != 200 {
		t.Fatalf("retry of R1: %d %s", r2.status, r2.body)
	}
	refreshGrant(t, s, rt0, "", as("app")).wantError(t, 400, "invalid_grant")
	if valid(s, r2.str("access_token")) {
		t.Fatal("the newest access token works after the reuse of R0")
	}
}
