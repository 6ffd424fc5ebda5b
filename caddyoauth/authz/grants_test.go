package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-oauth2/oauth2/v4"
	oerrors "github.com/go-oauth2/oauth2/v4/errors"

	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
)

// passwordTokens gets alice's tokens for client conf.
func passwordTokens(t *testing.T, svc *Service, scope string) *reply {
	t.Helper()
	f := form("grant_type", "password", "username", "alice", "password", alicePass)
	if scope != "" {
		f.Set("scope", scope)
	}
	r := post(t, svc, f, basic("conf", confSecret)).wantToken(t)
	if r.str("refresh_token") == "" {
		t.Fatal("no refresh token")
	}
	return r
}

func mustValid(t *testing.T, svc *Service, token string) *Identity {
	t.Helper()
	id, err := svc.Validate(t.Context(), token)
	if err != nil {
		t.Fatalf("token refused: %v", err)
	}
	return id
}

func mustInvalid(t *testing.T, svc *Service, token string) {
	t.Helper()
	if _, err := svc.Validate(t.Context(), token); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("Validate = %v, want ErrTokenInvalid", err)
	}
}

func TestRefreshWithRotation(t *testing.T) {
	svc, _ := newTestService(t, func(c *Config) { c.RefreshGrace = 0 })
	conf := basic("conf", confSecret)

	first := passwordTokens(t, svc, "read write")
	second := refreshGrant(t, svc, first.str("refresh_token"), "", conf).wantToken(t)
	if second.str("refresh_token") == "" || second.str("refresh_token") == first.str("refresh_token") {
		t.Fatal("rotation did not issue a new refresh token")
	}
	if second.str("scope") != "read write" {
		t.Fatalf("scope = %q", second.str("scope"))
	}
	if id := mustValid(t, svc, second.str("access_token")); id.UserID != "user-1" {
		t.Fatalf("refreshed identity %+v", id)
	}
	mustInvalid(t, svc, first.str("access_token")) // replaced by the refresh

	// Reusing the rotated token after the grace period is theft: the whole
	// family goes (RFC 9700 §4.14.2).
	refreshGrant(t, svc, first.str("refresh_token"), "", conf).wantError(t, 400, "invalid_grant")
	mustInvalid(t, svc, second.str("access_token"))
	refreshGrant(t, svc, second.str("refresh_token"), "", conf).wantError(t, 400, "invalid_grant")
}

func TestRefreshRetryWithinGrace(t *testing.T) {
	svc, _ := newTestService(t, nil) // grace 10s
	conf := basic("conf", confSecret)
	first := passwordTokens(t, svc, "")
	a := refreshGrant(t, svc, first.str("refresh_token"), "", conf).wantToken(t)
	b := refreshGrant(t, svc, first.str("refresh_token"), "", conf).wantToken(t)
	mustValid(t, svc, a.str("access_token"))
	mustValid(t, svc, b.str("access_token"))
	// Another client holding the token gets nothing, even within grace.
	refreshGrant(t, svc, first.str("refresh_token"), "", basic("other", otherSecret)).wantError(t, 400, "invalid_grant")
}

func TestRefreshWithoutRotation(t *testing.T) {
	svc, _ := newTestService(t, func(c *Config) { c.RefreshRotation = false })
	conf := basic("conf", confSecret)

	first := passwordTokens(t, svc, "read write")
	rt := first.str("refresh_token")
	second := refreshGrant(t, svc, rt, "", conf).wantToken(t)
	if second.str("refresh_token") != rt {
		t.Fatal("without rotation the refresh token must stay the same")
	}
	mustInvalid(t, svc, first.str("access_token"))
	mustValid(t, svc, second.str("access_token"))
	third := refreshGrant(t, svc, rt, "read", conf).wantToken(t)
	if third.str("scope") != "read" {
		t.Fatalf("narrowed scope = %q", third.str("scope"))
	}
	mustInvalid(t, svc, second.str("access_token"))
	// The refresh token keeps its original scope.
	fourth := refreshGrant(t, svc, rt, "", conf).wantToken(t)
	if fourth.str("scope") != "read write" {
		t.Fatalf("scope after narrowing = %q, want read write", fourth.str("scope"))
	}
	refreshGrant(t, svc, rt, "", basic("other", otherSecret)).wantError(t, 400, "invalid_grant")
}

func TestRefreshRules(t *testing.T) {
	for _, rotation := range []bool{true, false} {
		name := "rotation off"
		if rotation {
			name = "rotation on"
		}
		t.Run(name, func(t *testing.T) {
			svc, _ := newTestService(t, func(c *Config) { c.RefreshRotation = rotation })
			conf := basic("conf", confSecret)
			tok := passwordTokens(t, svc, "read")
			rt := tok.str("refresh_token")

			// Bound to its client: another client, with its own valid
			// credentials or with wrong ones, gets nothing.
			refreshGrant(t, svc, rt, "", basic("other", otherSecret)).wantError(t, 400, "invalid_grant")
			refreshGrant(t, svc, rt, "read write", basic("other", otherSecret)).wantError(t, 400, "invalid_grant")
			refreshGrant(t, svc, rt, "", basic("other", "wrong")).wantError(t, 401, "invalid_client")
			refreshGrant(t, svc, rt, "", basic("conf", "wrong")).wantError(t, 401, "invalid_client")
			// A public client cannot present it either.
			post(t, svc, form("grant_type", "refresh_token", "refresh_token", rt, "client_id", "pub")).wantError(t, 400, "invalid_grant")
			// Scope may not widen, and must be well-formed.
			refreshGrant(t, svc, rt, "read write", conf).wantError(t, 400, "invalid_scope")
			refreshGrant(t, svc, rt, "read  write", conf).wantError(t, 400, "invalid_scope")
			refreshGrant(t, svc, "unknown", "", conf).wantError(t, 400, "invalid_grant")
			post(t, svc, form("grant_type", "refresh_token"), conf).wantError(t, 400, "invalid_request")
			// The failed attempts did not burn the token.
			refreshGrant(t, svc, rt, "read", conf).wantToken(t)
		})
	}
}

func TestRefreshNarrowsScope(t *testing.T) {
	svc, _ := newTestService(t, nil)
	conf := basic("conf", confSecret)
	tok := passwordTokens(t, svc, "read write")
	r := refreshGrant(t, svc, tok.str("refresh_token"), "write", conf).wantToken(t)
	if r.str("scope") != "write" || mustValid(t, svc, r.str("access_token")).Scope != "write" {
		t.Fatalf("scope = %q", r.str("scope"))
	}
	// The rotated refresh token keeps the grant's full scope.
	r2 := refreshGrant(t, svc, r.str("refresh_token"), "", conf).wantToken(t)
	if r2.str("scope") != "read write" {
		t.Fatalf("scope = %q, want read write", r2.str("scope"))
	}
}

func TestRefreshTokenExpired(t *testing.T) {
	svc, _ := newTestService(t, nil)
	tok := passwordTokens(t, svc, "")
	rt := tok.str("refresh_token")
	expire(t, svc, refreshKey(rt))
	refreshGrant(t, svc, rt, "", basic("conf", confSecret)).wantError(t, 400, "invalid_grant")
}

// expire rewrites the record under key with an expiry in the past, the way
// a token that outlived its TTL looks (go-oauth2 reads time.Now itself, so
// tests move the record, not the clock).
func expire(t *testing.T, svc *Service, key string) {
	t.Helper()
	r, err := svc.load(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	r.IssuedAt = time.Now().Add(-2 * time.Hour).UnixNano()
	r.ExpiresAt = time.Now().Add(-time.Second).UnixNano()
	if err := svc.Store().Put(t.Context(), key, r.encode(), time.Hour); err != nil {
		t.Fatal(err)
	}
}

func TestAccessTokenExpired(t *testing.T) {
	svc, _ := newTestService(t, nil)
	tok := post(t, svc, form("grant_type", "client_credentials"), basic("conf", confSecret)).wantToken(t)
	mustValid(t, svc, tok.str("access_token"))
	expire(t, svc, accessKey(tok.str("access_token")))
	if _, err := svc.Validate(t.Context(), tok.str("access_token")); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("Validate = %v, want ErrTokenExpired", err)
	}
}

func TestValidateRefusals(t *testing.T) {
	svc, _ := newTestService(t, nil)
	tok := passwordTokens(t, svc, "")
	for name, token := range map[string]string{
		"empty":         "",
		"unknown":       "abc",
		"too long":      strings.Repeat("a", MaxTokenLength+1),
		"refresh token": tok.str("refresh_token"),
	} {
		t.Run(name, func(t *testing.T) { mustInvalid(t, svc, token) })
	}
	t.Run("client removed from the config", func(t *testing.T) {
		clients := testClients()
		delete(clients, "conf")
		mustInvalid(t, New(testConfig(), svc.Store(), clients, nil, nil), tok.str("access_token"))
	})
	t.Run("revoked user", func(t *testing.T) {
		mustValid(t, svc, tok.str("access_token"))
		if err := svc.RevokeUser(t.Context(), "user-1"); err != nil {
			t.Fatal(err)
		}
		mustInvalid(t, svc, tok.str("access_token"))
		refreshGrant(t, svc, tok.str("refresh_token"), "", basic("conf", confSecret)).wantError(t, 400, "invalid_grant")
	})
}

func redeem(t testing.TB, svc *Service, code, redirectURI string, a auth, extra ...string) *reply {
	t.Helper()
	f := form(append([]string{"grant_type", "authorization_code", "code", code}, extra...)...)
	if redirectURI != "" {
		f.Set("redirect_uri", redirectURI)
	}
	return post(t, svc, f, a)
}

func TestAuthorizationCode(t *testing.T) {
	svc, _ := newTestService(t, nil)
	conf := basic("conf", confSecret)
	const cb = "https://a.example.com/cb"

	t.Run("redeemed once", func(t *testing.T) {
		code := mintCode(t, svc, "conf", cb, "user-1", "write")
		r := redeem(t, svc, code, cb, conf).wantToken(t)
		if r.str("scope") != "write" || r.str("refresh_token") == "" {
			t.Fatalf("answer %s", r.body)
		}
		if id := mustValid(t, svc, r.str("access_token")); id.UserID != "user-1" || id.ClientID != "conf" {
			t.Fatalf("identity %+v", id)
		}
		// A replay fails and revokes what the code was exchanged for
		// (RFC 6749 §4.1.2).
		redeem(t, svc, code, cb, conf).wantError(t, 400, "invalid_grant")
		mustInvalid(t, svc, r.str("access_token"))
		refreshGrant(t, svc, r.str("refresh_token"), "", conf).wantError(t, 400, "invalid_grant")
	})
	t.Run("another client", func(t *testing.T) {
		code := mintCode(t, svc, "conf", cb, "user-1", "read")
		redeem(t, svc, code, cb, basic("other", otherSecret)).wantError(t, 400, "invalid_grant")
		redeem(t, svc, code, "https://b.example.com/cb", basic("other", otherSecret)).wantError(t, 400, "invalid_grant")
	})
	t.Run("another redirect_uri", func(t *testing.T) {
		code := mintCode(t, svc, "conf", cb, "user-1", "read")
		for _, uri := range []string{"https://evil-a.example.com/cb", "https://a.example.com/cb/", "https://a.example.com/cb?x=1", "https://A.example.com/cb", "http://a.example.com/cb"} {
			redeem(t, svc, code, uri, conf).wantError(t, 400, "invalid_grant")
		}
	})
	t.Run("redirect_uri omitted", func(t *testing.T) {
		// RFC 6749 §4.1.3: the code was issued for a redirect_uri, so the
		// token request must repeat it, even for a client with only one.
		code := mintCode(t, svc, "conf", cb, "user-1", "read")
		redeem(t, svc, code, "", conf).wantError(t, 400, "invalid_grant")
	})
	t.Run("code issued without redirect_uri", func(t *testing.T) {
		code := mintCode(t, svc, "conf", "", "user-1", "read")
		redeem(t, svc, code, "", conf).wantToken(t)
	})
	t.Run("wrong client secret", func(t *testing.T) {
		code := mintCode(t, svc, "conf", cb, "user-1", "read")
		redeem(t, svc, code, cb, basic("conf", "nope")).wantError(t, 401, "invalid_client")
		redeem(t, svc, code, cb, conf).wantToken(t) // not burnt by the failed attempt
	})
	t.Run("expired", func(t *testing.T) {
		code := mintCode(t, svc, "conf", cb, "user-1", "read")
		expire(t, svc, codeKey(code))
		redeem(t, svc, code, cb, conf).wantError(t, 400, "invalid_grant")
	})
	t.Run("unknown code", func(t *testing.T) {
		redeem(t, svc, "no-such-code", cb, conf).wantError(t, 400, "invalid_grant")
	})
	t.Run("missing code", func(t *testing.T) {
		post(t, svc, form("grant_type", "authorization_code", "redirect_uri", cb), conf).wantError(t, 400, "invalid_request")
	})
	t.Run("public client", func(t *testing.T) {
		code := mintCode(t, svc, "pub", "com.example.app:/cb", "user-1", "read")
		pub := func(r *http.Request) {}
		redeem(t, svc, code, "com.example.app:/cb", pub, "client_id", "pub").wantToken(t)
	})
}

func TestRedirectURIMatchesExactly(t *testing.T) {
	svc, _ := newTestService(t, nil)
	for _, uri := range []string{"https://evil-a.example.com/cb", "https://a.example.com.evil.com/cb", "https://a.example.com/cb/../x", "https://a.example.com/cb2", "https://a.example.com"} {
		_, err := svc.manager.GenerateAuthToken(context.Background(), oauth2.Code, &oauth2.TokenGenerateRequest{ClientID: "conf", RedirectURI: uri})
		if err != oerrors.ErrInvalidRedirectURI {
			t.Errorf("%s: err = %v, want ErrInvalidRedirectURI", uri, err)
		}
	}
	if mintCode(t, svc, "conf", "https://a.example.com/cb", "u", "read") == "" {
		t.Fatal("the registered URI is refused")
	}
	if err := exactRedirectURI("https://a.example.com/cb\nhttps://b.example.com/cb", "https://b.example.com/cb"); err != nil {
		t.Fatal("the second registered URI is refused")
	}
	if err := exactRedirectURI("", ""); err == nil {
		t.Fatal("an empty URI matched a client with none registered")
	}
}

// TestCodeRedemptionRace: of many concurrent redemptions of one code,
// exactly one gets tokens.
func TestCodeRedemptionRace(t *testing.T) {
	svc, _ := newTestService(t, nil)
	conf := basic("conf", confSecret)
	const cb = "https://a.example.com/cb"
	const workers, rounds = 16, 60
	for round := 0; round < rounds; round++ {
		code := mintCode(t, svc, "conf", cb, "user-1", "read")
		var wins, losses atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < workers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r := redeem(t, svc, code, cb, conf)
				switch {
				case r.status == 200:
					wins.Add(1)
				case r.status == 400 && r.str("error") == "invalid_grant":
					losses.Add(1)
				default:
					t.Errorf("unexpected answer %d %s", r.status, r.body)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || losses.Load() != workers-1 {
			t.Fatalf("round %d: %d winners, %d losers; want exactly one winner", round, wins.Load(), losses.Load())
		}
	}
}

// TestStoreHoldsNoPlainTokens issues every kind of token and code into a
// file store and greps the file for them.
func TestStoreHoldsNoPlainTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oauth.db")
	db, err := filestore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	svc := New(testConfig(), db, testClients(), testUsers(t), nil)
	conf := basic("conf", confSecret)
	var secrets []string
	cc := post(t, svc, form("grant_type", "client_credentials"), conf).wantToken(t)
	pw := passwordTokens(t, svc, "")
	rot := refreshGrant(t, svc, pw.str("refresh_token"), "", conf).wantToken(t)
	code := mintCode(t, svc, "conf", "https://a.example.com/cb", "user-1", "read")
	unused := mintCode(t, svc, "conf", "https://a.example.com/cb", "user-1", "read")
	ac := redeem(t, svc, code, "https://a.example.com/cb", conf).wantToken(t)
	for _, r := range []*reply{cc, pw, rot, ac} {
		secrets = append(secrets, r.str("access_token"))
		if rt := r.str("refresh_token"); rt != "" {
			secrets = append(secrets, rt)
		}
	}
	secrets = append(secrets, code, unused, confSecret, alicePass)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if strings.Contains(string(raw), s) {
			t.Errorf("the store file holds a token, code or secret in plain")
		}
	}
	// The digests are there, so the file is the store indeed.
	for _, key := range []string{accessKey(cc.str("access_token")), refreshKey(rot.str("refresh_token")), codeKey(unused), usedCodeKey(code)} {
		if !strings.Contains(string(raw), key) {
			t.Errorf("the store file lacks key %s", key)
		}
	}
}

// TestConcurrentRefresh: racing refreshes of one token never fail with a
// server error. With rotation and a grace period every racer gets tokens
// (a retry, not a theft); without rotation, the token keeps working.
func TestConcurrentRefresh(t *testing.T) {
	for _, rotation := range []bool{true, false} {
		t.Run(fmt.Sprintf("rotation %v", rotation), func(t *testing.T) {
			svc, _ := newTestService(t, func(c *Config) { c.RefreshRotation = rotation })
			conf := basic("conf", confSecret)
			rt := passwordTokens(t, svc, "").str("refresh_token")
			const workers = 16
			replies := make([]*reply, workers)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range replies {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					replies[i] = refreshGrant(t, svc, rt, "", conf)
				}()
			}
			close(start)
			wg.Wait()
			wins := 0
			for _, r := range replies {
				switch {
				case r.status == 200:
					wins++
				case r.status == 400 && r.str("error") == "invalid_grant" && !rotation:
				default:
					t.Fatalf("answer %d %s", r.status, r.body)
				}
			}
			if wins == 0 || (rotation && wins != workers) {
				t.Fatalf("%d of %d refreshes succeeded", wins, workers)
			}
			if !rotation {
				refreshGrant(t, svc, rt, "", conf).wantToken(t)
			}
		})
	}
}
