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

// Secrets of the test clients. "odd" holds characters that RFC 6749
// §2.3.1 requires a client to form-urlencode before HTTP Basic.
const (
	confSecret  = "conf-secret"
	otherSecret = "other-secret"
	oddID       = "odd:client"
	oddSecret   = "p@ss:w/rd+%&= x"
	alicePass   = "alice-password"
)

func testClients() StaticClients {
	conf := &Client{ID: "conf", Grants: KnownGrants, Scopes: []string{"read", "write"},
		DefaultScope: []string{"read"}, RedirectURIs: []string{"https://a.example.com/cb"}}
	conf.SetSecret(confSecret)
	other := &Client{ID: "other", Grants: KnownGrants, Scopes: []string{"read", "write"},
		RedirectURIs: []string{"https://b.example.com/cb"}}
	other.SetSecret(otherSecret)
	svc := &Client{ID: "svc", Grants: []string{GrantClientCredentials}, Scopes: []string{"read"}, UserID: "svc-user"}
	svc.SetSecret("svc-secret")
	odd := &Client{ID: oddID, Grants: []string{GrantClientCredentials}, Scopes: []string{"read"}}
	odd.SetSecret(oddSecret)
	pub := &Client{ID: "pub", Public: true, Grants: []string{GrantAuthorizationCode, GrantRefreshToken},
		Scopes: []string{"read"}, RedirectURIs: []string{"https://app.example.com/cb", "com.example.app:/cb"}}
	hashed := &Client{ID: "hashed", Grants: []string{GrantClientCredentials}, Scopes: []string{"read"}}
	h, _ := bcrypt.GenerateFromPassword([]byte("hashed-secret"), bcrypt.MinCost)
	hashed.SetSecretBcrypt(h)
	return StaticClients{"conf": conf, "other": other, "svc": svc, oddID: odd, "pub": pub, "hashed": hashed}
}

func testUsers(t testing.TB) StaticUsers {
	h, err := bcrypt.GenerateFromPassword([]byte(alicePass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return StaticUsers{"alice": {Username: "alice", PasswordHash: h, UserID: "user-42"}}
}

var testConfig = Config{
	AccessTokenTTL:  time.Hour,
	RefreshTokenTTL: 24 * time.Hour,
	CodeTTL:         time.Minute,
	RefreshRotation: true,
	RefreshGrace:    10 * time.Second,
	Issuer:          fixedIssuer("https://auth.example.com"),
}

// newTestService builds a Service on an in-memory buntdb store.
func newTestService(t testing.TB, cfg Config) *Service {
	t.Helper()
	db, err := filestore.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return New(cfg, db, testClients(), testUsers(t), nil)
}

// reply is a token endpoint answer.
type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r *reply) str(k string) string { s, _ := r.body[k].(string); return s }

// auth says how a test request authenticates its client.
type auth func(r *http.Request)

func basic(id, secret string) auth {
	return func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret)) }
}

func header(name, value string) auth {
	return func(r *http.Request) { r.Header.Add(name, value) }
}

// post sends a form to the token endpoint; an "id:secret" pair in form
// fields is client_secret_post.
func post(t testing.TB, svc *Service, form url.Values, auths ...auth) *reply {
	t.Helper()
	return postRaw(t, svc, form.Encode(), auths...)
}

func postRaw(t testing.TB, svc *Service, body string, auths ...auth) *reply {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, a := range auths {
		a(r)
	}
	return serve(t, svc, r)
}

func serve(t testing.TB, svc *Service, r *http.Request) *reply {
	t.Helper()
	w := httptest.NewRecorder()
	svc.ServeToken(w, r)
	out := &reply{status: w.Code, header: w.Header(), raw: w.Body.String()}
	if err := json.Unmarshal(w.Body.Bytes(), &out.body); err != nil {
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

// wantError checks an RFC 6749 §5.2 error answer.
func (r *reply) wantError(t testing.TB, status int, code string) {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Fatalf("got %d %s, want %d error=%s", r.status, r.raw, status, code)
	}
	if _, ok := r.body["access_token"]; ok {
		t.Fatalf("an error answer carries an access_token: %s", r.raw)
	}
}

// wantToken checks an RFC 6749 §5.1 answer and returns it.
func (r *reply) wantToken(t testing.TB) *reply {
	t.Helper()
	if r.status != http.StatusOK || r.str("access_token") == "" {
		t.Fatalf("got %d %s, want a token", r.status, r.raw)
	}
	if r.str("token_type") != "Bearer" {
		t.Fatalf("token_type = %q, want Bearer", r.str("token_type"))
	}
	if n, _ := r.body["expires_in"].(float64); n <= 0 {
		t.Fatalf("expires_in = %v, want > 0", r.body["expires_in"])
	}
	return r
}

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// mintCode issues an authorization code as the authorize endpoint does.
func mintCode(t testing.TB, svc *Service, clientID, redirectURI, userID, scope string) string {
	t.Helper()
	ti, err := svc.Manager().GenerateAuthToken(context.Background(), oauth2.Code, &oauth2.TokenGenerateRequest{
		ClientID: clientID, RedirectURI: redirectURI, UserID: userID, Scope: scope,
	})
	if err != nil {
		t.Fatalf("minting a code: %v", err)
	}
	return ti.GetCode()
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
