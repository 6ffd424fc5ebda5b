package caddyoauth

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestAuthorizeLimitCountsSignInStarts: the authorize limit counts GET
// /oauth/authorize and GET /oauth/apps/login per address, an IPv6 /64
// being one address; the sign-in form's own page and posts are not
// counted under it.
func TestAuthorizeLimitCountsSignInStarts(t *testing.T) {
	_, s := limitedServer(t, `{"store":{"module":"memory"},"self_service":true,"rate_limit":{"authorize":{"events":2,"per":3600000000000}}}`)
	if code, _ := status(t, s, request("GET", "/oauth/authorize", "2001:db8:1:2::1")); code != http.StatusTeapot {
		t.Fatalf("first: %d", code)
	}
	if code, _ := status(t, s, request("GET", "/oauth/apps/login", "2001:db8:1:2::2")); code == 429 {
		t.Fatalf("second, from the same /64: %d", code)
	}
	for _, path := range []string{"/oauth/authorize", "/oauth/apps/login"} {
		if code, ra := status(t, s, request("GET", path, "2001:db8:1:2:ffff::3")); code != 429 || ra == "" {
			t.Fatalf("GET %s, third from the /64: %d Retry-After %q, want 429", path, code, ra)
		}
	}
	for _, r := range []*http.Request{request("GET", "/oauth/login", "2001:db8:1:2::1"), request("POST", "/oauth/login", "2001:db8:1:2::1"),
		request("GET", "/oauth/authorize", "2001:db8:1:3::1")} {
		if code, _ := status(t, s, r); code == 429 {
			t.Fatalf("%s %s from %s: 429", r.Method, r.URL.Path, ClientIP(r))
		}
	}
}

// TestSecureRequest: a request counts as HTTPS for the session cookie over
// TLS, with an https issuer, or with X-Forwarded-Proto: https from a
// trusted proxy, never from an untrusted one.
func TestSecureRequest(t *testing.T) {
	httpIssuer := func() (string, error) { return "http://127.0.0.1:8080", nil }
	httpsIssuer := func() (string, error) { return "https://auth.example.com", nil }
	req := func(trusted bool, proto string, overTLS bool) *http.Request {
		r := httptest.NewRequest("GET", "/oauth/authorize", nil)
		if proto != "" {
			r.Header.Set("X-Forwarded-Proto", proto)
		}
		if overTLS {
			r.TLS = &tls.ConnectionState{}
		}
		vars := map[string]any{caddyhttp.TrustedProxyVarKey: trusted, caddyhttp.ClientIPVarKey: "192.0.2.1"}
		return r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, vars))
	}
	for _, tc := range []struct {
		name   string
		issuer func() (string, error)
		r      *http.Request
		want   bool
	}{
		{"plain", httpIssuer, req(false, "", false), false},
		{"TLS", httpIssuer, req(false, "", true), true},
		{"https issuer", httpsIssuer, req(false, "", false), true},
		{"trusted proxy, https", httpIssuer, req(true, "https", false), true},
		{"trusted proxy, list", httpIssuer, req(true, "HTTPS, http", false), true},
		{"trusted proxy, http", httpIssuer, req(true, "http", false), false},
		{"untrusted peer, https", httpIssuer, req(false, "https", false), false},
	} {
		a := &App{issuer: tc.issuer}
		if got := a.secureRequest(tc.r); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestStripSessionCookie: the session cookie, under either name, never
// reaches an upstream; other cookies do, in order.
func TestStripSessionCookie(t *testing.T) {
	for in, want := range map[string]string{
		"a=1; __Host-oauth_session=s; b=2": "a=1; b=2",
		"oauth_session=s":                  "",
		"a=1":                              "a=1",
		"xoauth_session=1; b=2":            "xoauth_session=1; b=2",
	} {
		r := httptest.NewRequest("GET", "/api", nil)
		r.Header.Set("Cookie", in)
		stripSessionCookie(r)
		if got := strings.Join(r.Header.Values("Cookie"), "|"); got != want {
			t.Errorf("Cookie %q: %q, want %q", in, got, want)
		}
	}
	r := httptest.NewRequest("GET", "/api", nil)
	r.Header.Add("Cookie", "a=1")
	r.Header.Add("Cookie", "__Host-oauth_session=s")
	stripSessionCookie(r)
	if got := r.Header.Values("Cookie"); !slices.Equal(got, []string{"a=1"}) {
		t.Errorf("two Cookie lines: %q", got)
	}
}

// TestAbuseOptionsCaddyfile: apps_allowed_scopes, apps_per_user, rate_limit
// authorize and lockout account_slow_after parse, and bad values are
// refused at their line.
func TestAbuseOptionsCaddyfile(t *testing.T) {
	a := new(App)
	in := `oauth {
	apps_allowed_scopes read profile
	apps_per_user 3
	rate_limit {
		authorize 5/s burst 20
	}
	lockout {
		account_slow_after 50
	}
}`
	if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.SelfServiceScopes, []string{"read", "profile"}) || a.AppsPerUser != 3 ||
		a.RateLimit.Authorize == nil || a.RateLimit.Authorize.Events != 5 || a.RateLimit.Authorize.Burst != 20 ||
		a.Lockout.AccountSlowAfter != 50 {
		t.Fatalf("parsed %+v %+v %+v", a, a.RateLimit.Authorize, a.Lockout)
	}
	for body, want := range map[string]string{
		"apps_allowed_scopes":                            "wrong argument count",
		"apps_allowed_scopes re\"ad":                     "not a valid scope",
		"apps_per_user 0":                                "not a positive integer",
		"apps_per_user":                                  "wrong argument count",
		"rate_limit {\n\t\tauthorize 0/s\n\t}":           "positive integer",
		"lockout {\n\t\taccount_slow_after -1\n\t}":      "not a positive integer",
		"apps_per_user 1\n\tapps_per_user 2":             "given twice",
		"apps_allowed_scopes a\n\tapps_allowed_scopes b": "given twice",
	} {
		err := new(App).UnmarshalCaddyfile(caddyfile.NewTestDispenser("oauth {\n\t" + body + "\n}"))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "Testfile:") {
			t.Errorf("%q: error %v, want one containing %q and the file and line", body, err, want)
		}
	}
}
