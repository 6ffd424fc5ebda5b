package integration

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// TestAuthorizeRateLimitedByDefault: GET /oauth/authorize stores a pending
// request, so one address sending them as fast as it can is refused with
// 429 and Retry-After well before it has sent 200, with the default
// limits; another address is still served.
func TestAuthorizeRateLimitedByDefault(t *testing.T) {
	g, _ := startAuthorize(t, "")
	flood := browserFrom(t, g.URL, "127.0.0.1")
	limited := false
	for i := 0; i < 200 && !limited; i++ {
		r := flood.authorize(webParams("s" + strconv.Itoa(i)))
		switch r.Status {
		case 429:
			if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
				t.Fatalf("429 with Retry-After %q", r.Header.Get("Retry-After"))
			}
			limited = true
		case 302:
		default:
			t.Fatalf("authorize %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	if !limited {
		t.Fatal("200 authorization requests from one address were all served")
	}
	other := browserFrom(t, g.URL, "127.0.0.2")
	if loc := location(t, other.authorize(webParams("other"))); !strings.HasPrefix(loc, "/oauth/login") {
		t.Fatalf("another address went to %q, want the sign-in page", loc)
	}
}

// TestAuthorizeLimitCountsAppsLogin: `rate_limit { authorize ... }` counts
// GET /oauth/authorize and GET /oauth/apps/login per address.
func TestAuthorizeLimitCountsAppsLogin(t *testing.T) {
	g, _ := startAuthorize(t, `self_service
	rate_limit {
		authorize 3/h
	}`)
	b := browserFrom(t, g.URL, "127.0.0.1")
	if r := b.get("/oauth/apps/login"); r.Status != 200 {
		t.Fatalf("sign-in page: %d", r.Status)
	}
	for i := range 2 {
		if r := b.authorize(webParams("s")); r.Status != 302 {
			t.Fatalf("authorize %d: %d", i+1, r.Status)
		}
	}
	if r := b.authorize(webParams("s")); r.Status != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("fourth request: %d Retry-After %q, want 429", r.Status, r.Header.Get("Retry-After"))
	}
	if r := b.get("/oauth/apps/login"); r.Status != 429 {
		t.Fatalf("sign-in page over the limit: %d, want 429", r.Status)
	}
	if r := browserFrom(t, g.URL, "127.0.0.2").authorize(webParams("s")); r.Status != 302 {
		t.Fatalf("another address: %d", r.Status)
	}
}

// TestAuthorizeStateTooLong: a state longer than 1 KiB is invalid_request,
// and is not echoed; 1 KiB exactly is accepted.
func TestAuthorizeStateTooLong(t *testing.T) {
	g, _ := startAuthorize(t, "")
	b := newBrowser(t, g.URL)
	if loc := location(t, b.authorize(webParams(strings.Repeat("s", 1024)))); !strings.HasPrefix(loc, "/oauth/login") {
		t.Fatalf("a 1 KiB state went to %q, want the sign-in page", loc)
	}
	u := clientRedirect(t, b.authorize(webParams(strings.Repeat("s", 1025))))
	if q := u.Query(); q.Get("error") != "invalid_request" || q.Has("state") {
		t.Fatalf("a 1025-byte state: %s, want invalid_request without the state", u)
	}
}

// TestAuthorizeLongQuery: an authorization request longer than 8 KiB is
// an error page (Caddy itself refuses one past its 16 KiB header limit);
// within the bound, a request of a thousand scopes is answered at once.
func TestAuthorizeLongQuery(t *testing.T) {
	g, _ := startAuthorize(t, "")
	b := newBrowser(t, g.URL)
	var scopes []string
	for i := range 2000 {
		scopes = append(scopes, fmt.Sprintf("s%d", i))
	}
	q := webParams("s")
	q.Set("scope", strings.Join(scopes, " "))
	if n := len(q.Encode()); n <= 8<<10 || n >= 15<<10 {
		t.Fatalf("the query is %d bytes, want between 8 and 15 KiB", n)
	}
	r := b.get("/oauth/authorize?" + q.Encode())
	if r.Status != 400 || r.Header.Get("Location") != "" {
		t.Fatalf("a %d-byte query: %d Location=%q, want an error page", len(q.Encode()), r.Status, r.Header.Get("Location"))
	}
	q.Set("scope", strings.Join(scopes[:1000], " "))
	u := clientRedirect(t, b.get("/oauth/authorize?"+q.Encode()))
	if u.Query().Get("error") != "invalid_scope" {
		t.Fatalf("1000 scopes: %s", u)
	}
}
