package integration

import (
	"net/url"
	"sync"
	"testing"
	"time"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// defaultGrace is refresh_token_grace when the config leaves it out, as
// tokenGateway does.
const defaultGrace = 10 * time.Second

func refreshAs(t *testing.T, g *gt.Gateway, refresh string) *gt.Response {
	t.Helper()
	return gt.PostForm(t, g.URL+"/oauth/token", "conf", "conf-secret", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
}

// TestRefreshReuseAfterSuccessorUsedWithinGrace: with the default grace
// period, R0 refreshes to R1 and R1 to R2; R0 presented again within the
// grace is not a retry of a lost response, since its successor was used:
// invalid_grant, and the whole family is revoked, so the newest access
// token gets 401 through oauth_protect and R2 no longer refreshes.
func TestRefreshReuseAfterSuccessorUsedWithinGrace(t *testing.T) {
	up := gt.StartUpstream(t)
	g := tokenGateway(t, up)
	rt0 := aliceTokens(t, g, "read").Str("refresh_token")
	rotated := time.Now()
	r1 := wantToken(t, refreshAs(t, g, rt0))
	r2 := wantToken(t, refreshAs(t, g, r1.Str("refresh_token")))
	if r := gt.Get(t, g.URL+"/api", r2.Str("access_token")); r.Status != 200 {
		t.Fatalf("the newest access token before the reuse: %d", r.Status)
	}
	wantOAuthError(t, refreshAs(t, g, rt0), 400, "invalid_grant")
	if d := time.Since(rotated); d >= defaultGrace {
		t.Fatalf("the reuse came %v after R0's rotation, outside the grace period: it tests nothing", d)
	}
	if r := gt.Get(t, g.URL+"/api", r2.Str("access_token")); r.Status != 401 {
		t.Fatalf("the newest access token after the reuse: %d, want 401", r.Status)
	}
	wantOAuthError(t, refreshAs(t, g, r2.Str("refresh_token")), 400, "invalid_grant")
}

// TestConcurrentRefreshesWithinGraceBothWork: two refreshes of one token
// started together within the default grace period both get tokens, and
// both branches go on: each access token passes oauth_protect, and each
// new refresh token refreshes to tokens that pass it too.
func TestConcurrentRefreshesWithinGraceBothWork(t *testing.T) {
	up := gt.StartUpstream(t)
	g := tokenGateway(t, up)
	rt0 := aliceTokens(t, g, "read").Str("refresh_token")
	var pair [2]*gt.Response
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range pair {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			pair[i] = refreshAs(t, g, rt0)
		}()
	}
	close(start)
	wg.Wait()
	for i, r := range pair {
		if r.Status != 200 {
			t.Fatalf("refresh %d: %d %s", i, r.Status, r.Body)
		}
	}
	if pair[0].Str("refresh_token") == pair[1].Str("refresh_token") {
		t.Fatal("both refreshes returned one refresh token")
	}
	for i, r := range pair {
		if got := gt.Get(t, g.URL+"/api", r.Str("access_token")); got.Status != 200 {
			t.Fatalf("access token %d: %d", i, got.Status)
		}
		next := wantToken(t, refreshAs(t, g, r.Str("refresh_token")))
		if got := gt.Get(t, g.URL+"/api", next.Str("access_token")); got.Status != 200 {
			t.Fatalf("access token of successor %d's refresh: %d", i, got.Status)
		}
	}
}
