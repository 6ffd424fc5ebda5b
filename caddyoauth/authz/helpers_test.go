package authz

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-oauth2/oauth2/v4"
	"golang.org/x/crypto/bcrypt"

	"github.com/caddyoauth/gateway/caddyoauth/store"
	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
)

// The fixture of this package's tests: a Service on an in-memory store
// with the clients of testClients and one user, alice, and helpers that
// call its endpoints and check their answers.

const (
	appRedirect = "https://app.example.com/cb"
	confSecret  = "conf-secret"
	otherSecret = "other-secret"
	// oddID and oddSecret hold characters that RFC 6749 §2.3.1 requires a
	// client to form-urlencode before HTTP Basic.
	oddID     = "odd:client"
	oddSecret = "p@ss:w/rd+%&= x"
	alicePass = "alice-pw"
)

// testClients are the clients of the test service:
//
//	app     every grant; read write; app.example.com/cb
//	conf    every grant; read write, read by default; a.example.com/cb
//	other   every grant; read write; b.example.com/cb
//	svc     client_credentials, acting as svc-user
//	odd     client_credentials, with a secret Basic must encode
//	hashed  client_credentials, with a bcrypt secret
//	rs      a resource server that may introspect every token
//	pub     public; authorization_code and refresh_token; app.example.com/cb, com.example.app:/cb
func testClients() StaticClients {
	app := &Client{ID: "app", Grants: KnownGrants, Scopes: []string{"read", "write"}, RedirectURIs: []string{appRedirect}}
	conf := &Client{ID: "conf", Grants: KnownGrants, Scopes: []string{"read", "write"},
		DefaultScope: []string{"read"}, RedirectURIs: []string{"https://a.example.com/cb"}}
	other := &Client{ID: "other", Grants: KnownGrants, Scopes: []string{"read", "write"},
		RedirectURIs: []string{"https://b.example.com/cb"}}
	svc := &Client{ID: "svc", Grants: []string{GrantClientCredentials}, Scopes: []string{"read"}, UserID: "svc-user"}
	odd := &Client{ID: oddID, Grants: []string{GrantClientCredentials}, Scopes: []string{"read"}}
	rs := &Client{ID: "rs", Introspect: true}
	for _, c := range []*Client{app, conf, other, svc, odd, rs} {
		c.SetSecret(testSecrets[c.ID])
	}
	hashed := &Client{ID: "hashed", Grants: []string{GrantClientCredentials}, Scopes: []string{"read"}}
	h, _ := bcrypt.GenerateFromPassword([]byte(testSecrets["hashed"]), bcrypt.MinCost)
	hashed.SetSecretBcrypt(h)
	pub := &Client{ID: "pub", Public: true, Grants: []string{GrantAuthorizationCode, GrantRefreshToken},
		Scopes: []string{"read"}, RedirectURIs: []string{appRedirect, "com.example.app:/cb"}}
	return StaticClients{"app": app, "conf": conf, "other": other, "svc": svc, oddID: odd, "hashed": hashed, "rs": rs, "pub": pub}
}

// testSecrets are the secrets of the confidential test clients.
var testSecrets = map[string]string{
	"app": "app-secret", "conf": confSecret, "other": otherSecret, "svc": "svc-secret",
	oddID: oddSecret, "hashed": "hashed-secret", "rs": "rs-secret",
}

// testUsers holds alice, user ID user-1, password alicePass.
func testUsers(t testing.TB) StaticUsers {
	h, err := bcrypt.GenerateFromPassword([]byte(alicePass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return StaticUsers{"alice": {Username: "alice", PasswordHash: h, UserID: "user-1"}}
}

// testConfig is the test service's config: opaque tokens, rotation on
// with a 10s grace.
func testConfig() Config {
	return Config{AccessTokenTTL: time.Hour, RefreshTokenTTL: 24 * time.Hour, CodeTTL: time.Minute,
		RefreshRotation: true, RefreshGrace: 10 * time.Second, Issuer: fixedIssuer("https://auth.example.com")}
}

// memStore opens an in-memory store, closed when the test ends.
func memStore(t testing.TB) *filestore.DB {
	t.Helper()
	db, err := filestore.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newTestService builds the test service with change applied to
// testConfig (nil for none), and returns it with its clients.
func newTestService(t testing.TB, change func(*Config)) (*Service, StaticClients) {
	t.Helper()
	cfg := testConfig()
	if change != nil {
		change(&cfg)
	}
	clients := testClients()
	return New(cfg, memStore(t), clients, testUsers(t), nil), clients
}

// reply is an endpoint's answer; json holds its body when that is JSON.
type reply struct {
	status int
	header http.Header
	body   string
	json   map[string]any
}

func (r *reply) str(k string) string { s, _ := r.json[k].(string); return s }

// wantError checks an RFC 6749 §5.2 error answer.
func (r *reply) wantError(t testing.TB, status int, code string) {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Fatalf("got %d %s, want %d error=%s", r.status, r.body, status, code)
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Fatalf("Cache-Control = %q, want no-store", got)
	}
	if _, ok := r.json["access_token"]; ok {
		t.Fatalf("an error answer carries an access_token: %s", r.body)
	}
}

// wantToken checks an RFC 6749 §5.1 answer and returns it.
func (r *reply) wantToken(t testing.TB) *reply {
	t.Helper()
	if r.status != http.StatusOK || r.str("access_token") == "" {
		t.Fatalf("got %d %s, want a token", r.status, r.body)
	}
	if r.str("token_type") != "Bearer" {
		t.Fatalf("token_type = %q, want Bearer", r.str("token_type"))
	}
	if n, _ := r.json["expires_in"].(float64); n <= 0 {
		t.Fatalf("expires_in = %v, want > 0", r.json["expires_in"])
	}
	return r
}

// auth says how a test request authenticates its client.
type auth func(r *http.Request)

func basic(id, secret string) auth {
	return func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret)) }
}

// as authenticates a test client with HTTP Basic and its secret; a public
// client, or "", sends nothing.
func as(client string) auth {
	return func(r *http.Request) {
		if secret, ok := testSecrets[client]; ok {
			basic(client, secret)(r)
		}
	}
}

func header(name, value string) auth {
	return func(r *http.Request) { r.Header.Add(name, value) }
}

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

func newFormRequest(path, body string, auths ...auth) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "https://auth.example.com"+path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, a := range auths {
		a(r)
	}
	return r
}

// call sends a form to an endpoint's handler.
func call(t testing.TB, handler http.HandlerFunc, f url.Values, auths ...auth) *reply {
	t.Helper()
	w := httptest.NewRecorder()
	handler(w, newFormRequest("/oauth/x", f.Encode(), auths...))
	out := &reply{status: w.Code, header: w.Header(), body: w.Body.String()}
	_ = json.Unmarshal(w.Body.Bytes(), &out.json)
	return out
}

// post sends a form to the token endpoint; client_id and client_secret in
// the form are client_secret_post.
func post(t testing.TB, svc *Service, f url.Values, auths ...auth) *reply {
	t.Helper()
	return postRaw(t, svc, f.Encode(), auths...)
}

func postRaw(t testing.TB, svc *Service, body string, auths ...auth) *reply {
	t.Helper()
	return serve(t, svc, newFormRequest("/oauth/token", body, auths...))
}

// serve sends r to the token endpoint and checks that the answer is JSON
// that no cache keeps.
func serve(t testing.TB, svc *Service, r *http.Request) *reply {
	t.Helper()
	w := httptest.NewRecorder()
	svc.ServeToken(w, r)
	out := &reply{status: w.Code, header: w.Header(), body: w.Body.String()}
	if err := json.Unmarshal(w.Body.Bytes(), &out.json); err != nil {
		t.Fatalf("token endpoint answered %d with a non-JSON body %q", w.Code, w.Body.String())
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	return out
}

// aliceTokens gets alice's tokens for client app, with scope read write.
func aliceTokens(t testing.TB, s *Service) (access, refresh string) {
	t.Helper()
	r := post(t, s, form("grant_type", "password", "username", "alice", "password", alicePass, "scope", "read write"), as("app"))
	if r.status != 200 || r.str("access_token") == "" || r.str("refresh_token") == "" {
		t.Fatalf("password grant: %d %s", r.status, r.body)
	}
	return r.str("access_token"), r.str("refresh_token")
}

// refreshGrant presents refresh token rt, asking for scope unless it is empty.
func refreshGrant(t testing.TB, svc *Service, rt, scope string, a auth) *reply {
	t.Helper()
	f := form("grant_type", "refresh_token", "refresh_token", rt)
	if scope != "" {
		f.Set("scope", scope)
	}
	return post(t, svc, f, a)
}

// mintCode issues an authorization code as the authorize endpoint does.
func mintCode(t testing.TB, svc *Service, clientID, redirectURI, userID, scope string) string {
	t.Helper()
	ti, err := svc.manager.GenerateAuthToken(context.Background(), oauth2.Code, &oauth2.TokenGenerateRequest{
		ClientID: clientID, RedirectURI: redirectURI, UserID: userID, Scope: scope,
	})
	if err != nil {
		t.Fatalf("minting a code: %v", err)
	}
	return ti.GetCode()
}

func valid(s *Service, access string) bool {
	_, err := s.Validate(context.Background(), access)
	return err == nil
}

// downStore is a store whose backend cannot be reached.
type downStore struct{}

var errDown = errors.New("connection refused")

func (downStore) Put(context.Context, string, []byte, time.Duration) error    { return errDown }
func (downStore) Create(context.Context, string, []byte, time.Duration) error { return errDown }
func (downStore) Get(context.Context, string) ([]byte, error)                 { return nil, errDown }
func (downStore) Lookup(context.Context, string) ([]byte, error)              { return nil, errDown }
func (downStore) Take(context.Context, string) ([]byte, error)                { return nil, errDown }
func (downStore) Swap(context.Context, string, []byte, []byte, time.Duration) error {
	return errDown
}
func (downStore) Delete(context.Context, ...string) error                        { return errDown }
func (downStore) Incr(context.Context, string, time.Duration) (int64, error)     { return 0, errDown }
func (downStore) AddMember(context.Context, string, string, time.Duration) error { return errDown }
func (downStore) RemoveMember(context.Context, string, string) error             { return errDown }
func (downStore) Members(context.Context, string) ([]string, error)              { return nil, errDown }
func (downStore) DeleteSet(context.Context, string) error                        { return errDown }
func (downStore) Close() error                                                   { return nil }

var _ store.Store = downStore{}

// fixedIssuer is a Config.Issuer naming iss.
func fixedIssuer(iss string) func() (string, error) {
	return func() (string, error) { return iss, nil }
}
