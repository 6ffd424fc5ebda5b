package integration

import (
	"net/url"
	"strings"
	"sync"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// TestExampleZapier runs the zapier example's token settings the way
// Zapier uses them: a call with a token that no longer works gets 401
// invalid_token, Zapier refreshes and retries; several workers refreshing
// the same refresh token at once all get working tokens within the grace
// period, and the connection goes on. The authorization code step is not
// exercised here, so the example's client also gets the password grant to
// obtain its first refresh token; nothing else of the example changes.
func TestExampleZapier(t *testing.T) {
	up := gt.StartUpstream(t)
	secret := exampleEnv["ZAPIER_CLIENT_SECRET"]
	cfg := readExample(t, "zapier/Caddyfile")
	cfg = replaceOnce(t, cfg, "{\n\toauth {", "{\n\tadmin {{.Admin}}\n\tpersist_config off\n\tgrace_period 1ns\n\toauth {\n\t\tstore memory\n\t\tuser zoe "+gt.BcryptHash(t, "zoe-pass")+" user-9")
	cfg = replaceOnce(t, cfg, "grants authorization_code refresh_token", "grants authorization_code refresh_token password")
	cfg = replaceOnce(t, cfg, "{$SITE_ADDRESS:localhost} {", "http://{{.Addr}} {")
	cfg = replaceOnce(t, cfg, "reverse_proxy localhost:9000", "reverse_proxy "+up.Addr())
	g := gt.Start(t, cfg, gt.WithEnv("ZAPIER_CLIENT_SECRET="+secret))
	token := func(form url.Values) *gt.Response {
		return gt.PostForm(t, g.URL+"/oauth/token", "zapier", secret, form)
	}

	first := token(url.Values{"grant_type": {"password"}, "username": {"zoe"}, "password": {"zoe-pass"}})
	if first.Status != 200 || first.Str("refresh_token") == "" {
		t.Fatalf("first tokens: %d %s", first.Status, first.Body)
	}
	// Refreshing rotates: the old access token stops working...
	second := token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.Str("refresh_token")}})
	if second.Status != 200 || second.Str("refresh_token") == first.Str("refresh_token") {
		t.Fatalf("refresh: %d %s", second.Status, second.Body)
	}
	// ...and a call with it gets what makes Zapier refresh and retry.
	r := gt.Get(t, g.URL+"/api/contacts", first.Str("access_token"))
	if r.Status != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("call with a replaced token: %d %q, want 401 invalid_token", r.Status, r.Header.Get("WWW-Authenticate"))
	}

	// Four workers refresh the same token at once.
	const workers = 4
	results := make([]*gt.Response, workers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {second.Str("refresh_token")}})
		}()
	}
	close(start)
	wg.Wait()
	for i, res := range results {
		if res.Status != 200 {
			t.Fatalf("racing refresh %d: %d %s; the grace period should answer every worker", i, res.Status, res.Body)
		}
		if r := gt.Get(t, g.URL+"/api/contacts", res.Str("access_token")); r.Status != 200 {
			t.Fatalf("worker %d's new access token: %d", i, r.Status)
		}
		if got := up.Last().Get("X-User-Id"); got != "user-9" {
			t.Fatalf("worker %d's call reached the API as %q", i, got)
		}
	}
	// The connection goes on: a worker's new refresh token refreshes again.
	if next := token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {results[0].Str("refresh_token")}}); next.Status != 200 {
		t.Fatalf("refresh after the race: %d %s", next.Status, next.Body)
	}
}
