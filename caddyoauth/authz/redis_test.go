package authz

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/caddyoauth/gateway/caddyoauth/store/redisstore"
	"github.com/caddyoauth/gateway/internal/testredis"
)

// The authorization-code flow on the Redis store, driven through the
// service (the gateway's authorize endpoint is not needed to make a code).

// Lifetimes of the Redis code flow, told apart in the keys' expiry.
const (
	redisCodeTTL    = time.Minute
	redisAccessTTL  = time.Hour
	redisRefreshTTL = 2 * time.Hour
)

type codeFixture struct {
	svc *Service
	rc  rueidis.Client
}

// newCodeFixture builds the test clients' service on Redis, its keys under
// prefix, and a plain client to look at them.
func newCodeFixture(t *testing.T, srv *testredis.Server, prefix string) *codeFixture {
	t.Helper()
	opt, err := rueidis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	s, err := redisstore.Open(opt, prefix, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	svc := New(Config{AccessTokenTTL: redisAccessTTL, RefreshTokenTTL: redisRefreshTTL, CodeTTL: redisCodeTTL,
		RefreshRotation: true}, s, testClients(), nil, nil)
	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	return &codeFixture{svc: svc, rc: rc}
}

// code makes an authorization code for client app as the authorize
// endpoint would.
func (f *codeFixture) code(t *testing.T) string {
	t.Helper()
	return mintCode(t, f.svc, "app", appRedirect, "u1", "read")
}

// redeem posts the code to the token endpoint.
func (f *codeFixture) redeem(t *testing.T, code string) *reply {
	return post(t, f.svc, form("grant_type", "authorization_code", "code", code, "redirect_uri", appRedirect), as("app"))
}

// keys returns every key under prefix with its PTTL in milliseconds.
func (f *codeFixture) keys(t *testing.T, prefix string) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	out := map[string]int64{}
	ks, err := f.rc.Do(ctx, f.rc.B().Keys().Pattern(prefix+"*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		n, err := f.rc.Do(ctx, f.rc.B().Pttl().Key(k).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = n
	}
	return out
}

var digestKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

func TestCodeFlowOnRedis(t *testing.T) {
	srv := testredis.Start(t)

	// The code lives in Redis under its digest, expiring with the code;
	// redeeming it leaves a used-code marker and tokens, all digest-keyed
	// and expiring within their lifetimes.
	t.Run("KeysAndExpiry", func(t *testing.T) {
		const prefix = "flow:"
		f := newCodeFixture(t, srv, prefix)
		code := f.code(t)
		keys := f.keys(t, prefix)
		if len(keys) != 1 {
			t.Fatalf("keys after issuing a code: %v", keys)
		}
		for k, pttl := range keys {
			id, ok := strings.CutPrefix(k, prefix+"k:code:")
			if !ok || !digestKeyRE.MatchString(id) || strings.Contains(k, code) {
				t.Fatalf("code key %q is not the code's digest", k)
			}
			if pttl <= 0 || time.Duration(pttl)*time.Millisecond > redisCodeTTL {
				t.Fatalf("code key PTTL %dms, want within %v", pttl, redisCodeTTL)
			}
		}
		tok := f.redeem(t, code).wantToken(t)
		lifetimes := map[string]time.Duration{"k:usedcode:": redisRefreshTTL, "k:at:": redisAccessTTL, "k:rt:": redisRefreshTTL,
			"s:user:": redisRefreshTTL}
		seen := map[string]bool{}
		for k, pttl := range f.keys(t, prefix) {
			for _, secret := range []string{code, tok.str("access_token"), tok.str("refresh_token")} {
				if strings.Contains(k, secret) {
					t.Fatalf("key %q holds a code or token in plain", k)
				}
			}
			kind := ""
			for p := range lifetimes {
				if strings.HasPrefix(k, prefix+p) {
					kind = p
				}
			}
			if kind == "" {
				t.Fatalf("unexpected key %q after redeeming", k)
			}
			seen[kind] = true
			if pttl <= 0 || time.Duration(pttl)*time.Millisecond > lifetimes[kind] {
				t.Fatalf("key %q PTTL %dms, want within %v", k, pttl, lifetimes[kind])
			}
		}
		if len(seen) != len(lifetimes) {
			t.Fatalf("kinds after redeeming: %v, want %v", seen, lifetimes)
		}
	})

	// Of 16 racing redemptions of one code exactly one gets tokens; the
	// others are replays, which revoke what the code was exchanged for
	// (RFC 6749 §4.1.2), the winner's tokens included, even when they were
	// still being saved.
	t.Run("RaceHasOneWinner", func(t *testing.T) {
		f := newCodeFixture(t, srv, "race:")
		for round := range 20 {
			code := f.code(t)
			var mu sync.Mutex
			var wins []*reply
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					r := f.redeem(t, code)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case r.status == 200:
						wins = append(wins, r)
					case r.status != 400 || r.str("error") != "invalid_grant":
						t.Errorf("redeem: %d %s", r.status, r.body)
					}
				}()
			}
			close(start)
			wg.Wait()
			if len(wins) != 1 {
				t.Fatalf("round %d: %d winners, want 1", round, len(wins))
			}
			if _, err := f.svc.Validate(context.Background(), wins[0].str("access_token")); !errors.Is(err, ErrTokenInvalid) {
				t.Fatalf("round %d: the winner's access token after replays: %v, want revoked", round, err)
			}
		}
	})
}
