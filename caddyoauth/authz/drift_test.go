package authz

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/caddyoauth/gateway/caddyoauth/limits"
	"github.com/caddyoauth/gateway/caddyoauth/store"
	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
)

// driftClients: app uses every grant on read and write; machine is a
// client_credentials client acting as user-m with a secret_hash.
func driftClients(t testing.TB) StaticClients {
	app := &Client{ID: "app", Grants: KnownGrants, Scopes: []string{"read", "write"}, RedirectURIs: []string{appRedirect}}
	app.SetSecret("app-secret")
	other := &Client{ID: "other", Grants: KnownGrants, Scopes: []string{"read", "write"},
		RedirectURIs: []string{appRedirect, "https://other.example.com/cb"}}
	other.SetSecret("other-secret")
	rs := &Client{ID: "rs", Introspect: true}
	rs.SetSecret("rs-secret")
	machine := &Client{ID: "machine", Grants: []string{GrantClientCredentials}, Scopes: []string{"read"}, UserID: "user-m"}
	h, err := bcrypt.GenerateFromPassword([]byte("machine-secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	machine.SetSecretBcrypt(h)
	return StaticClients{"app": app, "other": other, "rs": rs, "machine": machine}
}

// driftService builds a Service on an in-memory store (wrapped by wrap,
// when given) with the drift clients and stdUsers.
func driftService(t testing.TB, wrap func(store.Store) store.Store) (*Service, StaticClients) {
	t.Helper()
	db, err := filestore.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var st store.Store = db
	if wrap != nil {
		st = wrap(db)
	}
	cfg := Config{AccessTokenTTL: time.Hour, RefreshTokenTTL: 24 * time.Hour, CodeTTL: time.Minute,
		RefreshRotation: true, RefreshGrace: 10 * time.Second}
	clients := driftClients(t)
	return New(cfg, st, clients, testUsers(t), nil), clients
}

// driftPost sends form to handler with HTTP Basic as id:secret, from
// remoteAddr when it is not empty.
func driftPost(t testing.TB, handler http.HandlerFunc, id, secret, remoteAddr string, form url.Values) *reply {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "https://auth.example.com/oauth/x", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	if remoteAddr != "" {
		req.RemoteAddr = remoteAddr
	}
	rec := httptest.NewRecorder()
	handler(rec, req)
	out := &reply{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
	_ = json.Unmarshal(rec.Body.Bytes(), &out.json)
	return out
}

var ccForm = url.Values{"grant_type": {GrantClientCredentials}}

// countBcrypt counts the bcrypt comparisons of client secrets while the
// test runs.
func countBcrypt(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	orig := compareBcrypt
	compareBcrypt = func(h, p []byte) error { n.Add(1); return orig(h, p) }
	t.Cleanup(func() { compareBcrypt = orig })
	return &n
}

// TestDriftBcryptComparesBounded: wrong secrets for a client with a
// secret_hash, sent at once to the token, introspection and revocation
// endpoints, never run more bcrypt comparisons at a time than there are
// slots; the requests that find no slot in time are answered 503
// temporarily_unavailable with Retry-After, and the others invalid_client.
func TestDriftBcryptComparesBounded(t *testing.T) {
	s, _ := driftService(t, nil)
	s.secrets.wait = 20 * time.Millisecond
	slots := cap(s.secrets.slots)

	var inFlight, total atomic.Int64
	started := make(chan struct{}, 64)
	release := make(chan struct{})
	orig := compareBcrypt
	compareBcrypt = func(h, p []byte) error {
		inFlight.Add(1)
		total.Add(1)
		started <- struct{}{}
		<-release
		inFlight.Add(-1)
		return orig(h, p)
	}
	t.Cleanup(func() { compareBcrypt = orig })

	handlers := []http.HandlerFunc{s.ServeToken, s.ServeIntrospect, s.ServeRevoke}
	n := slots + 6
	results := make(chan *reply, n)
	for i := range n {
		go func() {
			results <- driftPost(t, handlers[i%len(handlers)], "machine", "wrong-secret", "", url.Values{"grant_type": {GrantClientCredentials}, "token": {"x"}})
		}()
	}
	for range slots {
		<-started
	}
	// Every other request must give up without a comparison while the
	// slots stay taken.
	var busy []*reply
	for len(busy) < n-slots {
		select {
		case <-started:
			close(release)
			t.Fatalf("a bcrypt comparison started while %d were running (%d slots)", inFlight.Load()-1, slots)
		case r := <-results:
			busy = append(busy, r)
		}
	}
	close(release)
	for range slots {
		r := <-results
		r.wantError(t, http.StatusUnauthorized, "invalid_client")
	}
	for _, r := range busy {
		r.wantError(t, http.StatusServiceUnavailable, "temporarily_unavailable")
		if r.header.Get("Retry-After") == "" {
			t.Fatal("a 503 without Retry-After")
		}
	}
	if got := total.Load(); got != int64(slots) {
		t.Fatalf("%d bcrypt comparisons ran, want %d", got, slots)
	}
}

// TestDriftBcryptSecretVerifiedOnce: a client with a secret_hash pays one
// bcrypt comparison for its first authentication, the token endpoint's
// second check of the secret included, and none for the next ones at any
// endpoint; a wrong secret is compared every time and never remembered.
func TestDriftBcryptSecretVerifiedOnce(t *testing.T) {
	n := countBcrypt(t)
	s, _ := driftService(t, nil)
	tok := driftPost(t, s.ServeToken, "machine", "machine-secret", "", ccForm)
	if tok.status != 200 {
		t.Fatalf("client_credentials: %d %s", tok.status, tok.body)
	}
	if got := n.Load(); got != 1 {
		t.Fatalf("the first authentication ran %d bcrypt comparisons, want 1", got)
	}
	for range 3 {
		if r := driftPost(t, s.ServeToken, "machine", "machine-secret", "", ccForm); r.status != 200 {
			t.Fatalf("client_credentials: %d %s", r.status, r.body)
		}
	}
	if r := driftPost(t, s.ServeIntrospect, "machine", "machine-secret", "", url.Values{"token": {tok.str("access_token")}}); r.status != 200 || r.json["active"] != true {
		t.Fatalf("introspection: %d %s", r.status, r.body)
	}
	if r := driftPost(t, s.ServeRevoke, "machine", "machine-secret", "", url.Values{"token": {"unknown"}}); r.status != 200 {
		t.Fatalf("revocation: %d %s", r.status, r.body)
	}
	if got := n.Load(); got != 1 {
		t.Fatalf("%d bcrypt comparisons after the first authentication's, want none", got-1)
	}
	for i := range 2 {
		driftPost(t, s.ServeToken, "machine", "machine-secretX", "", ccForm).wantError(t, 401, "invalid_client")
		if got := n.Load(); got != int64(2+i) {
			t.Fatalf("a wrong secret ran %d comparisons in all, want %d", got, 2+i)
		}
	}
	// Another config (a new Service) remembers nothing.
	s2, _ := driftService(t, nil)
	if r := driftPost(t, s2.ServeToken, "machine", "machine-secret", "", ccForm); r.status != 200 || n.Load() != 4 {
		t.Fatalf("first authentication under a new config: %d, %d comparisons in all, want 4", r.status, n.Load())
	}
}

// TestDriftBcryptLockedClientNotChecked: after lock_after failures of a
// client at one address, its secret_hash is not checked from there: even
// the right secret gets invalid_client with Retry-After, at every endpoint,
// without a bcrypt comparison. Another address is not locked, and a secret
// verified before the lock still works.
func TestDriftBcryptLockedClientNotChecked(t *testing.T) {
	n := countBcrypt(t)
	s, clients := driftService(t, nil)
	counters, err := filestore.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { counters.Close() })
	lo := limits.NewClientLockout(counters, limits.LockoutPolicy{SlowAfter: 3, LockAfter: 3})
	ip := func(r *http.Request) string { host, _, _ := strings.Cut(r.RemoteAddr, ":"); return host }
	s.SetHooks(Hooks{
		ClientLocked: func(r *http.Request, id string) time.Duration {
			wait, err := lo.Check(r.Context(), id, ip(r))
			if err != nil {
				t.Error(err)
			}
			return wait
		},
		ClientAuthResult: func(r *http.Request, id string, ok bool) {
			var err error
			if ok {
				err = lo.Succeeded(r.Context(), id, ip(r))
			} else {
				_, err = lo.Failed(r.Context(), id, ip(r))
			}
			if err != nil {
				t.Error(err)
			}
		},
	})
	// A second client with a secret_hash, verified before the lock.
	early := &Client{ID: "early", Grants: []string{GrantClientCredentials}, Scopes: []string{"read"}}
	h, _ := bcrypt.GenerateFromPassword([]byte("early-secret"), bcrypt.MinCost)
	early.SetSecretBcrypt(h)
	clients["early"] = early
	const attacker, elsewhere = "192.0.2.1:1234", "198.51.100.7:4321"
	if r := driftPost(t, s.ServeToken, "early", "early-secret", attacker, ccForm); r.status != 200 {
		t.Fatalf("early: %d %s", r.status, r.body)
	}

	for _, id := range []string{"machine", "early"} {
		for range 3 {
			driftPost(t, s.ServeToken, id, "wrong", attacker, ccForm).wantError(t, 401, "invalid_client")
		}
	}
	before := n.Load()
	for _, h := range []http.HandlerFunc{s.ServeToken, s.ServeIntrospect, s.ServeRevoke} {
		r := driftPost(t, h, "machine", "machine-secret", attacker, url.Values{"grant_type": {GrantClientCredentials}, "token": {"x"}})
		r.wantError(t, 401, "invalid_client")
		if r.header.Get("Retry-After") == "" || r.header.Get("WWW-Authenticate") == "" {
			t.Fatalf("locked answer headers: %v", r.header)
		}
	}
	if got := n.Load() - before; got != 0 {
		t.Fatalf("a locked client's secret was compared %d times", got)
	}
	if r := driftPost(t, s.ServeToken, "early", "early-secret", attacker, ccForm); r.status != 200 {
		t.Fatalf("a secret verified before the lock: %d %s", r.status, r.body)
	}
	if r := driftPost(t, s.ServeToken, "machine", "machine-secret", elsewhere, ccForm); r.status != 200 {
		t.Fatalf("the locked client from another address: %d %s", r.status, r.body)
	}
	if got := n.Load() - before; got != 1 {
		t.Fatalf("%d comparisons after the lock, want 1 (from the other address)", got)
	}
}

// TestDriftTokensFollowClientScopes: narrowing a client's scopes narrows
// what its tokens carry at once, in Validate (oauth_protect's headers),
// introspection, refreshes and the exchange of a code issued before; taking
// a grant type away ends the tokens it gave.
func TestDriftTokensFollowClientScopes(t *testing.T) {
	s, clients := driftService(t, nil)
	ctx := context.Background()
	app := clients["app"]
	pw := driftPost(t, s.ServeToken, "app", "app-secret", "", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-pw"}, "scope": {"read write"}})
	if pw.status != 200 || pw.str("scope") != "read write" {
		t.Fatalf("password grant: %d %s", pw.status, pw.body)
	}
	access, refresh := pw.str("access_token"), pw.str("refresh_token")
	code := mintCode(t, s, "app", appRedirect, "user-1", "read write")

	app.Scopes = []string{"read"}
	id, err := s.Validate(ctx, access)
	if err != nil || id.Scope != "read" {
		t.Fatalf("Validate after narrowing: %+v, %v; want scope read", id, err)
	}
	for _, tk := range []string{access, refresh} {
		in, err := s.Introspect(ctx, clients["rs"], tk, "")
		if err != nil || !in.Active || in.Scope != "read" {
			t.Fatalf("introspection after narrowing: %+v, %v", in, err)
		}
	}
	driftPost(t, s.ServeToken, "app", "app-secret", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "scope": {"write"}}).wantError(t, 400, "invalid_scope")
	r := driftPost(t, s.ServeToken, "app", "app-secret", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	if r.status != 200 || r.str("scope") != "read" {
		t.Fatalf("refresh after narrowing: %d %s", r.status, r.body)
	}
	if id, err := s.Validate(ctx, r.str("access_token")); err != nil || id.Scope != "read" {
		t.Fatalf("refreshed token: %+v, %v", id, err)
	}
	access, refresh = r.str("access_token"), r.str("refresh_token")
	ex := driftPost(t, s.ServeToken, "app", "app-secret", "", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}})
	if ex.status != 200 || ex.str("scope") != "read" {
		t.Fatalf("exchange of a code issued before the narrowing: %d %s", ex.status, ex.body)
	}
	codeAccess := ex.str("access_token")

	// The scope given back comes back at the next refresh.
	app.Scopes = []string{"read", "write"}
	r = driftPost(t, s.ServeToken, "app", "app-secret", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	if r.status != 200 || r.str("scope") != "read write" {
		t.Fatalf("refresh with write given back: %d %s", r.status, r.body)
	}
	access, refresh = r.str("access_token"), r.str("refresh_token")

	// password taken away: the password grant's tokens end, the code's stay.
	app.Grants = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials}
	if _, err := s.Validate(ctx, access); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("a password grant's token without the grant: %v", err)
	}
	if in, _ := s.Introspect(ctx, clients["rs"], refresh, ""); in.Active {
		t.Fatal("a password grant's refresh token introspects active without the grant")
	}
	driftPost(t, s.ServeToken, "app", "app-secret", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}).wantError(t, 400, "invalid_grant")
	if !valid(s, codeAccess) {
		t.Fatal("a code grant's token stopped working with the password grant taken away")
	}
	// refresh_token taken away: no refresh, and its tokens introspect inactive.
	app.Grants = []string{GrantAuthorizationCode}
	if in, _ := s.Introspect(ctx, clients["rs"], ex.str("refresh_token"), ""); in.Active {
		t.Fatal("a refresh token introspects active for a client without the refresh_token grant")
	}
	driftPost(t, s.ServeToken, "app", "app-secret", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ex.str("refresh_token")}}).wantError(t, 400, "unauthorized_client")

	// A client_credentials token acts as the client's user as it is now.
	app.Grants = KnownGrants
	cc := driftPost(t, s.ServeToken, "app", "app-secret", "", ccForm)
	if cc.status != 200 {
		t.Fatalf("client_credentials: %d %s", cc.status, cc.body)
	}
	app.UserID = "someone-else"
	if _, err := s.Validate(ctx, cc.str("access_token")); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("a client_credentials token after the client's user changed: %v", err)
	}
}

// TestDriftAllowedScopeNoAllocation: the common case of Validate, a token
// whose scopes the client still has, builds no new scope string.
func TestDriftAllowedScopeNoAllocation(t *testing.T) {
	c := &Client{Scopes: []string{"read", "write", "admin"}}
	scope := "read write"
	if a := testing.AllocsPerRun(100, func() { scope = c.allowedScope(scope) }); a != 0 {
		t.Fatalf("allowedScope allocates %v times for an unchanged scope", a)
	}
	for in, want := range map[string]string{"": "", "read": "read", "read other write": "read write", "other": "", "admin x": "admin"} {
		if got := c.allowedScope(in); got != want {
			t.Fatalf("allowedScope(%q) = %q, want %q", in, got, want)
		}
	}
}

// pausingStore holds the answer to the at-th listing of one set until
// resume is closed, as a slow revocation would.
type pausingStore struct {
	store.Store
	set    string
	at     int32
	calls  atomic.Int32
	listed chan struct{}
	resume chan struct{}
}

func (p *pausingStore) Members(ctx context.Context, set string) ([]string, error) {
	m, err := p.Store.Members(ctx, set)
	if set == p.set && p.calls.Add(1) == p.at {
		close(p.listed)
		<-p.resume
	}
	return m, err
}

// TestDriftUserRevocationCoversConcurrentGrant: tokens issued to a user
// after a revocation of that user listed their tokens for the last time
// (a user with a grant family is listed twice), before it ended, are
// withdrawn: none outlives a revocation that returned. A grant after the
// revocation ended works.
func TestDriftUserRevocationCoversConcurrentGrant(t *testing.T) {
	ps := &pausingStore{set: userSet("user-1"), at: 2, listed: make(chan struct{}), resume: make(chan struct{})}
	s, _ := driftService(t, func(st store.Store) store.Store { ps.Store = st; return ps })
	ctx := context.Background()
	oldAccess, _ := aliceTokens(t, s)
	done := make(chan error, 1)
	go func() { done <- s.RevokeUser(ctx, "user-1") }()
	<-ps.listed
	// Issued while the revocation runs, after it listed user-1's tokens.
	lateAccess, lateRefresh := aliceTokens(t, s)
	close(ps.resume)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if valid(s, oldAccess) {
		t.Fatal("a token issued before the revocation survived it")
	}
	if valid(s, lateAccess) {
		t.Fatal("an access token issued while the revocation ran survived it")
	}
	refreshGrant(t, s, lateRefresh, "", as("app")).wantError(t, 400, "invalid_grant")
	// After the revocation, the user signs in again and keeps the tokens.
	newAccess, newRefresh := aliceTokens(t, s)
	if !valid(s, newAccess) {
		t.Fatal("a token issued after the revocation ended was withdrawn")
	}
	if r := refreshGrant(t, s, newRefresh, "", as("app")); r.status != 200 || !valid(s, r.str("access_token")) {
		t.Fatalf("refresh after the revocation: %d %s", r.status, r.body)
	}
}

// TestDriftRevokedUserSuspendsActingClient: a revocation of the user a
// client acts as stops that client's client_credentials grant until it has
// a new secret or another user; other clients go on.
func TestDriftRevokedUserSuspendsActingClient(t *testing.T) {
	s, clients := driftService(t, nil)
	ctx := context.Background()
	machine := clients["machine"]
	app := clients["app"]
	app.UserID = "user-a"
	for _, c := range []struct{ id, secret string }{{"machine", "machine-secret"}, {"app", "app-secret"}} {
		if r := driftPost(t, s.ServeToken, c.id, c.secret, "", ccForm); r.status != 200 {
			t.Fatalf("%s: %d %s", c.id, r.status, r.body)
		}
	}
	if err := s.RevokeUser(ctx, "user-m"); err != nil {
		t.Fatal(err)
	}
	driftPost(t, s.ServeToken, "machine", "machine-secret", "", ccForm).wantError(t, 400, "unauthorized_client")
	if r := driftPost(t, s.ServeToken, "app", "app-secret", "", ccForm); r.status != 200 {
		t.Fatalf("a client acting as another user: %d %s", r.status, r.body)
	}
	// A new secret lifts the suspension.
	machine.SetSecret("machine-secret-2")
	if r := driftPost(t, s.ServeToken, "machine", "machine-secret-2", "", ccForm); r.status != 200 {
		t.Fatalf("after a new secret: %d %s", r.status, r.body)
	}
	// So does another user; the same user with the same secret does not.
	if err := s.RevokeUser(ctx, "user-a"); err != nil {
		t.Fatal(err)
	}
	driftPost(t, s.ServeToken, "app", "app-secret", "", ccForm).wantError(t, 400, "unauthorized_client")
	app.UserID = "user-b"
	if r := driftPost(t, s.ServeToken, "app", "app-secret", "", ccForm); r.status != 200 {
		t.Fatalf("after another user: %d %s", r.status, r.body)
	}
	app.UserID = "user-a"
	driftPost(t, s.ServeToken, "app", "app-secret", "", ccForm).wantError(t, 400, "unauthorized_client")
}

// TestDriftLoginUpstreamUserID: a login upstream's answer makes a sign-in
// only with a user ID the gateway can assert: present once, not blank,
// padded, with a comma, a control or an invisible character, or too long.
func TestDriftLoginUpstreamUserID(t *testing.T) {
	var answer atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(answer.Load().(string)))
	}))
	t.Cleanup(srv.Close)
	u := &UpstreamLogin{URL: srv.URL}
	for body, want := range map[string]string{
		`{"id":"u-1"}`:                    "u-1",
		`{"id":42}`:                       "42",
		`{"id":"Zoë Ø"}`:                  "Zoë Ø",
		`{"other":{"id":"x"},"id":"u-2"}`: "u-2",
		`{"id":" "}`:                      "",
		`{"id":""}`:                       "",
		`{"id":" u-1"}`:                   "",
		`{"id":"u-1 "}`:                   "",
		`{"id":"a, b"}`:                   "",
		`{"id":"a\u0000b"}`:               "",
		`{"id":"a\u202eb"}`:               "",
		`{"id":"a\u00a0"}`:                "",
		`{"id":"u-1","id":"u-2"}`:         "",
		`{"id":"u-1","id":"u-1"}`:         "",
		`{"id":null}`:                     "",
		`{"id":["u-1"]}`:                  "",
		`["u-1"]`:                         "",
		`{"id":"u-1"} x`:                  "",
		`{"id":"` + strings.Repeat("a", 257) + `"}`: "",
	} {
		answer.Store(body)
		got, err := u.Authenticate(context.Background(), "carol", "pw")
		if want != "" {
			if err != nil || got != want {
				t.Fatalf("answer %s: %q, %v; want %q", body, got, err, want)
			}
			continue
		}
		if !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("answer %s: %q, %v; want a failed sign-in", body, got, err)
		}
	}
}

// TestDriftCheckUserID: the rule for user IDs wherever they enter.
func TestDriftCheckUserID(t *testing.T) {
	for _, ok := range []string{"u", "user-42", "Ann Smith", "zoë@example.com", "a;b", strings.Repeat("x", 256)} {
		if err := CheckUserID(ok); err != nil {
			t.Errorf("CheckUserID(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", " ", " a", "a ", "a,b", "a\tb", "a\nb", "a\x7fb", "\xff", "a\u200bb", "a\u2028b", strings.Repeat("x", 257)} {
		if CheckUserID(bad) == nil {
			t.Errorf("CheckUserID(%q) = nil, want an error", bad)
		}
	}
}

// TestDriftCodeExchangeAnswersAlike: another client presenting a live code
// gets the answer an unknown code gets, whatever redirect_uri it sends, so
// the answer never tells that the code exists; the code stays redeemable
// by its client, and a replay still revokes what it gave.
func TestDriftCodeExchangeAnswersAlike(t *testing.T) {
	s, _ := driftService(t, nil)
	live := mintCode(t, s, "app", appRedirect, "user-1", "read")
	answer := func(code, uri string) string {
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}}
		if uri != "" {
			form.Set("redirect_uri", uri)
		}
		r := driftPost(t, s.ServeToken, "other", "other-secret", "", form)
		return r.body
	}
	want := answer(randomToken(), appRedirect)
	if !strings.Contains(want, "invalid_grant") {
		t.Fatalf("unknown code: %s", want)
	}
	for _, code := range []string{live, randomToken()} {
		for _, uri := range []string{appRedirect, "https://other.example.com/cb", "https://never.example.com/cb", ""} {
			if got := answer(code, uri); got != want {
				t.Fatalf("code (live: %v) with redirect_uri %q: %s; an unknown code gets %s", code == live, uri, got, want)
			}
		}
	}
	r := driftPost(t, s.ServeToken, "app", "app-secret", "", url.Values{"grant_type": {"authorization_code"}, "code": {live}, "redirect_uri": {appRedirect}})
	if r.status != 200 {
		t.Fatalf("the code's own client: %d %s", r.status, r.body)
	}
	if got := answer(live, appRedirect); got != want {
		t.Fatalf("a used code: %s, want %s", got, want)
	}
	if valid(s, r.str("access_token")) {
		t.Fatal("a replayed code's tokens survived")
	}
}

// TestDriftRecordKeepsGrant: a record's grant type survives encoding, and
// one the format does not know is refused.
func TestDriftRecordKeepsGrant(t *testing.T) {
	for _, g := range []string{GrantAuthorizationCode, GrantPassword, GrantClientCredentials, ""} {
		r := &record{ClientID: "app", Scope: "read", IssuedAt: 1, Grant: kindOf(g)}
		if r.Grant.String() != g {
			t.Fatalf("grant %q is kept as %q", g, r.Grant)
		}
		got, err := decodeRecord(r.encode())
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("grant %q: decoded %+v, %v", g, got, err)
		}
	}
	b := (&record{ClientID: "app", Grant: grantPassword}).encode()
	b[len(b)-1] = 99
	if _, err := decodeRecord(b); err == nil {
		t.Fatal("a record naming an unknown grant decoded")
	}
}
