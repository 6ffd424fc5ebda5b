package authz_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-oauth2/oauth2/v4"
	"github.com/redis/rueidis"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/store/redisstore"
	"github.com/caddyoauth/gateway/internal/testredis"
)

// The authorization-code flow on the Redis store, driven through the
// service (the gateway's authorize endpoint is not needed to make a code).

const (
	codeTTL     = time.Minute
	accessTTL   = time.Hour
	refreshTTL  = 2 * time.Hour
	redirectURI = "https://app.example/cb"
)

type codeFixture struct {
	svc *authz.Service
	rc  rueidis.Client
}

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
	web := &authz.Client{ID: "web", RedirectURIs: []string{redirectURI},
		Grants: []string{authz.GrantAuthorizationCode, authz.GrantRefreshToken}, Scopes: []string{"read"}}
	web.SetSecret("web-secret")
	svc := authz.New(authz.Config{AccessTokenTTL: accessTTL, RefreshTokenTTL: refreshTTL, CodeTTL: codeTTL,
		RefreshRotation: true}, s, authz.StaticClients{"web": web}, nil, nil)
	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	return &codeFixture{svc: svc, rc: rc}
}

// code makes an authorization code as the authorize endpoint would.
func (f *codeFixture) code(t *testing.T) string {
	t.Helper()
	ti, err := f.svc.Manager().GenerateAuthToken(context.Background(), oauth2.Code, &oauth2.TokenGenerateRequest{
		ClientID: "web", UserID: "u1", RedirectURI: redirectURI, Scope: "read",
		Request: httptest.NewRequest(http.MethodGet, "/oauth/authorize", nil)})
	if err != nil {
		t.Fatal(err)
	}
	return ti.GetCode()
}

// redeem posts the code to the token endpoint and returns the status and
// the JSON answer.
func (f *codeFixture) redeem(code string) (int, map[string]string) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}
	req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("web", "web-secret")
	w := httptest.NewRecorder()
	f.svc.ServeToken(w, req)
	out := map[string]string{}
	var raw map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &raw)
	for k, v := range raw {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return w.Code, out
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

var digestKey = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

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
			if !ok || !digestKey.MatchString(id) || strings.Contains(k, code) {
				t.Fatalf("code key %q is not the code's digest", k)
			}
			if pttl <= 0 || time.Duration(pttl)*time.Millisecond > codeTTL {
				t.Fatalf("code key PTTL %dms, want within %v", pttl, codeTTL)
			}
		}
		st, tok := f.redeem(code)
		if st != 200 {
			t.Fatalf("redeem: %d %v", st, tok)
		}
		lifetimes := map[string]time.Duration{"k:usedcode:": refreshTTL, "k:at:": accessTTL, "k:rt:": refreshTTL,
			"s:user:": refreshTTL}
		seen := map[string]bool{}
		for k, pttl := range f.keys(t, prefix) {
			for _, secret := range []string{code, tok["access_token"], tok["refresh_token"]} {
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
			var wins []map[string]string
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					st, body := f.redeem(code)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case st == 200:
						wins = append(wins, body)
					case st != 400 || body["error"] != "invalid_grant":
						t.Errorf("redeem: %d %v", st, body)
					}
				}()
			}
			close(start)
			wg.Wait()
			if len(wins) != 1 {
				t.Fatalf("round %d: %d winners, want 1", round, len(wins))
			}
			if _, err := f.svc.Validate(context.Background(), wins[0]["access_token"]); !errors.Is(err, authz.ErrTokenInvalid) {
				t.Fatalf("round %d: the winner's access token after replays: %v, want revoked", round, err)
			}
		}
	})
}
