package integration

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/internal/dpoptest"
	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
	"github.com/caddyoauth/gateway/internal/testredis"
)

// dpopSigner makes DPoP proofs with one ES256 key.
type dpopSigner struct{ *dpoptest.Key }

func newDPoPSigner(t *testing.T) *dpopSigner { return &dpopSigner{dpoptest.NewKey(t)} }

func (s *dpopSigner) proof(t *testing.T, htm, htu, token, nonce string) string {
	t.Helper()
	return s.Proof(t, htm, htu, token, nonce, time.Now())
}

// dpopCall calls target on g with token in the DPoP scheme and proof.
func dpopCall(t *testing.T, g *gt.Gateway, path, token, proof string) *gt.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL+path, nil)
	req.Header.Set("Authorization", "DPoP "+token)
	req.Header.Set("DPoP", proof)
	return gt.Do(t, req)
}

// TestRedisDPoPSharedAcrossGateways: gateways sharing a Redis store (and
// an issuer, as behind a load balancer) hand out and accept the same
// nonces, and a proof accepted by one is refused by the others; of the
// same proof sent to both at once, exactly one is accepted.
func TestRedisDPoPSharedAcrossGateways(t *testing.T) {
	srv := testredis.Start(t)
	up := gt.StartUpstream(t)
	const issuer = "http://localhost:9999" // the balancer's origin
	oauth := strings.Replace(redisOAuth(t, storeURL(srv.URL()), "0s"), "\tstore redis",
		"\tissuer "+issuer+"\n\tdpop {\n\t\tnonce on\n\t}\n\tstore redis", 1)
	cfg := gt.Config(oauth, redisSite(up))
	a, b := gt.Start(t, cfg), gt.Start(t, cfg)
	k := newDPoPSigner(t)
	tokenURL := issuer + "/oauth/token"

	tokenReq := func(g *gt.Gateway, proof string) *gt.Response {
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("app", "app-secret")
		req.Header.Set("DPoP", proof)
		return gt.Do(t, req)
	}
	first := tokenReq(a, k.proof(t, "POST", tokenURL, "", ""))
	nonce := first.Header.Get("DPoP-Nonce")
	if first.Status != 400 || first.Str("error") != "use_dpop_nonce" || nonce == "" {
		t.Fatalf("a token request without a nonce on A: %d %s %q", first.Status, first.Body, nonce)
	}
	// A's nonce works on B.
	tok := tokenReq(b, k.proof(t, "POST", tokenURL, "", nonce))
	if tok.Status != 200 || tok.Str("token_type") != "DPoP" {
		t.Fatalf("a token request on B with A's nonce: %d %s", tok.Status, tok.Body)
	}
	token := tok.Str("access_token")

	api := issuer + "/api"
	p := k.proof(t, "GET", api, token, nonce)
	if r := dpopCall(t, a, "/api", token, p); r.Status != 200 {
		t.Fatalf("a good proof on A: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	if r := dpopCall(t, b, "/api", token, p); r.Status != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), "DPoP proof was already used") {
		t.Fatalf("the proof replayed on B: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	for range 10 {
		p := k.proof(t, "GET", api, token, nonce)
		var wg sync.WaitGroup
		statuses := make([]int, 2)
		for i, g := range []*gt.Gateway{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i] = dpopCall(t, g, "/api", token, p).Status
			}()
		}
		wg.Wait()
		if statuses[0]+statuses[1] != 200+401 {
			t.Fatalf("one proof sent to both gateways at once: %v, want one 200 and one 401", statuses)
		}
	}
}

// TestDPoPProofNamesThePathTheClientSent: behind handle_path and rewrite,
// a proof names the URI the client sent (RFC 9449 §4.3), not what the
// route made of it; the upstream gets neither the proof nor the token.
func TestDPoPProofNamesThePathTheClientSent(t *testing.T) {
	up := gt.StartUpstream(t)
	g := gt.Start(t, gt.Config(`
oauth {
	store memory
	client app {
		secret app-secret
		grants client_credentials
		scopes read
		user svc-user
	}
}`, `oauth_server
handle_path /v1/* {
	oauth_protect
	reverse_proxy `+up.Addr()+`
}
handle /old/* {
	rewrite * /v1/orders
	oauth_protect
	reverse_proxy `+up.Addr()+`
}`))
	k := newDPoPSigner(t)
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", "app-secret")
	req.Header.Set("DPoP", k.proof(t, "POST", g.URL+"/oauth/token", "", ""))
	tok := gt.Do(t, req)
	if tok.Status != 200 || tok.Str("token_type") != "DPoP" {
		t.Fatalf("token: %d %s", tok.Status, tok.Body)
	}
	token := tok.Str("access_token")
	for _, c := range []struct{ path, htu string }{
		{"/v1/orders", "/v1/orders"},
		{"/old/orders", "/old/orders"},
	} {
		if r := dpopCall(t, g, c.path, token, k.proof(t, "GET", g.URL+c.htu, token, "")); r.Status != 200 {
			t.Fatalf("%s with a proof for %s: %d %q", c.path, c.htu, r.Status, r.Header.Get("WWW-Authenticate"))
		}
		if h := up.Last(); h.Get("Dpop") != "" || h.Get("Authorization") != "" {
			t.Fatalf("%s: the upstream got %v", c.path, h)
		}
	}
	for _, c := range []struct{ path, htu string }{
		{"/v1/orders", "/orders"},
		{"/old/orders", "/v1/orders"},
	} {
		r := dpopCall(t, g, c.path, token, k.proof(t, "GET", g.URL+c.htu, token, ""))
		if r.Status != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), "htu does not match") {
			t.Fatalf("%s with a proof for the rewritten %s: %d %q", c.path, c.htu, r.Status, r.Header.Get("WWW-Authenticate"))
		}
	}

	// /oauth/me takes the token the same way.
	if r := dpopCall(t, g, "/oauth/me", token, k.proof(t, "GET", g.URL+"/oauth/me", token, "")); r.Status != 200 || r.Str("client_id") != "app" {
		t.Fatalf("/oauth/me with a proof: %d %s", r.Status, r.Body)
	}
	if r := gt.Get(t, g.URL+"/oauth/me", token); r.Status != 401 || r.Str("error") != "invalid_token" {
		t.Fatalf("/oauth/me with the token as a bearer token: %d %s", r.Status, r.Body)
	}
	if r := dpopCall(t, g, "/oauth/me", token, k.proof(t, "GET", g.URL+"/v1/orders", token, "")); r.Status != 401 || r.Str("error") != "invalid_dpop_proof" {
		t.Fatalf("/oauth/me with a proof for another URL: %d %s", r.Status, r.Body)
	}
}
