package authz

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/bcrypt"

	"github.com/caddyoauth/gateway/caddyoauth/oidc"
	"github.com/caddyoauth/gateway/caddyoauth/store"
	"github.com/caddyoauth/gateway/caddyoauth/store/redisstore"
)

// The OpenID Connect fixture: a service with OpenID on, served over
// httptest with its screens, token and UserInfo endpoints, a relying
// party rp (openid profile email) and alice with claims.

const (
	rpRedirect = "https://rp.example/cb"
	rpSecret   = "rp-secret"
	opIssuer   = "https://auth.example.com"
)

var aliceClaims = oidc.Claims{"name": "Alice Liddell", "email": "alice@example.com", "email_verified": true, "phone_number": "+1 555 0100",
	"address": map[string]any{"locality": "Oxford", "country": "UK"}, "updated_at": int64(1767225600)}

type opFixture struct {
	t   *testing.T
	svc *Service
	a   *Authorizer
	srv *httptest.Server
	rp  *Client
}

func newOP(t *testing.T, change func(*Config, *Client)) *opFixture {
	t.Helper()
	return newOPOn(t, memStore(t), change)
}

func newOPOn(t *testing.T, st store.Store, change func(*Config, *Client)) *opFixture {
	t.Helper()
	rp := &Client{ID: "rp", Name: "Relying Party", Grants: []string{GrantAuthorizationCode, GrantRefreshToken},
		Scopes: []string{"openid", "profile", "email", "phone", "address", "read"}, RedirectURIs: []string{rpRedirect}}
	rp.SetSecret(rpSecret)
	cfg := testConfig()
	cfg.OpenID = true
	cfg.Issuer = fixedIssuer(opIssuer)
	if change != nil {
		change(&cfg, rp)
	}
	h, _ := bcrypt.GenerateFromPassword([]byte(alicePass), bcrypt.MinCost)
	users := StaticUsers{
		"alice": {Username: "alice", PasswordHash: h, UserID: "user-1", Claims: aliceClaims},
		"bob":   {Username: "bob", PasswordHash: h, UserID: "user-2"},
	}
	if cfg.UserClaims == nil {
		byID := users.ClaimsByUserID()
		cfg.UserClaims = func(id string) oidc.Claims { return byID[id] }
	}
	svc := New(cfg, st, StaticClients{"rp": rp}, users, nil)
	a := svc.NewAuthorizer(AuthorizeConfig{})
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth/authorize", a.ServeAuthorize)
	mux.HandleFunc("/oauth/login", a.ServeLogin)
	mux.HandleFunc("/oauth/consent", a.ServeConsent)
	mux.HandleFunc("/oauth/logout", a.ServeLogout)
	mux.HandleFunc("/oauth/token", svc.ServeToken)
	mux.HandleFunc("/oauth/userinfo", svc.ServeUserInfo)
	mux.HandleFunc("/oauth/end_session", a.ServeEndSession)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &opFixture{t: t, svc: svc, a: a, srv: srv, rp: rp}
}

// rpBrowser is a person's browser: a cookie jar, no redirect followed.
type rpBrowser struct {
	op *opFixture
	c  *http.Client
}

func (op *opFixture) browser() *rpBrowser {
	jar, _ := cookiejar.New(nil)
	return &rpBrowser{op: op, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (b *rpBrowser) do(req *http.Request) *page {
	b.op.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.op.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return &page{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

func (b *rpBrowser) get(path string) *page {
	req, _ := http.NewRequest(http.MethodGet, b.op.srv.URL+path, nil)
	return b.do(req)
}

func (b *rpBrowser) post(path string, f url.Values) *page {
	req, _ := http.NewRequest(http.MethodPost, b.op.srv.URL+path, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var fieldRE = regexp.MustCompile(`name="([a-z_]+)" value="([^"]*)"`)

func (p *page) field(t *testing.T, name string) string {
	t.Helper()
	for _, m := range fieldRE.FindAllStringSubmatch(p.body, -1) {
		if m[1] == name {
			return html.UnescapeString(m[2])
		}
	}
	t.Fatalf("no field %s in %d %s", name, p.status, p.body)
	return ""
}

func (p *page) location(t *testing.T) string {
	t.Helper()
	if p.status != http.StatusFound && p.status != http.StatusSeeOther {
		t.Fatalf("expected a redirect, got %d %s", p.status, p.body)
	}
	return p.header.Get("Location")
}

// authParams are an openid request of rp.
func authParams(kv ...string) url.Values {
	q := url.Values{"response_type": {"code"}, "client_id": {"rp"}, "redirect_uri": {rpRedirect},
		"scope": {"openid profile email"}, "state": {"st"}, "nonce": {"n-0S6_WzA2Mj"}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	return q
}

// start sends an authorization request and returns where it leads.
func (b *rpBrowser) start(q url.Values) *page { return b.get("/oauth/authorize?" + q.Encode()) }

// signIn signs in on the sign-in page a redirect leads to, and returns
// the answer to the sign-in.
func (b *rpBrowser) signIn(r *page, username string) *page {
	t := b.op.t
	t.Helper()
	loc := r.location(t)
	if !strings.HasPrefix(loc, "/oauth/login") {
		t.Fatalf("expected the sign-in page, got a redirect to %s", loc)
	}
	form := b.get(loc)
	return b.post("/oauth/login", url.Values{"username": {username}, "password": {alicePass},
		"csrf_token": {form.field(t, "csrf_token")}, "request_id": {form.field(t, "request_id")}})
}

// consent approves on the consent page a redirect leads to, or passes a
// remembered consent, and returns the answer that goes to the client.
func (b *rpBrowser) consent(r *page) *page {
	t := b.op.t
	t.Helper()
	loc := r.location(t)
	if !strings.HasPrefix(loc, "/oauth/consent") {
		t.Fatalf("expected the consent step, got a redirect to %s", loc)
	}
	pg := b.get(loc)
	if pg.status != http.StatusOK {
		return pg
	}
	return b.post("/oauth/consent", url.Values{"consent": {"allow"},
		"csrf_token": {pg.field(t, "csrf_token")}, "request_id": {pg.field(t, "request_id")}})
}

// login runs an authorization request through sign-in as username and
// consent, and returns the client's redirect.
func (b *rpBrowser) login(q url.Values, username string) *url.URL {
	b.op.t.Helper()
	return clientURL(b.op.t, b.consent(b.signIn(b.start(q), username)))
}

func clientURL(t *testing.T, p *page) *url.URL {
	t.Helper()
	u, err := url.Parse(p.location(t))
	if err != nil || !strings.HasPrefix(u.String(), rpRedirect) {
		t.Fatalf("expected a redirect to the client, got %q", p.header.Get("Location"))
	}
	return u
}

// redeem exchanges the code of a client redirect.
func (op *opFixture) redeem(u *url.URL) *reply {
	op.t.Helper()
	code := u.Query().Get("code")
	if code == "" {
		op.t.Fatalf("no code in %s", u)
	}
	return post(op.t, op.svc, form("grant_type", "authorization_code", "code", code, "redirect_uri", rpRedirect), basic("rp", rpSecret))
}

// verify checks an ID token as a relying party does and returns its claims.
func (op *opFixture) verify(raw string) map[string]any {
	op.t.Helper()
	keys, err := op.svc.JWKS(context.Background())
	if err != nil {
		op.t.Fatal(err)
	}
	var pubs []crypto.PublicKey
	for _, k := range keys {
		b, _ := json.Marshal(k)
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(b); err != nil {
			op.t.Fatalf("JWKS key: %v", err)
		}
		pubs = append(pubs, jwk.Key)
	}
	v := gooidc.NewVerifier(opIssuer, &gooidc.StaticKeySet{PublicKeys: pubs}, &gooidc.Config{ClientID: "rp", SupportedSigningAlgs: oidc.SigningAlgs})
	tok, err := v.Verify(context.Background(), raw)
	if err != nil {
		op.t.Fatalf("the ID token does not verify: %v", err)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		op.t.Fatal(err)
	}
	return claims
}

func jwsHeader(t *testing.T, token string) map[string]any {
	t.Helper()
	seg, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	_ = json.Unmarshal(b, &h)
	return h
}

// TestIDTokenClaims: the openid code flow returns an RS256 ID token with
// iss, sub (the user ID), aud (the client), exp, iat, auth_time, nonce,
// at_hash, amr and sid, and no azp for its single audience; the scope
// claims go to UserInfo, not into the token.
func TestIDTokenClaims(t *testing.T) {
	op := newOP(t, nil)
	b := op.browser()
	before := time.Now().Add(-time.Second).Unix()
	tok := op.redeem(b.login(authParams(), "alice")).wantToken(t)
	raw := tok.str("id_token")
	if raw == "" {
		t.Fatalf("no id_token in %s", tok.body)
	}
	if h := jwsHeader(t, raw); h["alg"] != "RS256" || h["kid"] == "" {
		t.Fatalf("header %v, want alg RS256 with a kid", h)
	}
	c := op.verify(raw)
	if c["iss"] != opIssuer || c["sub"] != "user-1" || c["aud"] != "rp" || c["nonce"] != "n-0S6_WzA2Mj" {
		t.Fatalf("claims %v", c)
	}
	iat, exp, at := c["iat"].(float64), c["exp"].(float64), c["auth_time"].(float64)
	if int64(iat) < before || exp-iat != 3600 || int64(at) < before || at > iat {
		t.Fatalf("iat %v exp %v auth_time %v", iat, exp, at)
	}
	if c["at_hash"] != oidc.AccessTokenHash(tok.str("access_token")) {
		t.Fatalf("at_hash %v does not match the access token", c["at_hash"])
	}
	if amr, _ := c["amr"].([]any); len(amr) != 1 || amr[0] != "pwd" {
		t.Fatalf("amr %v, want [pwd]", c["amr"])
	}
	if sid, _ := c["sid"].(string); sid == "" {
		t.Fatal("no sid")
	}
	for _, absent := range []string{"azp", "acr", "name", "email"} {
		if _, ok := c[absent]; ok {
			t.Fatalf("claim %s present: %v", absent, c)
		}
	}
}

// TestIDTokenOnlyForOpenID: without the openid scope no ID token is
// issued, and with it but OpenID off neither.
func TestIDTokenOnlyForOpenID(t *testing.T) {
	op := newOP(t, nil)
	tok := op.redeem(op.browser().login(authParams("scope", "read"), "alice")).wantToken(t)
	if _, ok := tok.json["id_token"]; ok {
		t.Fatalf("an id_token without openid: %s", tok.body)
	}
	off := newOP(t, func(c *Config, _ *Client) { c.OpenID = false })
	tok = off.redeem(off.browser().login(authParams(), "alice")).wantToken(t)
	if _, ok := tok.json["id_token"]; ok {
		t.Fatalf("an id_token with OpenID off: %s", tok.body)
	}
}

// TestIDTokenES256ForClient: a client's id_token_signed_response_alg
// ES256 is honoured; the config's default can be ES256 too.
func TestIDTokenES256ForClient(t *testing.T) {
	op := newOP(t, func(_ *Config, rp *Client) { rp.OpenID.IDTokenSignedResponseAlg = oidc.ES256 })
	raw := op.redeem(op.browser().login(authParams(), "alice")).wantToken(t).str("id_token")
	if h := jwsHeader(t, raw); h["alg"] != "ES256" {
		t.Fatalf("alg %v, want ES256", h["alg"])
	}
	op.verify(raw)
	op = newOP(t, func(c *Config, _ *Client) { c.IDTokenAlg = oidc.ES256 })
	raw = op.redeem(op.browser().login(authParams(), "alice")).wantToken(t).str("id_token")
	if h := jwsHeader(t, raw); h["alg"] != "ES256" {
		t.Fatalf("alg %v, want ES256", h["alg"])
	}
}

// TestNonceBoundToCode: the nonce travels with the code, and a code is
// single-use: a second redemption gets invalid_grant and no ID token, so
// no nonce is ever in two ID tokens; refreshed ID tokens carry none.
func TestNonceBoundToCode(t *testing.T) {
	op := newOP(t, nil)
	u := op.browser().login(authParams("nonce", "once"), "alice")
	first := op.redeem(u).wantToken(t)
	if c := op.verify(first.str("id_token")); c["nonce"] != "once" {
		t.Fatalf("nonce %v", c["nonce"])
	}
	again := op.redeem(u)
	again.wantError(t, http.StatusBadRequest, "invalid_grant")
	if _, ok := again.json["id_token"]; ok {
		t.Fatal("a replayed code got an ID token")
	}
	// The replay revoked the first redemption's tokens (RFC 6749 §4.1.2).
	refreshGrant(t, op.svc, first.str("refresh_token"), "", basic("rp", rpSecret)).wantError(t, http.StatusBadRequest, "invalid_grant")

	// A second request reusing the nonce is another code, another token;
	// telling replays apart is the relying party's check (OIDC Core
	// §3.1.3.7): the OP only binds each nonce to its one code.
	tok := op.redeem(op.browser().login(authParams("nonce", "twice"), "alice")).wantToken(t)
	r := refreshGrant(t, op.svc, tok.str("refresh_token"), "", basic("rp", rpSecret)).wantToken(t)
	if c := op.verify(r.str("id_token")); c["nonce"] != nil {
		t.Fatalf("a refreshed ID token carries nonce %v", c["nonce"])
	}
}

// TestRefreshIDTokenKeepsAuthTime: a refresh of an openid grant returns a
// new ID token with the original auth_time and sid and a fresh at_hash.
func TestRefreshIDTokenKeepsAuthTime(t *testing.T) {
	op := newOP(t, nil)
	tok := op.redeem(op.browser().login(authParams(), "alice")).wantToken(t)
	first := op.verify(tok.str("id_token"))
	r := refreshGrant(t, op.svc, tok.str("refresh_token"), "", basic("rp", rpSecret)).wantToken(t)
	c := op.verify(r.str("id_token"))
	if c["auth_time"] != first["auth_time"] || c["sid"] != first["sid"] || c["sub"] != "user-1" {
		t.Fatalf("refreshed %v, first %v", c, first)
	}
	if c["iat"].(float64) < first["iat"].(float64) || r.str("id_token") == tok.str("id_token") {
		t.Fatal("the refreshed ID token is not a new one")
	}
	if c["at_hash"] != oidc.AccessTokenHash(r.str("access_token")) {
		t.Fatal("at_hash does not match the new access token")
	}
	// A refresh narrowed to no openid gets no ID token.
	r = refreshGrant(t, op.svc, r.str("refresh_token"), "profile", basic("rp", rpSecret)).wantToken(t)
	if _, ok := r.json["id_token"]; ok {
		t.Fatal("an ID token for a refresh without openid")
	}
}

// TestIDTokenFromRotatedKeyVerifies: once the RS256 key rotates, the
// JWKS still publishes the retired key until the tokens it signed have
// expired, so an ID token issued before the rotation still verifies.
func TestIDTokenFromRotatedKeyVerifies(t *testing.T) {
	op := newOP(t, func(c *Config, _ *Client) { c.SigningKeyRotation = time.Hour })
	raw := op.redeem(op.browser().login(authParams(), "alice")).wantToken(t).str("id_token")
	oldKid := jwsHeader(t, raw)["kid"]
	ring := op.svc.idKeys[oidc.RS256]
	ring.mu.Lock()
	if err := ring.rotate(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	ring.mu.Unlock()
	fresh := op.redeem(op.browser().login(authParams(), "alice")).wantToken(t).str("id_token")
	if jwsHeader(t, fresh)["kid"] == oldKid {
		t.Fatal("the key did not rotate")
	}
	op.verify(raw)
	op.verify(fresh)
	// Past an ID token's lifetime the retired key leaves the JWKS.
	ring.mu.Lock()
	for _, k := range ring.keys {
		if k.kid == oldKid {
			k.retired = time.Now().Add(-2 * time.Hour)
		}
	}
	ring.mu.Unlock()
	keys, _ := op.svc.JWKS(context.Background())
	for _, k := range keys {
		if k.Kid == oldKid {
			t.Fatal("a key retired past every token's lifetime is still published")
		}
	}
}

// TestUserInfoClaimsPerScope: UserInfo answers sub and the claims the
// token's scopes release: profile gives name, email gives email and
// email_verified; phone was not granted, so phone_number is withheld.
func TestUserInfoClaimsPerScope(t *testing.T) {
	op := newOP(t, nil)
	for _, tc := range []struct {
		scope string
		want  map[string]any
	}{
		{"openid", map[string]any{"sub": "user-1"}},
		{"openid profile", map[string]any{"sub": "user-1", "name": "Alice Liddell", "updated_at": float64(1767225600)}},
		{"openid email", map[string]any{"sub": "user-1", "email": "alice@example.com", "email_verified": true}},
	} {
		tok := op.redeem(op.browser().login(authParams("scope", tc.scope), "alice")).wantToken(t)
		got := op.userinfo(http.MethodGet, tok.str("access_token"))
		if got.status != 200 || len(got.json) != len(tc.want) {
			t.Fatalf("%s: %d %s, want %v", tc.scope, got.status, got.body, tc.want)
		}
		for k, v := range tc.want {
			if got.json[k] != v {
				t.Fatalf("%s: %s = %v, want %v", tc.scope, k, got.json[k], v)
			}
		}
		if got.header.Get("Cache-Control") != "no-store" {
			t.Fatal("a UserInfo answer may be cached")
		}
	}
}

func (op *opFixture) userinfo(method, token string) *reply {
	op.t.Helper()
	req, _ := http.NewRequest(method, op.srv.URL+"/oauth/userinfo", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		op.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := &reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
	_ = json.Unmarshal(b, &out.json)
	return out
}

// TestUserInfoErrors: no token is 401 with a bare challenge, a bad one
// 401 invalid_token, a token without openid 403 insufficient_scope; POST
// works as GET (OIDC Core §5.3.1).
func TestUserInfoErrors(t *testing.T) {
	op := newOP(t, nil)
	r := op.userinfo(http.MethodGet, "")
	if r.status != 401 || r.header.Get("WWW-Authenticate") != `Bearer realm="oauth"` {
		t.Fatalf("no token: %d %v", r.status, r.header)
	}
	r = op.userinfo(http.MethodGet, "not-a-token")
	if r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("bad token: %d %v", r.status, r.header)
	}
	tok := op.redeem(op.browser().login(authParams("scope", "read"), "alice")).wantToken(t)
	r = op.userinfo(http.MethodGet, tok.str("access_token"))
	if r.status != 403 || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="insufficient_scope"`) || r.str("error") != "insufficient_scope" {
		t.Fatalf("no openid: %d %v %s", r.status, r.header, r.body)
	}
	tok = op.redeem(op.browser().login(authParams(), "alice")).wantToken(t)
	if r = op.userinfo(http.MethodPost, tok.str("access_token")); r.status != 200 || r.str("sub") != "user-1" {
		t.Fatalf("POST: %d %s", r.status, r.body)
	}
	// RFC 6750 §2.2: the token in a form body.
	body := call(t, op.svc.ServeUserInfo, form("access_token", tok.str("access_token")))
	if body.status != 200 || body.str("sub") != "user-1" {
		t.Fatalf("POST body: %d %s", body.status, body.body)
	}
	if r = op.userinfo(http.MethodDelete, tok.str("access_token")); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE: %d", r.status)
	}
}

// TestClaimsFromUpstreamLogin: the claims a login upstream answered with
// are kept at sign-in and served by UserInfo.
func TestClaimsFromUpstreamLogin(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"id":"legacy-7","display_name":"Carol Legacy","mail":"carol@legacy.example","verified":true,"age":"x"}`)
	}))
	defer up.Close()
	op := newOP(t, nil)
	op.svc.users = AuthenticatorChain{op.svc.users, &UpstreamLogin{URL: up.URL,
		ClaimsFrom: map[string]string{"name": "display_name", "email": "mail", "email_verified": "verified", "nickname": "missing"}}}
	b := op.browser()
	r := b.signIn(b.start(authParams("scope", "openid profile email")), "carol")
	tok := op.redeem(clientURL(t, b.consent(r))).wantToken(t)
	got := op.userinfo(http.MethodGet, tok.str("access_token"))
	if got.str("sub") != "legacy-7" || got.str("name") != "Carol Legacy" || got.str("email") != "carol@legacy.example" || got.json["email_verified"] != true || len(got.json) != 4 {
		t.Fatalf("userinfo %s", got.body)
	}
}

// TestClaimsRequestIDToken: the claims request parameter puts the claims
// it names into the ID token when the granted scopes release them, and
// never one they do not.
func TestClaimsRequestIDToken(t *testing.T) {
	op := newOP(t, nil)
	q := authParams("scope", "openid profile", "claims", `{"id_token":{"name":{"essential":true},"email":null,"auth_time":{"essential":true}},"userinfo":{"phone_number":null}}`)
	tok := op.redeem(op.browser().login(q, "alice")).wantToken(t)
	c := op.verify(tok.str("id_token"))
	if c["name"] != "Alice Liddell" || c["email"] != nil || c["auth_time"] == nil {
		t.Fatalf("claims %v", c)
	}
	if ui := op.userinfo(http.MethodGet, tok.str("access_token")); ui.json["phone_number"] != nil {
		t.Fatalf("userinfo released an ungranted claim: %s", ui.body)
	}
	u := clientURL(t, op.browser().start(authParams("claims", `["name"]`)))
	if u.Query().Get("error") != "invalid_request" {
		t.Fatalf("a malformed claims parameter: %s", u)
	}
}

// ageSession moves the browser's sign-in back by d.
func (b *rpBrowser) ageSession(d time.Duration) {
	t := b.op.t
	t.Helper()
	u, _ := url.Parse(b.op.srv.URL + "/oauth/")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name != SessionCookie {
			continue
		}
		ctx := context.Background()
		raw, err := b.op.svc.store.Get(ctx, sessionKey(c.Value))
		if err != nil {
			t.Fatal(err)
		}
		var s session
		_ = json.Unmarshal(raw, &s)
		s.IssuedAt -= int64(d)
		raw, _ = json.Marshal(s)
		if err := b.op.svc.store.Put(ctx, sessionKey(c.Value), raw, time.Hour); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("no session cookie")
}

// wantClientError checks an error sent back to the client's redirect URI.
func wantClientError(t *testing.T, p *page, code string) {
	t.Helper()
	u := clientURL(t, p)
	if q := u.Query(); q.Get("error") != code || q.Get("state") != "st" || q.Get("iss") != opIssuer || q.Get("code") != "" {
		t.Fatalf("redirect %s, want error=%s with state and iss", u, code)
	}
}

// TestPromptNone: prompt=none never shows a page: login_required when
// nobody is signed in, consent_required before the person approved the
// client, a code once both hold; login_required again when the sign-in is
// older than max_age or is not the user of id_token_hint.
func TestPromptNone(t *testing.T) {
	op := newOP(t, nil)
	b := op.browser()
	wantClientError(t, b.start(authParams("prompt", "none")), "login_required")

	// Signed in, but the consent page was left unanswered.
	b.signIn(b.start(authParams("scope", "openid")), "alice")
	wantClientError(t, b.start(authParams("prompt", "none")), "consent_required")

	hint := op.redeem(clientURL(t, b.consent(b.start(authParams())))).wantToken(t).str("id_token")
	u := clientURL(t, b.start(authParams("prompt", "none")))
	tok := op.redeem(u).wantToken(t)
	if c := op.verify(tok.str("id_token")); c["nonce"] != "n-0S6_WzA2Mj" || c["sub"] != "user-1" {
		t.Fatalf("silent ID token %v", c)
	}
	u = clientURL(t, b.start(authParams("prompt", "none", "id_token_hint", hint)))
	op.redeem(u).wantToken(t)

	b.ageSession(time.Hour)
	wantClientError(t, b.start(authParams("prompt", "none", "max_age", "60")), "login_required")

	// bob's browser, with alice's ID token as the hint.
	bob := op.browser()
	bob.login(authParams(), "bob")
	wantClientError(t, bob.start(authParams("prompt", "none", "id_token_hint", hint)), "login_required")
	wantClientError(t, bob.start(authParams("prompt", "none login")), "invalid_request")
}

// TestPromptLogin: prompt=login asks a signed-in person for the password
// again, and the ID token's auth_time is the new sign-in's.
func TestPromptLogin(t *testing.T) {
	op := newOP(t, nil)
	b := op.browser()
	op.redeem(b.login(authParams(), "alice")).wantToken(t)
	b.ageSession(time.Hour)
	r := b.start(authParams("prompt", "login"))
	if loc := r.location(t); !strings.HasPrefix(loc, "/oauth/login") {
		t.Fatalf("prompt=login went to %s", loc)
	}
	// The sign-in page does not send a stale session on to consent.
	if pg := b.get(r.location(t)); pg.status != 200 || !strings.Contains(pg.body, `value="alice"`) {
		t.Fatalf("sign-in page: %d %s", pg.status, pg.body)
	}
	before := time.Now().Add(-time.Second).Unix()
	u := clientURL(t, b.consent(b.signIn(r, "alice")))
	if c := op.verify(op.redeem(u).wantToken(t).str("id_token")); int64(c["auth_time"].(float64)) < before {
		t.Fatalf("auth_time %v is the old sign-in's", c["auth_time"])
	}
}

// TestPromptConsent: prompt=consent shows the consent page though the
// person approved the client before.
func TestPromptConsent(t *testing.T) {
	op := newOP(t, nil)
	b := op.browser()
	b.login(authParams(), "alice")
	if r := b.get(b.start(authParams()).location(t)); r.status != http.StatusFound {
		t.Fatalf("a remembered consent asked again: %d", r.status)
	}
	r := b.get(b.start(authParams("prompt", "consent")).location(t))
	if r.status != 200 || !strings.Contains(r.body, `value="allow"`) {
		t.Fatalf("prompt=consent: %d %s", r.status, r.body)
	}
}

// TestMaxAge: a sign-in older than max_age (or the client's
// default_max_age) is asked for again; a recent one is not; the ID token
// then carries auth_time.
func TestMaxAge(t *testing.T) {
	op := newOP(t, func(_ *Config, rp *Client) { rp.OpenID.DefaultMaxAge = 600 })
	b := op.browser()
	b.login(authParams(), "alice")
	b.ageSession(5 * time.Minute)
	if loc := b.start(authParams("max_age", "10000")).location(t); !strings.HasPrefix(loc, "/oauth/consent") {
		t.Fatalf("max_age=10000 asked again: %s", loc)
	}
	if loc := b.start(authParams("max_age", "60")).location(t); !strings.HasPrefix(loc, "/oauth/login") {
		t.Fatalf("max_age=60 did not ask again: %s", loc)
	}
	b.ageSession(10 * time.Minute) // past default_max_age
	r := b.start(authParams())
	if !strings.HasPrefix(r.location(t), "/oauth/login") {
		t.Fatalf("default_max_age did not ask again: %s", r.location(t))
	}
	u := clientURL(t, b.consent(b.signIn(r, "alice")))
	if c := op.verify(op.redeem(u).wantToken(t).str("id_token")); c["auth_time"] == nil {
		t.Fatal("no auth_time")
	}
}

// TestLoginHint: login_hint fills in the username on the sign-in page.
func TestLoginHint(t *testing.T) {
	op := newOP(t, nil)
	b := op.browser()
	pg := b.get(b.start(authParams("login_hint", "alice@example")).location(t))
	if !strings.Contains(pg.body, `name="username" value="alice@example"`) {
		t.Fatalf("sign-in page: %s", pg.body)
	}
}

// TestIDTokenHintChecked: an id_token_hint must be an ID token of this
// issuer for the client: garbage, a token with a broken signature or one
// another issuer signed is invalid_request.
func TestIDTokenHintChecked(t *testing.T) {
	op := newOP(t, nil)
	b := op.browser()
	hint := op.redeem(b.login(authParams(), "alice")).wantToken(t).str("id_token")
	parts := strings.Split(hint, ".")
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+opIssuer+`","sub":"user-2","aud":"rp"}`)) + "." + parts[2]
	other := newOP(t, nil)
	foreign := other.redeem(other.browser().login(authParams(), "alice")).wantToken(t).str("id_token")
	for _, bad := range []string{"garbage", forged, foreign} {
		wantClientError(t, b.start(authParams("prompt", "none", "id_token_hint", bad)), "invalid_request")
	}
}

var nonceRE = regexp.MustCompile(`<script nonce="([^"]+)">`)

// TestFormPost: response_mode=form_post answers with a page whose form
// posts code, state and iss to the redirect URI, with a visible button,
// and a script that only this page's CSP nonce lets run; errors go back
// the same way.
func TestFormPost(t *testing.T) {
	op := newOP(t, nil)
	b := op.browser()
	p := b.consent(b.signIn(b.start(authParams("response_mode", "form_post")), "alice"))
	if p.status != 200 || !strings.Contains(p.body, `action="`+rpRedirect+`"`) || !strings.Contains(p.body, `<button type="submit">`) {
		t.Fatalf("form_post page: %d %s", p.status, p.body)
	}
	if p.field(t, "state") != "st" || p.field(t, "iss") != opIssuer {
		t.Fatalf("form fields: %s", p.body)
	}
	m := nonceRE.FindStringSubmatch(p.body)
	csp := p.header.Get("Content-Security-Policy")
	if m == nil || !strings.Contains(csp, "script-src 'nonce-"+m[1]+"'") || strings.Contains(csp, "unsafe-inline'; script") {
		t.Fatalf("script nonce %v, CSP %q", m, csp)
	}
	if p.header.Get("Cache-Control") != "no-store" {
		t.Fatal("the form_post page may be cached")
	}
	u, _ := url.Parse(rpRedirect + "?code=" + url.QueryEscape(p.field(t, "code")))
	op.redeem(u).wantToken(t)

	e := op.browser().start(authParams("response_mode", "form_post", "prompt", "none"))
	if e.status != 200 || e.field(t, "error") != "login_required" || e.field(t, "state") != "st" {
		t.Fatalf("form_post error: %d %s", e.status, e.body)
	}
	if r := op.browser().start(authParams("response_mode", "fragment")); clientURL(t, r).Query().Get("error") != "invalid_request" {
		t.Fatalf("an unknown response_mode: %s", r.location(t))
	}
}

const rpBye = "https://rp.example/bye"

// logoutReceiver is a client's backchannel_logout_uri: it hands each
// logout token it receives to the test.
func logoutReceiver(t *testing.T) (string, chan string) {
	got := make(chan string, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		_ = r.ParseForm()
		got <- r.PostForm.Get("logout_token")
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/backchannel", got
}

func (op *opFixture) logoutToken(got chan string) map[string]any {
	op.t.Helper()
	select {
	case raw := <-got:
		if h := jwsHeader(op.t, raw); h["typ"] != "logout+jwt" {
			op.t.Fatalf("logout token header %v", h)
		}
		claims, err := op.svc.verifyOwnToken(context.Background(), raw)
		if err != nil {
			op.t.Fatalf("the logout token does not verify: %v", err)
		}
		events, _ := claims["events"].(map[string]any)
		if _, ok := events[oidc.BackchannelLogoutEvent]; !ok || claims["aud"] != "rp" || claims["nonce"] != nil || claims["jti"] == "" || claims["exp"] == nil {
			op.t.Fatalf("logout token %v", claims)
		}
		return claims
	case <-time.After(10 * time.Second):
		op.t.Fatal("no logout token arrived")
	}
	return nil
}

func withLogout(uri string) func(*Config, *Client) {
	return func(_ *Config, rp *Client) {
		rp.OpenID.PostLogoutRedirectURIs = []string{rpBye}
		rp.OpenID.BackchannelLogoutURI = uri
	}
}

// TestEndSessionWithHint: RP-initiated logout with a valid id_token_hint
// and a registered post_logout_redirect_uri ends the sign-in session at
// once, sends the browser back with the state, and posts the client a
// logout token naming the user and the session of its ID token.
func TestEndSessionWithHint(t *testing.T) {
	uri, got := logoutReceiver(t)
	op := newOP(t, withLogout(uri))
	b := op.browser()
	idt := op.redeem(b.login(authParams(), "alice")).wantToken(t).str("id_token")
	sid := op.verify(idt)["sid"]
	r := b.get("/oauth/end_session?" + url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {rpBye}, "state": {"bye-1"}}.Encode())
	if loc := r.location(t); loc != rpBye+"?state=bye-1" {
		t.Fatalf("sent to %q", loc)
	}
	c := op.logoutToken(got)
	if c["sub"] != "user-1" || c["sid"] != sid {
		t.Fatalf("logout token %v, ID token sid %v", c, sid)
	}
	if loc := b.start(authParams()).location(t); !strings.HasPrefix(loc, "/oauth/login") {
		t.Fatalf("still signed in: %s", loc)
	}
	// The hint alone ends the session, from a browser without its cookie.
	b2 := op.browser()
	idt = op.redeem(b2.login(authParams(), "alice")).wantToken(t).str("id_token")
	if r := op.browser().get("/oauth/end_session?id_token_hint=" + url.QueryEscape(idt)); r.status != 200 || !strings.Contains(r.body, "signed out") {
		t.Fatalf("end_session: %d %s", r.status, r.body)
	}
	op.logoutToken(got)
	if loc := b2.start(authParams()).location(t); !strings.HasPrefix(loc, "/oauth/login") {
		t.Fatalf("the hinted session survived: %s", loc)
	}
}

// TestEndSessionBadRedirect: a post_logout_redirect_uri the client did
// not register, or one without a client to check it against, is an
// error page: the browser goes nowhere, and the session stays.
func TestEndSessionBadRedirect(t *testing.T) {
	op := newOP(t, withLogout(""))
	b := op.browser()
	idt := op.redeem(b.login(authParams(), "alice")).wantToken(t).str("id_token")
	for _, q := range []url.Values{
		{"id_token_hint": {idt}, "post_logout_redirect_uri": {"https://evil.example/bye"}},
		{"id_token_hint": {idt}, "post_logout_redirect_uri": {rpBye + "/"}},
		{"post_logout_redirect_uri": {rpBye}},
		{"client_id": {"nobody"}, "post_logout_redirect_uri": {rpBye}},
		{"id_token_hint": {"garbage"}, "post_logout_redirect_uri": {rpBye}},
	} {
		r := b.get("/oauth/end_session?" + q.Encode())
		if r.status != http.StatusBadRequest || r.header.Get("Location") != "" {
			t.Fatalf("%v: %d %v", q, r.status, r.header)
		}
	}
	if loc := b.start(authParams()).location(t); !strings.HasPrefix(loc, "/oauth/consent") {
		t.Fatalf("a refused logout ended the session: %s", loc)
	}
}

// TestEndSessionConfirm: without an id_token_hint a signed-in person is
// asked; the confirmation (with the session's CSRF token) signs them out
// and sends them to the registered URI; a post without the token is
// asked again.
func TestEndSessionConfirm(t *testing.T) {
	uri, got := logoutReceiver(t)
	op := newOP(t, withLogout(uri))
	b := op.browser()
	b.login(authParams(), "alice")
	q := url.Values{"client_id": {"rp"}, "post_logout_redirect_uri": {rpBye}, "state": {"s2"}}
	pg := b.get("/oauth/end_session?" + q.Encode())
	if pg.status != 200 || !strings.Contains(pg.body, "Sign out?") {
		t.Fatalf("no confirmation: %d %s", pg.status, pg.body)
	}
	f := url.Values{"confirm": {"yes"}, "client_id": {pg.field(t, "client_id")},
		"post_logout_redirect_uri": {pg.field(t, "post_logout_redirect_uri")}, "state": {pg.field(t, "state")}}
	if r := b.post("/oauth/end_session", f); r.status != 200 || !strings.Contains(r.body, "Sign out?") {
		t.Fatalf("a post without the CSRF token: %d %s", r.status, r.body)
	}
	f.Set("csrf_token", pg.field(t, "csrf_token"))
	if loc := b.post("/oauth/end_session", f).location(t); loc != rpBye+"?state=s2" {
		t.Fatalf("sent to %q", loc)
	}
	op.logoutToken(got)
	if loc := b.start(authParams()).location(t); !strings.HasPrefix(loc, "/oauth/login") {
		t.Fatalf("still signed in: %s", loc)
	}
}

// TestBackchannelLogout: the sign-out button and the operator's
// revocation of a user each post the client a logout token: with the
// session's sid for the button, with sub alone for the revocation.
func TestBackchannelLogout(t *testing.T) {
	uri, got := logoutReceiver(t)
	op := newOP(t, withLogout(uri))
	b := op.browser()
	op.redeem(b.login(authParams(), "alice")).wantToken(t)
	pg := b.get(b.start(authParams("prompt", "consent")).location(t))
	if r := b.post("/oauth/logout", url.Values{"csrf_token": {pg.field(t, "csrf_token")}}); r.status != 200 {
		t.Fatalf("sign-out: %d %s", r.status, r.body)
	}
	if c := op.logoutToken(got); c["sid"] == nil || c["sub"] != "user-1" {
		t.Fatalf("sign-out logout token %v", c)
	}

	op.redeem(op.browser().login(authParams(), "alice")).wantToken(t)
	if err := op.svc.RevokeUser(context.Background(), "user-1"); err != nil {
		t.Fatal(err)
	}
	if c := op.logoutToken(got); c["sid"] != nil || c["sub"] != "user-1" {
		t.Fatalf("revocation logout token %v", c)
	}
}

// TestUserInfoScopeAll: with every scope, UserInfo answers every claim
// the user has, address as an object and updated_at as a number.
func TestUserInfoScopeAll(t *testing.T) {
	op := newOP(t, nil)
	tok := op.redeem(op.browser().login(authParams("scope", "openid profile email phone address"), "alice")).wantToken(t)
	got := op.userinfo(http.MethodGet, tok.str("access_token"))
	addr, _ := got.json["address"].(map[string]any)
	if got.json["phone_number"] != "+1 555 0100" || addr["locality"] != "Oxford" || got.json["updated_at"] != float64(1767225600) || len(got.json) != len(aliceClaims)+1 {
		t.Fatalf("userinfo %s", got.body)
	}
}

// TestRequestWithoutNonce: a code flow request without a nonce succeeds,
// and its ID token has no nonce claim.
func TestRequestWithoutNonce(t *testing.T) {
	op := newOP(t, nil)
	c := op.verify(op.redeem(op.browser().login(authParams("nonce", ""), "alice")).wantToken(t).str("id_token"))
	if _, ok := c["nonce"]; ok {
		t.Fatalf("a nonce claim without a nonce: %v", c)
	}
}

// TestIDTokensWithSigningKeyFile: with an EC signing_key file the ES256
// ID tokens are signed with it and the RS256 ones with a generated key;
// the JWKS publishes both.
func TestIDTokensWithSigningKeyFile(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	op := newOP(t, func(c *Config, _ *Client) { c.TokenFormat, c.SigningKey = FormatJWT, key })
	raw := op.redeem(op.browser().login(authParams(), "alice")).wantToken(t).str("id_token")
	if jwsHeader(t, raw)["alg"] != "RS256" {
		t.Fatal("the default ID token is not RS256")
	}
	op.verify(raw)
	op.rp.OpenID.IDTokenSignedResponseAlg = oidc.ES256
	raw = op.redeem(op.browser().login(authParams(), "alice")).wantToken(t).str("id_token")
	static, _ := newSigningKey(key, time.Now())
	if h := jwsHeader(t, raw); h["alg"] != "ES256" || h["kid"] != static.kid {
		t.Fatalf("ES256 header %v, want the file's key %s", h, static.kid)
	}
	op.verify(raw)
	keys, _ := op.svc.JWKS(context.Background())
	if len(keys) != 2 {
		t.Fatalf("JWKS %d keys, want the file's and the generated RS256 one", len(keys))
	}
}

// TestOpenIDOnRedis: the OpenID records (the code's binding, the grant's,
// the session's clients and sid) work on a Redis store, standalone and
// cluster: ID tokens at the code and the refresh, UserInfo, and an
// RP-initiated logout that ends the session and tells the client.
func TestOpenIDOnRedis(t *testing.T) {
	onRedis(t, func(t *testing.T, st *redisstore.Store) {
		uri, got := logoutReceiver(t)
		op := newOPOn(t, st, withLogout(uri))
		b := op.browser()
		tok := op.redeem(b.login(authParams(), "alice")).wantToken(t)
		first := op.verify(tok.str("id_token"))
		if first["nonce"] != "n-0S6_WzA2Mj" {
			t.Fatalf("ID token %v", first)
		}
		r := refreshGrant(t, op.svc, tok.str("refresh_token"), "", basic("rp", rpSecret)).wantToken(t)
		if c := op.verify(r.str("id_token")); c["auth_time"] != first["auth_time"] {
			t.Fatalf("refreshed %v", c)
		}
		if ui := op.userinfo(http.MethodGet, r.str("access_token")); ui.str("email") != "alice@example.com" {
			t.Fatalf("userinfo %s", ui.body)
		}
		if r := op.browser().get("/oauth/end_session?id_token_hint=" + url.QueryEscape(tok.str("id_token"))); r.status != 200 {
			t.Fatalf("end_session %d", r.status)
		}
		if c := op.logoutToken(got); c["sid"] != first["sid"] {
			t.Fatalf("logout token %v", c)
		}
		if loc := b.start(authParams()).location(t); !strings.HasPrefix(loc, "/oauth/login") {
			t.Fatalf("still signed in: %s", loc)
		}
	})
}

// TestUsersFileClaims: a users_file JSON entry's claims object is read
// and checked; an unknown claim is an error naming the file and line.
func TestUsersFileClaims(t *testing.T) {
	dir := t.TempDir()
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	write := func(body string) string {
		p := dir + "/users.json"
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	users := StaticUsers{}
	good := write(`[{"username":"ann","password_hash":"` + string(h) + `","user_id":"u-ann","claims":{"name":"Ann","email_verified":true,"updated_at":1767225600}}]`)
	if err := LoadUsersFile(good, users); err != nil {
		t.Fatal(err)
	}
	if c := users.ClaimsByUserID()["u-ann"]; c["name"] != "Ann" || c["email_verified"] != true {
		t.Fatalf("claims %v", c)
	}
	bad := write("[\n" + `{"username":"bo","password_hash":"` + string(h) + `","claims":{"emial":"x"}}]`)
	if err := LoadUsersFile(bad, StaticUsers{}); err == nil || !strings.Contains(err.Error(), bad+":2") || !strings.Contains(err.Error(), "emial") {
		t.Fatalf("a bad claim: %v", err)
	}
}
