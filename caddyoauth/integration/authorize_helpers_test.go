package integration

import (
	"crypto/sha256"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// browser is a person's browser for the screens: a cookie jar, and no
// redirect followed, so each step can be checked.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
	// host, when set, is sent as the Host header instead of base's.
	host string
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{
		Jar:           jar,
		Timeout:       gt.HTTPClient.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (b *browser) do(req *http.Request) *gt.Response {
	b.t.Helper()
	if b.host != "" {
		req.Host = b.host
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return &gt.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// get fetches a path of the gateway or an absolute URL.
func (b *browser) get(target string) *gt.Response {
	b.t.Helper()
	if strings.HasPrefix(target, "/") {
		target = b.base + target
	}
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) *gt.Response {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// authorize starts an authorization request and returns the answer.
func (b *browser) authorize(params url.Values) *gt.Response {
	b.t.Helper()
	return b.get("/oauth/authorize?" + params.Encode())
}

// follow fetches the Location of a redirect and fails unless it is one.
func (b *browser) follow(r *gt.Response) *gt.Response {
	b.t.Helper()
	loc := location(b.t, r)
	return b.get(loc)
}

// login submits the sign-in form of page.
func (b *browser) login(page *gt.Response, username, password string) *gt.Response {
	b.t.Helper()
	return b.post("/oauth/login", url.Values{
		"username": {username}, "password": {password},
		"csrf_token": {hidden(b.t, page, "csrf_token")}, "request_id": {hidden(b.t, page, "request_id")},
	})
}

// decide submits the consent form of page with consent=allow or deny.
func (b *browser) decide(page *gt.Response, answer string) *gt.Response {
	b.t.Helper()
	return b.post("/oauth/consent", url.Values{
		"consent":    {answer},
		"csrf_token": {hidden(b.t, page, "csrf_token")}, "request_id": {hidden(b.t, page, "request_id")},
	})
}

// approve walks an authorization request through sign-in (unless the
// browser is signed in) and consent (unless it is remembered) and returns
// the redirect to the client.
func (b *browser) approve(params url.Values, username, password string) *url.URL {
	b.t.Helper()
	return b.approveURL(b.base+"/oauth/authorize?"+params.Encode(), username, password)
}

// approveURL is approve for a whole authorization request URL, such as a
// client library builds from the metadata's authorization_endpoint.
func (b *browser) approveURL(authURL, username, password string) *url.URL {
	b.t.Helper()
	r := b.get(authURL)
	if strings.HasPrefix(location(b.t, r), "/oauth/login") {
		page := b.follow(r)
		if !isPage(page, "Sign in") {
			b.t.Fatalf("expected the sign-in page, got %d %s", page.Status, page.Body)
		}
		r = b.login(page, username, password)
	}
	if !strings.HasPrefix(location(b.t, r), "/oauth/consent") {
		b.t.Fatalf("expected the consent step, got %s", location(b.t, r))
	}
	consent := b.follow(r)
	if consent.Status != 200 {
		return clientRedirect(b.t, consent) // consent remembered
	}
	if !isPage(consent, "wants to access your account") {
		b.t.Fatalf("expected the consent page, got %d %s", consent.Status, consent.Body)
	}
	return clientRedirect(b.t, b.decide(consent, "allow"))
}

var hiddenRE = regexp.MustCompile(`name="([a-z_]+)" value="([^"]*)"`)

// hidden returns the value of a named form field of a page.
func hidden(t *testing.T, page *gt.Response, name string) string {
	t.Helper()
	for _, m := range hiddenRE.FindAllStringSubmatch(string(page.Body), -1) {
		if m[1] == name {
			return html.UnescapeString(m[2])
		}
	}
	t.Fatalf("no field %s in page %d:\n%s", name, page.Status, page.Body)
	return ""
}

func isPage(r *gt.Response, text string) bool {
	return r.Status == 200 && strings.Contains(string(r.Body), text)
}

func location(t *testing.T, r *gt.Response) string {
	t.Helper()
	if r.Status != http.StatusFound && r.Status != http.StatusSeeOther {
		t.Fatalf("expected a redirect, got %d %s", r.Status, r.Body)
	}
	return r.Header.Get("Location")
}

// clientRedirect returns the redirect of r, which must leave the gateway
// for the client.
func clientRedirect(t *testing.T, r *gt.Response) *url.URL {
	t.Helper()
	u, err := url.Parse(location(t, r))
	if err != nil || !u.IsAbs() {
		t.Fatalf("redirect to %q is not an absolute URL", r.Header.Get("Location"))
	}
	return u
}

// pkce returns a verifier and its S256 challenge.
func pkce(seed string) (verifier, challenge string) {
	verifier = strings.Repeat(seed, 43/len(seed)+1)[:43] + "-._~0123456789"
	d := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(d[:])
}
