package integration

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
	"github.com/caddyoauth/gateway/internal/poll"
	"github.com/caddyoauth/gateway/internal/testredis"
)

// fromAddr returns a client whose requests leave from the given loopback
// address, so one test can act as several source addresses.
func fromAddr(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
	}
}

// postFrom posts a token request from a source address; clientID empty
// sends no client authentication.
func postFrom(t *testing.T, c *http.Client, target, clientID, secret string, form url.Values) *gt.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if clientID != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := &gt.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	_ = json.Unmarshal(body, &out.JSON)
	return out
}

func assertTooMany(t *testing.T, what string, r *gt.Response) {
	t.Helper()
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("%s: status %d %s, want 429", what, r.Status, r.Body)
	}
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("%s: Retry-After %q, want whole seconds >= 1", what, r.Header.Get("Retry-After"))
	}
	if r.Str("error") != "temporarily_unavailable" || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%s: body %s / Cache-Control %q, want a no-store RFC 6749 JSON error", what, r.Body, r.Header.Get("Cache-Control"))
	}
}

const limitedClients = `
	client alpha {
		secret alpha-secret
		grants client_credentials
		scopes read
	}
	client beta {
		secret beta-secret
		grants client_credentials
		scopes read
	}`

// TestTokenRateLimitPerClientAndAddress: the token endpoint counts each
// authenticated client and each source address on its own, answers 429
// with Retry-After and an RFC 6749 JSON body, and never lets an
// unauthenticated request spend a client's budget.
func TestTokenRateLimitPerClientAndAddress(t *testing.T) {
	g := gt.Start(t, gt.Config(`
oauth {
	store memory
	rate_limit {
		token 3/h
	}
`+limitedClients+`
}`, `oauth_server`))
	tokenURL := g.URL + "/oauth/token"
	one, two := fromAddr("127.0.0.1"), fromAddr("127.0.0.2")
	cc := url.Values{"grant_type": {"client_credentials"}}

	// Wrong secrets for alpha from .2 spend .2's budget, not alpha's.
	for i := 0; i < 2; i++ {
		if r := postFrom(t, two, tokenURL, "alpha", "wrong", cc); r.Status != 401 {
			t.Fatalf("bad secret: %d %s", r.Status, r.Body)
		}
	}
	for i := 0; i < 3; i++ {
		if r := postFrom(t, one, tokenURL, "alpha", "alpha-secret", cc); r.Status != 200 {
			t.Fatalf("alpha token %d from .1: %d %s", i+1, r.Status, r.Body)
		}
	}
	// alpha has spent its 3; from .2 (1 left there) it is refused as a client.
	assertTooMany(t, "alpha's 4th token, from another address", postFrom(t, two, tokenURL, "alpha", "alpha-secret", cc))
	// .1 has spent its 3 too: beta, fresh as a client, is refused there...
	assertTooMany(t, "beta from a spent address", postFrom(t, one, tokenURL, "beta", "beta-secret", cc))
	// ...even without credentials: the address limit comes first.
	assertTooMany(t, "no credentials from a spent address", postFrom(t, one, tokenURL, "", "", cc))
	// A third address still serves beta.
	if r := postFrom(t, fromAddr("127.0.0.3"), tokenURL, "beta", "beta-secret", cc); r.Status != 200 {
		t.Fatalf("beta from a fresh address: %d %s", r.Status, r.Body)
	}
}

// TestRateLimitSharedThroughRedis: two gateways on one Redis share their
// counters, so a client cannot double its rate by spreading its requests.
func TestRateLimitSharedThroughRedis(t *testing.T) {
	rs := testredis.Start(t)
	cfg := gt.Config(`
oauth {
	store redis {{index .Vars "redis"}} {
		key_prefix limits-test:
	}
	rate_limit {
		token 2/h
	}
`+limitedClients+`
}`, `oauth_server`)
	vars := gt.WithVars(map[string]string{"redis": rs.URL()})
	g1, g2 := gt.Start(t, cfg, vars), gt.Start(t, cfg, vars)
	cc := url.Values{"grant_type": {"client_credentials"}}
	if r := gt.PostForm(t, g1.URL+"/oauth/token", "alpha", "alpha-secret", cc); r.Status != 200 {
		t.Fatalf("first token on g1: %d %s", r.Status, r.Body)
	}
	if r := gt.PostForm(t, g2.URL+"/oauth/token", "alpha", "alpha-secret", cc); r.Status != 200 {
		t.Fatalf("second token on g2: %d %s", r.Status, r.Body)
	}
	assertTooMany(t, "third token, on g1", gt.PostForm(t, g1.URL+"/oauth/token", "alpha", "alpha-secret", cc))
	assertTooMany(t, "fourth token, on g2", gt.PostForm(t, g2.URL+"/oauth/token", "alpha", "alpha-secret", cc))
}

// TestLoginLockoutPasswordGrant: repeated wrong passwords for one user slow
// down and then lock that user at the attacker's address only; a locked
// attempt is refused even with the right password; an unknown username is
// treated exactly like a known one.
func TestLoginLockoutPasswordGrant(t *testing.T) {
	g := gt.Start(t, gt.Config(`
oauth {
	store memory
	rate_limit off
	lockout {
		slow_after 2
		lock_after 3
		lock_for 1h
	}
	client app {
		secret app-secret
		grants password
		scopes read
	}
	user alice `+gt.BcryptHash(t, "alice-pass")+` user-1
}`, `oauth_server`))
	tokenURL := g.URL + "/oauth/token"
	attacker, elsewhere := fromAddr("127.0.0.1"), fromAddr("127.0.0.2")
	login := func(c *http.Client, user, pass string) *gt.Response {
		return postFrom(t, c, tokenURL, "app", "app-secret", url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass}})
	}
	// The same sequence for a real and a made-up username.
	var trace [2][]string
	for i, user := range []string{"alice", "nobody-here"} {
		rec := func(r *gt.Response) *gt.Response {
			trace[i] = append(trace[i], strconv.Itoa(r.Status)+" "+r.Str("error")+" "+r.Header.Get("Retry-After"))
			return r
		}
		if r := rec(login(attacker, user, "guess-1")); r.Status != 400 || r.Str("error") != "invalid_grant" {
			t.Fatalf("%s, first wrong password: %d %s", user, r.Status, r.Body)
		}
		if r := rec(login(attacker, user, "guess-2")); r.Status != 400 {
			t.Fatalf("%s, second wrong password: %d %s", user, r.Status, r.Body)
		}
		// The second failure reached slow_after: the next attempt waits 1s.
		assertTooMany(t, user+" right after the second failure", rec(login(attacker, user, "guess-3")))
		var r *gt.Response
		poll.Until(t, 5*time.Second, user+": the slowdown ends", func() bool {
			r = login(attacker, user, "guess-3")
			return r.Status != 429
		})
		rec(r)
		if r.Status != 400 {
			t.Fatalf("%s, third wrong password after the wait: %d %s", user, r.Status, r.Body)
		}
		// The third failure locks for an hour, even for the right password.
		locked := rec(login(attacker, user, "alice-pass"))
		assertTooMany(t, user+" locked", locked)
		if ra, _ := strconv.Atoi(locked.Header.Get("Retry-After")); ra < 3500 {
			t.Fatalf("%s locked: Retry-After %d, want about an hour", user, ra)
		}
	}
	if strings.Join(trace[0], "|") != strings.Join(trace[1], "|") {
		t.Fatalf("a known and an unknown username are told apart:\n alice:   %v\n unknown: %v", trace[0], trace[1])
	}
	// From another address alice signs in: the attacker cannot lock her out.
	if r := login(elsewhere, "alice", "alice-pass"); r.Status != 200 {
		t.Fatalf("alice from another address: %d %s", r.Status, r.Body)
	}
}
