package authz

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// writeRecorder records the keys written to a store.
type writeRecorder struct {
	store.Store
	mu   sync.Mutex
	keys []string
}

func (w *writeRecorder) record(key string) {
	w.mu.Lock()
	w.keys = append(w.keys, key)
	w.mu.Unlock()
}

func (w *writeRecorder) written() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.keys)
}

func (w *writeRecorder) reset() {
	w.mu.Lock()
	w.keys = nil
	w.mu.Unlock()
}

func (w *writeRecorder) Put(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	w.record(key)
	return w.Store.Put(ctx, key, v, ttl)
}

func (w *writeRecorder) Create(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	w.record(key)
	return w.Store.Create(ctx, key, v, ttl)
}

func (w *writeRecorder) Swap(ctx context.Context, key string, prev, next []byte, ttl time.Duration) error {
	w.record(key)
	return w.Store.Swap(ctx, key, prev, next, ttl)
}

func (w *writeRecorder) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	w.record(key)
	return w.Store.Incr(ctx, key, ttl)
}

func (w *writeRecorder) AddMember(ctx context.Context, set, member string, ttl time.Duration) error {
	w.record(set)
	return w.Store.AddMember(ctx, set, member, ttl)
}

// recordingAuthorizer is testAuthorizer over a store that records writes.
func recordingAuthorizer(t *testing.T) (*Authorizer, *writeRecorder) {
	t.Helper()
	rec := &writeRecorder{Store: memStore(t)}
	clients := StaticClients{"web": {ID: "web", Name: "Web", RedirectURIs: []string{"https://app.example/cb"},
		Grants: []string{GrantAuthorizationCode}, Scopes: []string{"read"}}}
	svc := New(Config{CodeTTL: 60e9, AccessTokenTTL: 3600e9, Issuer: fixedIssuer("https://auth.example.com")}, rec, clients, nil, nil)
	return svc.NewAuthorizer(AuthorizeConfig{}), rec
}

func authorizeGET(a *Authorizer, query string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "https://auth.example.com/oauth/authorize?"+query, nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	a.ServeAuthorize(w, r)
	return w
}

// TestAuthorizeWritesNothingForInvalidRequests: a request that fails any
// check (client, redirect URI, response_type, scope, PKCE, state size)
// writes nothing to the store.
func TestAuthorizeWritesNothingForInvalidRequests(t *testing.T) {
	a, rec := recordingAuthorizer(t)
	for name, q := range map[string]string{
		"unknown client":    "response_type=code&client_id=nobody",
		"bad redirect":      "response_type=code&client_id=web&redirect_uri=" + url.QueryEscape("https://evil.example/cb"),
		"bad response_type": "response_type=token&client_id=web",
		"scope beyond":      "response_type=code&client_id=web&scope=admin",
		"bad PKCE":          "response_type=code&client_id=web&code_challenge=short&code_challenge_method=S256",
		"state too long":    "response_type=code&client_id=web&state=" + strings.Repeat("s", 1025),
		"query too long":    "response_type=code&client_id=web&x=" + strings.Repeat("x", 9000),
	} {
		w := authorizeGET(a, q)
		if loc := w.Header().Get("Location"); strings.HasPrefix(loc, "/oauth/login") {
			t.Errorf("%s: sent on to sign in", name)
		}
		if keys := rec.written(); len(keys) > 0 {
			t.Errorf("%s: wrote %q", name, keys)
		}
		rec.reset()
	}
}

// TestAuthorizeStoresOnlyThePendingRequest: a valid request from a browser
// with no session stores the pending request and nothing else: the
// anonymous session is a cookie, not a record. The sign-in form bound to
// that cookie works, and signing in stores the session.
func TestAuthorizeStoresOnlyThePendingRequest(t *testing.T) {
	a, rec := recordingAuthorizer(t)
	w := authorizeGET(a, "response_type=code&client_id=web&state=s")
	loc := w.Header().Get("Location")
	if !strings.HasPrefix(loc, "/oauth/login?request_id=") {
		t.Fatalf("went to %q", loc)
	}
	keys := rec.written()
	if len(keys) != 1 || !strings.HasPrefix(keys[0], prefixPending) {
		t.Fatalf("wrote %q, want only the pending request", keys)
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies %v", cookies)
	}
	rec.reset()
	// The sign-in page for that request writes nothing either.
	r := httptest.NewRequest(http.MethodGet, "https://auth.example.com"+loc, nil)
	r.AddCookie(cookies[0])
	page := httptest.NewRecorder()
	a.ServeLogin(page, r)
	if page.Code != 200 || !strings.Contains(page.Body.String(), "csrf_token") {
		t.Fatalf("sign-in page: %d %s", page.Code, page.Body)
	}
	if keys := rec.written(); len(keys) > 0 {
		t.Fatalf("the sign-in page wrote %q", keys)
	}
}

// TestEnsureSessionWritesNothing: the self-service sign-in form gets a
// CSRF token bound to a cookie without a store record.
func TestEnsureSessionWritesNothing(t *testing.T) {
	a, rec := recordingAuthorizer(t)
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "https://auth.example.com/oauth/apps/login", nil)
	csrf, err := a.EnsureSession(w, r)
	if err != nil || csrf == "" {
		t.Fatalf("EnsureSession: %q, %v", csrf, err)
	}
	if keys := rec.written(); len(keys) > 0 {
		t.Fatalf("wrote %q", keys)
	}
	r2 := httptest.NewRequest(http.MethodPost, "https://auth.example.com/oauth/apps/login", nil)
	for _, c := range w.Result().Cookies() {
		r2.AddCookie(c)
	}
	if ok, err := a.ValidCSRF(r2, csrf); !ok || err != nil {
		t.Fatalf("the token of the cookie-only session: %v, %v", ok, err)
	}
}

// TestParseScopeIsLinear: de-duplicating scopes takes linear time, so a
// long scope parameter costs no more than reading it.
func TestParseScopeIsLinear(t *testing.T) {
	parts := make([]string, 200_000)
	for i := range parts {
		parts[i] = fmt.Sprintf("scope%d", i)
	}
	s := strings.Join(parts, " ") + " scope7"
	done := make(chan []string, 1)
	go func() {
		out, _ := ParseScope(s)
		done <- out
	}()
	select {
	case out := <-done:
		if len(out) != len(parts) || out[7] != "scope7" || out[len(out)-1] != parts[len(parts)-1] {
			t.Fatalf("ParseScope kept %d scopes, want %d in order", len(out), len(parts))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ParseScope of 200,000 scopes did not finish in 20s")
	}
	if !subset(parts, parts) {
		t.Fatal("subset of itself")
	}
}
