package integration

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// sessionSetCookie returns the Set-Cookie header of r that sets the
// session cookie under either of its names.
func sessionSetCookie(t *testing.T, r *gt.Response) string {
	t.Helper()
	for _, c := range r.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "oauth_session=") || strings.HasPrefix(c, "__Host-oauth_session=") {
			return c
		}
	}
	t.Fatalf("no session cookie in %q", r.Header.Values("Set-Cookie"))
	return ""
}

func cookieAttrs(c string) map[string]bool {
	attrs := map[string]bool{}
	for _, a := range strings.Split(c, ";")[1:] {
		attrs[strings.TrimSpace(a)] = true
	}
	return attrs
}

// behindTLS makes b keep cookies as a browser does that reaches the
// gateway by https through a TLS terminator, while b itself talks plain
// HTTP to the gateway: its Secure cookies are sent back.
func (b *browser) behindTLS() {
	b.c.Jar = httpsJar{b.c.Jar}
}

type httpsJar struct{ http.CookieJar }

func asHTTPS(u *url.URL) *url.URL {
	v := *u
	v.Scheme = "https"
	return &v
}

func (j httpsJar) SetCookies(u *url.URL, c []*http.Cookie) { j.CookieJar.SetCookies(asHTTPS(u), c) }
func (j httpsJar) Cookies(u *url.URL) []*http.Cookie       { return j.CookieJar.Cookies(asHTTPS(u)) }

// TestSessionCookieHostPrefixOverHTTPS: over https the session cookie is
// __Host-oauth_session, Secure with Path=/, which no sibling site can set
// or overwrite, and the whole flow works with it.
func TestSessionCookieHostPrefixOverHTTPS(t *testing.T) {
	g := gt.Start(t, gt.TLSConfig(`
oauth {
	store memory
	user alice `+gt.BcryptHash(t, "alice-pw")+` u-alice
	`+authorizeClients+`
}`, `oauth_server
respond "upstream"`), gt.WithHTTPS())
	b := newBrowser(t, g.URL)
	b.c.Transport = &http.Transport{TLSClientConfig: g.ClientTLS()}
	r := b.authorize(webParams("tls"))
	c := sessionSetCookie(t, r)
	attrs := cookieAttrs(c)
	if !strings.HasPrefix(c, "__Host-oauth_session=") || !attrs["Path=/"] || !attrs["Secure"] || !attrs["HttpOnly"] || !attrs["SameSite=Lax"] {
		t.Fatalf("session cookie over https: %q", c)
	}
	for a := range attrs {
		if strings.HasPrefix(a, "Domain") {
			t.Fatalf("a __Host- cookie has no Domain: %q", c)
		}
	}
	page := b.follow(r)
	u := clientRedirect(t, b.decide(b.follow(b.login(page, "alice", "alice-pw")), "allow"))
	if u.Query().Get("code") == "" {
		t.Fatalf("the flow over https: %s", u)
	}
}

// TestSessionCookieSecureBehindTLSProxy: behind a proxy that terminates
// TLS, the cookie is Secure when the server trusts the proxy and it says
// X-Forwarded-Proto: https; an untrusted peer saying so changes nothing;
// an https issuer makes it Secure whatever the request says.
func TestSessionCookieSecureBehindTLSProxy(t *testing.T) {
	g := gt.Start(t, gt.Config(`
servers {
	trusted_proxies static 127.0.0.2/32
}
oauth {
	store memory
	`+authorizeClients+`
}`, `oauth_server
respond "upstream"`))
	for _, tc := range []struct {
		from   string
		secure bool
	}{{"127.0.0.2", true}, {"127.0.0.1", false}} {
		b := browserFrom(t, g.URL, tc.from)
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/oauth/authorize?"+webParams("s").Encode(), nil)
		req.Header.Set("X-Forwarded-Proto", "https")
		c := sessionSetCookie(t, b.do(req))
		if attrs := cookieAttrs(c); attrs["Secure"] != tc.secure || strings.HasPrefix(c, "__Host-") != tc.secure {
			t.Fatalf("X-Forwarded-Proto: https from %s: cookie %q, want secure=%v", tc.from, c, tc.secure)
		}
	}

	h, _ := startAuthorize(t, "issuer https://auth.example.com")
	c := sessionSetCookie(t, newBrowser(t, h.URL).authorize(webParams("s")))
	if attrs := cookieAttrs(c); !attrs["Secure"] || !strings.HasPrefix(c, "__Host-oauth_session=") {
		t.Fatalf("with an https issuer: cookie %q, want Secure", c)
	}
}

// TestTwoSessionCookiesAreSignedOut: a request carrying the session cookie
// twice (one planted by a sibling site, say) is treated as signed out,
// whichever comes first.
func TestTwoSessionCookiesAreSignedOut(t *testing.T) {
	g, _ := startAuthorize(t, "self_service")
	alice := newAppsBrowser(t, g)
	alice.login("alice", "alice-pw")
	u, _ := url.Parse(g.URL + "/oauth/")
	var sid string
	for _, c := range alice.c.Jar.Cookies(u) {
		if c.Name == "oauth_session" {
			sid = c.Value
		}
	}
	if sid == "" {
		t.Fatal("no session cookie")
	}
	if r := gt.Get(t, g.URL+"/oauth/apps", "", "Cookie", "oauth_session="+sid); r.Status != 200 {
		t.Fatalf("one cookie: %d, want the signed-in page", r.Status)
	}
	for _, cookie := range []string{"oauth_session=" + sid + "; oauth_session=planted", "oauth_session=planted; oauth_session=" + sid} {
		if r := gt.Get(t, g.URL+"/oauth/apps", "", "Cookie", cookie); r.Status != 303 {
			t.Fatalf("Cookie: %s: %d, want 303 to sign in", strings.Replace(cookie, sid, "<sid>", 1), r.Status)
		}
	}
}
