package integration

import (
	"net/url"
	"strconv"
	"strings"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// browserFrom is a browser whose requests leave from a loopback address.
func browserFrom(t *testing.T, base, ip string) *browser {
	b := newBrowser(t, base)
	b.c.Transport = fromAddr(ip).Transport
	return b
}

// signInPage starts an authorization request and returns the sign-in page.
func signInPage(t *testing.T, b *browser) *gt.Response {
	t.Helper()
	page := b.follow(b.authorize(webParams("s1")))
	if !isPage(page, "Sign in") {
		t.Fatalf("expected the sign-in page, got %d %s", page.Status, page.Body)
	}
	return page
}

// TestLoginFormLockout: the sign-in form shares the password grant's
// lockout: after repeated failures the right password is refused with 429
// and Retry-After from the attacker's address, while the person still
// signs in from another one.
func TestLoginFormLockout(t *testing.T) {
	g, _ := startAuthorize(t, `lockout {
		slow_after 2
		lock_after 2
		lock_for 1h
	}`)
	attacker := browserFrom(t, g.URL, "127.0.0.1")
	page := signInPage(t, attacker)
	for i := 1; i <= 2; i++ {
		page = attacker.login(page, "alice", "guess-"+strconv.Itoa(i))
		if page.Status != 200 || !strings.Contains(string(page.Body), "Incorrect username or password") {
			t.Fatalf("wrong password %d: %d %s", i, page.Status, page.Body)
		}
	}
	r := attacker.login(page, "alice", "alice-pw")
	if r.Status != 429 || r.Header.Get("Location") != "" || !strings.Contains(string(r.Body), "Too many failed sign-ins") {
		t.Fatalf("right password while locked: %d Location=%q %s", r.Status, r.Header.Get("Location"), r.Body)
	}
	if ra, _ := strconv.Atoi(r.Header.Get("Retry-After")); ra < 3500 {
		t.Fatalf("Retry-After %q, want about an hour", r.Header.Get("Retry-After"))
	}
	// The same for a username that does not exist: nothing tells them apart.
	other := browserFrom(t, g.URL, "127.0.0.3")
	page = signInPage(t, other)
	for i := 1; i <= 2; i++ {
		page = other.login(page, "nobody", "guess-"+strconv.Itoa(i))
		if page.Status != 200 || !strings.Contains(string(page.Body), "Incorrect username or password") {
			t.Fatalf("unknown user, wrong password %d: %d", i, page.Status)
		}
	}
	if r := other.login(page, "nobody", "x"); r.Status != 429 {
		t.Fatalf("unknown user locked: %d, want 429 as for a real one", r.Status)
	}
	// Alice, elsewhere, signs in.
	alice := browserFrom(t, g.URL, "127.0.0.2")
	if r := alice.login(signInPage(t, alice), "alice", "alice-pw"); !strings.HasPrefix(r.Header.Get("Location"), "/oauth/consent") {
		t.Fatalf("alice from her own address: %d Location=%q", r.Status, r.Header.Get("Location"))
	}
}

// TestLoginFormRateLimit: sign-in posts are limited per source address.
func TestLoginFormRateLimit(t *testing.T) {
	g, _ := startAuthorize(t, `lockout off
	rate_limit {
		login 3/h
	}`)
	b := browserFrom(t, g.URL, "127.0.0.1")
	page := signInPage(t, b)
	for i := 1; i <= 3; i++ {
		page = b.login(page, "bob", "wrong")
		if page.Status != 200 {
			t.Fatalf("post %d: %d", i, page.Status)
		}
	}
	r := b.login(page, "bob", "bob-pw")
	if r.Status != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("fourth post: %d Retry-After %q, want 429 with Retry-After", r.Status, r.Header.Get("Retry-After"))
	}
	// Another address is not limited.
	other := browserFrom(t, g.URL, "127.0.0.2")
	if r := other.login(signInPage(t, other), "bob", "bob-pw"); !strings.HasPrefix(r.Header.Get("Location"), "/oauth/consent") {
		t.Fatalf("bob from another address: %d Location=%q", r.Status, r.Header.Get("Location"))
	}
}

// TestIntrospectionRateLimitPerClient: introspection counts each client on
// its own, across addresses, with the token endpoint's 429 JSON answer.
func TestIntrospectionRateLimitPerClient(t *testing.T) {
	g, _ := startAuthorize(t, `rate_limit {
		introspect 2/h
	}`)
	tok := gt.PostForm(t, g.URL+"/oauth/token", "svc", "svc-secret", url.Values{"grant_type": {"client_credentials"}})
	if tok.Status != 200 {
		t.Fatalf("token: %d %s", tok.Status, tok.Body)
	}
	form := url.Values{"token": {tok.Str("access_token")}}
	introspect := "/oauth/introspect"
	if r := postFrom(t, fromAddr("127.0.0.1"), g.URL+introspect, "svc", "svc-secret", form); r.Status != 200 || r.JSON["active"] != true {
		t.Fatalf("introspection 1: %d %s", r.Status, r.Body)
	}
	if r := postFrom(t, fromAddr("127.0.0.2"), g.URL+introspect, "svc", "svc-secret", form); r.Status != 200 {
		t.Fatalf("introspection 2: %d %s", r.Status, r.Body)
	}
	assertTooMany(t, "svc's third introspection, from a third address",
		postFrom(t, fromAddr("127.0.0.3"), g.URL+introspect, "svc", "svc-secret", form))
	// Another client from that address is served.
	if r := postFrom(t, fromAddr("127.0.0.3"), g.URL+introspect, "web", "web-secret", form); r.Status != 200 {
		t.Fatalf("web's introspection: %d %s", r.Status, r.Body)
	}
}
