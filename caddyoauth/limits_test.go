package caddyoauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// limitedServer provisions an app from JSON and a Server over it, with
// stand-in endpoints for the paths that other features serve.
func limitedServer(t *testing.T, cfg string) (*App, *Server) {
	t.Helper()
	a := new(App)
	if err := json.Unmarshal([]byte(cfg), a); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	t.Cleanup(cancel)
	if err := a.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	s := &Server{app: a, svc: a.Service()}
	s.indexRoutes()
	// Stand-ins answer 418, so the test sees what the limits let through.
	for _, p := range []string{"introspect", "revoke", "login", "authorize"} {
		s.endpoints[PathPrefix+p] = endpoint{path: PathPrefix + p, serve: func(_ *Server, w http.ResponseWriter, _ *http.Request) error {
			w.WriteHeader(http.StatusTeapot)
			return nil
		}}
	}
	return a, s
}

// request builds a request as Caddy hands it to a handler, with the
// client IP Caddy determined.
func request(method, path, clientIP string) *http.Request {
	r := httptest.NewRequest(method, path, strings.NewReader(""))
	r.RemoteAddr = "192.0.2.200:5555" // the proxy in front, when clientIP differs
	ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: clientIP})
	return r.WithContext(ctx)
}

// status runs the server's dispatch and returns the status it answered
// with, handler errors included, and the Retry-After header.
func status(t *testing.T, s *Server, r *http.Request) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	err := s.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}))
	var he caddyhttp.HandlerError
	if err != nil {
		if !asHandlerError(err, &he) {
			t.Fatalf("unexpected error %v", err)
		}
		return he.StatusCode, w.Header().Get("Retry-After")
	}
	return w.Code, w.Header().Get("Retry-After")
}

func asHandlerError(err error, he *caddyhttp.HandlerError) bool { return errors.As(err, he) }

// TestEndpointLimitsPerAddress: login form posts, introspection and revocation are
// limited per client IP (Caddy's, so trusted proxies count), with 429 and
// Retry-After; other requests are never counted.
func TestEndpointLimitsPerAddress(t *testing.T) {
	_, s := limitedServer(t, `{"store":{"module":"memory"},"rate_limit":{"login":{"events":2,"per":3600000000000},"introspect":{"events":1,"per":3600000000000},"revoke":{"events":1,"per":3600000000000}}}`)
	for i := 0; i < 2; i++ {
		if code, _ := status(t, s, request("POST", "/oauth/login", "198.51.100.7")); code != http.StatusTeapot {
			t.Fatalf("login post %d: %d", i+1, code)
		}
	}
	// Reading the form is free.
	if code, _ := status(t, s, request("GET", "/oauth/authorize", "198.51.100.7")); code != http.StatusTeapot {
		t.Fatalf("GET of the form: %d", code)
	}
	// The third post, even to the other login path, is refused.
	if code, ra := status(t, s, request("POST", "/oauth/authorize", "198.51.100.7")); code != 429 || ra == "" {
		t.Fatalf("third login post: %d Retry-After %q, want 429 with Retry-After", code, ra)
	}
	// Another client IP behind the same proxy is counted apart.
	if code, _ := status(t, s, request("POST", "/oauth/login", "198.51.100.8")); code != http.StatusTeapot {
		t.Fatalf("login post from another client IP: %d", code)
	}
	if code, _ := status(t, s, request("POST", "/oauth/introspect", "198.51.100.7")); code != http.StatusTeapot {
		t.Fatalf("introspection: %d", code)
	}
	if code, ra := status(t, s, request("POST", "/oauth/introspect", "198.51.100.7")); code != 429 || ra == "" {
		t.Fatalf("second introspection: %d Retry-After %q", code, ra)
	}
	if code, _ := status(t, s, request("POST", "/oauth/revoke", "198.51.100.7")); code != http.StatusTeapot {
		t.Fatalf("revocation: %d", code)
	}
	if code, ra := status(t, s, request("POST", "/oauth/revoke", "198.51.100.7")); code != 429 || ra == "" {
		t.Fatalf("second revocation: %d Retry-After %q", code, ra)
	}
	// Proxied requests are not limited.
	for i := 0; i < 5; i++ {
		if code, _ := status(t, s, request("POST", "/api/orders", "198.51.100.7")); code != http.StatusNoContent {
			t.Fatalf("proxied request: %d", code)
		}
	}
}

// TestLimitsLoginFormAPI: the lockout a login form drives through
// App.Limits locks a username at one address after its failures, and
// success clears it.
func TestLimitsLoginFormAPI(t *testing.T) {
	a, _ := limitedServer(t, `{"store":{"module":"memory"},"lockout":{"slow_after":2,"lock_after":2,"lock_for":3600000000000}}`)
	l := a.Limits()
	r := request("POST", "/oauth/login", "198.51.100.9")
	other := request("POST", "/oauth/login", "198.51.100.10")
	if wait := l.LoginLocked(r, "carol"); wait != 0 {
		t.Fatalf("fresh username locked for %v", wait)
	}
	l.LoginResult(r, "carol", false)
	l.LoginResult(r, "carol", false)
	if wait := l.LoginLocked(r, "carol"); wait < 3500e9 {
		t.Fatalf("after lock_after failures: wait %v, want about 1h", wait)
	}
	if wait := l.LoginLocked(other, "carol"); wait != 0 {
		t.Fatalf("carol from another address: wait %v", wait)
	}
	l.LoginResult(other, "dave", false)
	l.LoginResult(other, "dave", true)
	l.LoginResult(other, "dave", false)
	if wait := l.LoginLocked(other, "dave"); wait != 0 {
		t.Fatalf("dave after fail, success, fail: wait %v; the success should have cleared the count", wait)
	}
	w := httptest.NewRecorder()
	err := WriteTooManyRequests(w, 1500e6)
	var he caddyhttp.HandlerError
	if !asHandlerError(err, &he) || he.StatusCode != 429 || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("WriteTooManyRequests: %v, Retry-After %q", err, w.Header().Get("Retry-After"))
	}
}

func TestClientIP(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "[2001:db8::1]:443"
	if got := ClientIP(r); got != "2001:db8::1" {
		t.Errorf("without Caddy's var: %q", got)
	}
	if got := ClientIP(request("GET", "/", "203.0.113.5")); got != "203.0.113.5" {
		t.Errorf("with Caddy's client IP: %q", got)
	}
}

// TestLimitsProvision: the JSON form is checked in Provision too, and the
// defaults apply to what the config leaves out.
func TestLimitsProvision(t *testing.T) {
	provision := func(cfg string) (*App, error) {
		a := new(App)
		if err := json.Unmarshal([]byte(cfg), a); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
		t.Cleanup(cancel)
		return a, a.Provision(ctx)
	}
	a, err := provision(`{"store":{"module":"memory"},"rate_limit":{"login":{"events":5,"per":60000000000},"introspect":{"off":true}}}`)
	if err != nil {
		t.Fatal(err)
	}
	l := a.Limits()
	if r := l.rates[LimitToken]; r != defaultRates[LimitToken] {
		t.Errorf("token rate %+v, want the default", r)
	}
	if r := l.rates[LimitLogin]; r.Events != 5 || r.Per != time.Minute {
		t.Errorf("login rate %+v, want 5/m", r)
	}
	if _, on := l.rates[LimitIntrospect]; on {
		t.Error("introspect limit is on, want off")
	}
	if l.lockout == nil || l.lockout.Policy().LockAfter != 10 {
		t.Error("lockout is not on with its defaults")
	}
	for _, bad := range []string{
		`{"store":{"module":"memory"},"rate_limit":{"token":{"events":0,"per":1000000000}}}`,
		`{"store":{"module":"memory"},"rate_limit":{"token":{"events":5}}}`,
		`{"store":{"module":"memory"},"lockout":{"lock_after":-1}}`,
	} {
		if _, err := provision(bad); err == nil {
			t.Errorf("%s provisioned, want an error", bad)
		}
	}
	a, err = provision(`{"store":{"module":"memory"},"rate_limit":{"off":true},"lockout":{"off":true}}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Limits().rates) != 0 || a.Limits().lockout != nil {
		t.Error("rate_limit off / lockout off left something on")
	}
}
