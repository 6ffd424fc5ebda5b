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
	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/store"
	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
)

// testProtect builds an oauth_protect handler over a service, as Provision
// would, and returns a token of the service's client with scope read.
func testProtect(t *testing.T, s store.Store, scopes ...string) (*Protect, *authz.Service) {
	t.Helper()
	c := &authz.Client{ID: "svc", Grants: []string{authz.GrantClientCredentials}, Scopes: []string{"read", "write"}, UserID: "svc-user"}
	c.SetSecret("s")
	anon := &authz.Client{ID: "anon", Grants: []string{authz.GrantClientCredentials}, Scopes: []string{"read"}}
	anon.SetSecret("s")
	svc := authz.New(authz.Config{AccessTokenTTL: time.Hour}, s, authz.StaticClients{"svc": c, "anon": anon}, nil, nil)
	p := &Protect{Scopes: scopes, svc: svc, logger: zap.NewNop(),
		UserHeader: DefaultUserHeader, ClientHeader: DefaultClientHeader, ScopeHeader: DefaultScopeHeader,
		challenge: `Bearer realm="api"`}
	p.prepareHeaders()
	return p, svc
}

func issue(t *testing.T, svc *authz.Service, client, scope string) string {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader("grant_type=client_credentials&scope="+scope))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(client, "s")
	w := httptest.NewRecorder()
	svc.ServeToken(w, r)
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.AccessToken == "" {
		t.Fatalf("token: %d %s", w.Code, w.Body)
	}
	return body.AccessToken
}

// recorder is the next handler: it records whether and how it was reached.
type recorder struct {
	called bool
	header http.Header
	vars   map[string]any
}

func (n *recorder) ServeHTTP(_ http.ResponseWriter, r *http.Request) error {
	n.called = true
	n.header = r.Header.Clone()
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	n.vars = map[string]any{}
	for _, k := range []string{"http.auth.user.id", "oauth.client_id", "oauth.scope"} {
		if v, ok := repl.Get(k); ok {
			n.vars[k] = v
		}
	}
	return nil
}

func run(p *Protect, token string, extra ...string) (*httptest.ResponseRecorder, *recorder, error) {
	r := httptest.NewRequest(http.MethodGet, "/api", nil)
	caddyhttp.NewTestReplacer(r)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		r.Header[extra[i]] = append(r.Header[extra[i]], extra[i+1])
	}
	w := httptest.NewRecorder()
	next := &recorder{}
	err := p.ServeHTTP(w, r, next)
	return w, next, err
}

func statusOf(err error) int {
	var he caddyhttp.HandlerError
	if errors.As(err, &he) {
		return he.StatusCode
	}
	return 0
}

func TestProtect(t *testing.T) {
	db, err := filestore.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, svc := testProtect(t, db, "read")
	userTok := issue(t, svc, "svc", "read")
	anonTok := issue(t, svc, "anon", "read")

	t.Run("valid token with a user", func(t *testing.T) {
		_, next, err := run(p, userTok, "X-User-Id", "forged", "x_user_id", "forged", "X-OAUTH-SCOPE", "admin")
		if err != nil || !next.called {
			t.Fatalf("err %v, called %v", err, next.called)
		}
		if got := next.header.Values("X-User-Id"); len(got) != 1 || got[0] != "svc-user" {
			t.Fatalf("X-User-ID = %v", got)
		}
		if _, ok := next.header["x_user_id"]; ok {
			t.Fatal("the underscore copy survived")
		}
		if next.header.Get("X-OAuth-Scope") != "read" || next.header.Get("X-OAuth-Client-Id") != "svc" {
			t.Fatalf("headers %v", next.header)
		}
		if next.vars["http.auth.user.id"] != "svc-user" || next.vars["oauth.client_id"] != "svc" || next.vars["oauth.scope"] != "read" {
			t.Fatalf("placeholders %v", next.vars)
		}
		if _, ok := next.header["Authorization"]; ok {
			t.Fatal("the bearer token went on to the next handler")
		}
	})
	t.Run("forward_token keeps the token", func(t *testing.T) {
		pf := *p
		pf.ForwardToken = true
		_, next, err := run(&pf, userTok)
		if err != nil || !next.called || next.header.Get("Authorization") != "Bearer "+userTok {
			t.Fatalf("err %v, headers %v", err, next.header)
		}
	})
	t.Run("valid token without a user", func(t *testing.T) {
		_, next, err := run(p, anonTok, "X-User-ID", "forged")
		if err != nil || !next.called {
			t.Fatalf("err %v", err)
		}
		if _, ok := next.header["X-User-Id"]; ok {
			t.Fatalf("X-User-ID reached the upstream for a token with no user: %v", next.header)
		}
		if v, ok := next.vars["http.auth.user.id"]; !ok || v != "" {
			t.Fatalf("{http.auth.user.id} = %v, %v; want set and empty for a token with no user", v, ok)
		}
	})
	t.Run("no token", func(t *testing.T) {
		w, next, err := run(p, "")
		if statusOf(err) != 401 || next.called || w.Header().Get("WWW-Authenticate") != `Bearer realm="api"` {
			t.Fatalf("err %v, challenge %q", err, w.Header().Get("WWW-Authenticate"))
		}
	})
	t.Run("unknown token", func(t *testing.T) {
		w, next, err := run(p, "abc")
		if statusOf(err) != 401 || next.called || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("err %v, challenge %q", err, w.Header().Get("WWW-Authenticate"))
		}
	})
	t.Run("token in the query is not read", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/api?access_token="+userTok, nil)
		caddyhttp.NewTestReplacer(r)
		next := &recorder{}
		if err := p.ServeHTTP(httptest.NewRecorder(), r, next); statusOf(err) != 401 || next.called {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		w, next, err := run(p, "a b")
		if statusOf(err) != 400 || next.called || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_request"`) {
			t.Fatalf("err %v, challenge %q", err, w.Header().Get("WWW-Authenticate"))
		}
	})
	t.Run("insufficient scope", func(t *testing.T) {
		pw, _ := testProtect(t, db, "write")
		w, next, err := run(pw, userTok)
		if statusOf(err) != 403 || next.called || w.Header().Get("WWW-Authenticate") != `Bearer realm="api", error="insufficient_scope", scope="write"` {
			t.Fatalf("err %v, challenge %q", err, w.Header().Get("WWW-Authenticate"))
		}
	})
	t.Run("optional without token", func(t *testing.T) {
		po := *p
		po.Optional = true
		_, next, err := run(&po, "", "X-User-ID", "forged")
		if err != nil || !next.called || next.header.Get("X-User-ID") != "" {
			t.Fatalf("err %v, headers %v", err, next.header)
		}
		if _, _, err := run(&po, "abc"); statusOf(err) != 401 {
			t.Fatalf("optional let a bad token through: %v", err)
		}
	})
}

// TestProtectStripsEveryIdentityHeader: a block with its own header names
// still deletes the identity headers other blocks use.
func TestProtectStripsEveryIdentityHeader(t *testing.T) {
	db, err := filestore.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, svc := testProtect(t, db)
	p.app = &App{idHeaders: new(headerSet)}
	p.app.RegisterIdentityHeaders(DefaultUserHeader, DefaultClientHeader, DefaultScopeHeader, "X-Tenant-User")
	p.UserHeader = "X-Remote-User"
	p.prepareHeaders()
	_, next, err := run(p, issue(t, svc, "svc", "read"), "X-User-Id", "forged", "X_Tenant_User", "forged", "X-Remote-User", "forged")
	if err != nil || !next.called {
		t.Fatal(err)
	}
	if next.header.Get("X-Remote-User") != "svc-user" || next.header.Get("X-User-Id") != "" || len(next.header["X_Tenant_User"]) != 0 {
		t.Fatalf("headers %v", next.header)
	}
}

// failing is a store whose backend is down.
type failing struct{ store.Store }

func (failing) Lookup(context.Context, string) ([]byte, error) {
	return nil, errors.New("dial tcp: refused")
}

func TestProtectStoreDown(t *testing.T) {
	db, err := filestore.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, svc := testProtect(t, db)
	tok := issue(t, svc, "svc", "read")
	p, _ := testProtect(t, failing{db})
	_, next, err := run(p, tok)
	if statusOf(err) != http.StatusServiceUnavailable || next.called {
		t.Fatalf("err %v, passed %v; want 503 and nothing passes", err, next.called)
	}
}
