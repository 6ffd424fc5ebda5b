package authz

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func testAuthorizer(t testing.TB, cfg AuthorizeConfig) *Authorizer {
	t.Helper()
	clients := StaticClients{"web": {ID: "web", Name: "Web", RedirectURIs: []string{"https://app.example/cb"},
		Grants: []string{GrantAuthorizationCode}, Scopes: []string{"read"}}}
	svc := New(Config{CodeTTL: 60e9, AccessTokenTTL: 3600e9, Issuer: fixedIssuer("https://auth.example.com")}, memStore(t), clients, nil, nil)
	return svc.NewAuthorizer(cfg)
}

// TestSessionCookieSecureOverTLS: over TLS the session cookie is
// __Host-oauth_session, Secure with Path=/; over plain HTTP it is
// oauth_session on /oauth/; HttpOnly and SameSite=Lax always.
func TestSessionCookieSecureOverTLS(t *testing.T) {
	a := testAuthorizer(t, AuthorizeConfig{})
	for _, tlsOn := range []bool{true, false} {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(a.ServeAuthorize))
		if tlsOn {
			srv.StartTLS()
		} else {
			srv.Start()
		}
		c := srv.Client()
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := c.Get(srv.URL + "/oauth/authorize?response_type=code&client_id=web&state=s")
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		name, path := SessionCookie, "/oauth/"
		if tlsOn {
			name, path = SecureSessionCookie, "/"
		}
		cookies := resp.Cookies()
		if len(cookies) != 1 || cookies[0].Name != name {
			t.Fatalf("tls=%v: cookies %v", tlsOn, cookies)
		}
		ck := cookies[0]
		if ck.Secure != tlsOn || ck.Path != path || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.MaxAge != 3600 || ck.Domain != "" {
			t.Fatalf("tls=%v: cookie %+v", tlsOn, ck)
		}
	}
}

func TestWithParams(t *testing.T) {
	cases := []struct{ uri, want string }{
		{"https://a.example/cb", "https://a.example/cb?code=c&state=a+b%26c"},
		{"https://a.example/cb?x=1", "https://a.example/cb?x=1&code=c&state=a+b%26c"},
		{"https://a.example/cb?", "https://a.example/cb?code=c&state=a+b%26c"},
	}
	for _, c := range cases {
		if got := withParams(c.uri, "code", "c", "state", "a b&c", "iss", ""); got != c.want {
			t.Errorf("withParams(%q) = %q, want %q", c.uri, got, c.want)
		}
	}
}

func TestPKCESyntax(t *testing.T) {
	good := strings.Repeat("a", 43)
	for v, want := range map[string]bool{
		good: true, strings.Repeat("Z9-._~", 21) + "xx": true, strings.Repeat("a", 128): true,
		strings.Repeat("a", 42): false, strings.Repeat("a", 129): false, good + "+": false, good + "=": false, "": false,
	} {
		if ValidVerifier(v) != want {
			t.Errorf("ValidVerifier(%q) = %v, want %v", v, !want, want)
		}
	}
	if validChallenge(strings.Repeat("a", 44), PKCES256) {
		t.Error("an S256 challenge of 44 characters was accepted")
	}
	if !validChallenge(strings.Repeat("a", 44), PKCEPlain) {
		t.Error("a plain challenge of 44 characters was refused")
	}
}

type fakeSource struct {
	id  string
	err error
}

func (f fakeSource) Authenticate(context.Context, string, string) (string, error) { return f.id, f.err }

func TestAuthenticatorChain(t *testing.T) {
	down := &LoginUnavailableError{Reason: "down"}
	bad := fakeSource{err: ErrBadCredentials}
	cases := []struct {
		name    string
		chain   AuthenticatorChain
		wantID  string
		wantErr error
	}{
		{"first accepts", AuthenticatorChain{fakeSource{id: "a"}, fakeSource{id: "b"}}, "a", nil},
		{"second accepts", AuthenticatorChain{bad, fakeSource{id: "b"}}, "b", nil},
		{"all refuse", AuthenticatorChain{bad, bad}, "", ErrBadCredentials},
		{"one down, none accepts", AuthenticatorChain{bad, fakeSource{err: down}}, "", ErrLoginUnavailable},
		{"one down, another accepts", AuthenticatorChain{fakeSource{err: down}, fakeSource{id: "b"}}, "b", nil},
		{"empty", nil, "", ErrBadCredentials},
	}
	for _, c := range cases {
		id, err := c.chain.Authenticate(context.Background(), "u", "p")
		if id != c.wantID || !errors.Is(err, c.wantErr) {
			t.Errorf("%s: %q, %v; want %q, %v", c.name, id, err, c.wantID, c.wantErr)
		}
	}
	if e := asOAuthError(down); e.Status != 503 || e.Code != "temporarily_unavailable" {
		t.Errorf("a login source that is down answers %+v", e)
	}
}

// TestUpstreamLoginKeepsSecretsOutOfErrors: neither the password nor
// credentials in the upstream URL appear in an error.
func TestUpstreamLoginKeepsSecretsOutOfErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(502) }))
	defer srv.Close()
	u := &UpstreamLogin{URL: strings.Replace(srv.URL, "http://", "http://svc:hunter2@", 1) + "/login?key=k3y"}
	_, err := u.Authenticate(context.Background(), "alice", "s3cret-pw")
	if err == nil || !errors.Is(err, ErrLoginUnavailable) {
		t.Fatalf("502: %v, want unavailable", err)
	}
	for _, secret := range []string{"hunter2", "s3cret-pw", "k3y"} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error %q contains %q", err, secret)
		}
	}
	srv.Close()
	_, err = u.Authenticate(context.Background(), "alice", "s3cret-pw")
	if !errors.Is(err, ErrLoginUnavailable) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("closed upstream: %v", err)
	}
}

func hash(t *testing.T, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestLoadUsersFile(t *testing.T) {
	h := hash(t, "pw")
	cases := []struct {
		name, content string
		wantErr       string // "" for success; else text including ":line"
		users         map[string]string
	}{
		{"lines", "# comment\n\nann:" + h + ":u-1\nben:" + h + "\n", "", map[string]string{"ann": "u-1", "ben": "ben"}},
		{"json", "[\n {\"username\":\"ann\",\"password_hash\":\"" + h + "\",\"user_id\":\"u-1\"},\n {\"username\":\"ben\",\"password_hash\":\"" + h + "\"}\n]", "", map[string]string{"ann": "u-1", "ben": "ben"}},
		{"line without a hash", "ann:" + h + "\nben\n", ":2: expected username:bcrypt-hash", nil},
		{"line with a bad hash", "ann:" + h + "\n\nben:plain\n", ":3: user \"ben\": the password hash is not a bcrypt hash", nil},
		{"duplicate line", "ann:" + h + "\nann:" + h + "\n", ":2: user \"ann\" is defined twice", nil},
		{"json bad hash", "[\n {\"username\":\"ann\",\"password_hash\":\"" + h + "\"},\n {\"username\":\"ben\",\"password_hash\":\"x\"}\n]", ":3: user \"ben\"", nil},
		{"json unknown field", "[\n\n {\"username\":\"ann\",\"password\":\"pw\"}\n]", ":3: json: unknown field", nil},
		{"json no username", "[{\"password_hash\":\"" + h + "\"}]", ":1: a user has no username", nil},
		{"json trailing data", "[]\n[]", ":2: unexpected data", nil},
		{"json user ID with a control character", "[{\"username\":\"a\",\"password_hash\":\"" + h + "\",\"user_id\":\"a\\nb\"}]", ":1: user \"a\": user ID has a control character", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "users")
			if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
				t.Fatal(err)
			}
			users := StaticUsers{}
			err := LoadUsersFile(path, users)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), path+c.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, path+c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for name, id := range c.users {
				got, err := users.Authenticate(context.Background(), name, "pw")
				if err != nil || got != id {
					t.Fatalf("%s: %q %v, want %q", name, got, err, id)
				}
			}
			if len(users) != len(c.users) {
				t.Fatalf("%d users, want %d", len(users), len(c.users))
			}
		})
	}
	if err := LoadUsersFile(filepath.Join(t.TempDir(), "missing"), StaticUsers{}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("a missing file: %v", err)
	}
}

// TestScreensInTheRequestLanguage: the screens and their error pages
// speak the language Accept-Language picks, say so in lang and
// Content-Language, and vary on Accept-Language.
func TestScreensInTheRequestLanguage(t *testing.T) {
	a := testAuthorizer(t, AuthorizeConfig{})
	for _, tc := range []struct{ accept, lang, title string }{
		{"", "en", "Unknown application"},
		{"de-CH, de;q=0.9, en;q=0.5", "de", "Unbekannte Anwendung"},
		{"it, ja;q=0.3", "ja", "不明なアプリケーション"},
	} {
		req := httptest.NewRequest("GET", "/oauth/authorize?response_type=code&client_id=nobody", nil)
		if tc.accept != "" {
			req.Header.Set("Accept-Language", tc.accept)
		}
		rec := httptest.NewRecorder()
		a.ServeAuthorize(rec, req)
		body := rec.Body.String()
		if rec.Code != 400 || !strings.Contains(body, `<html lang="`+tc.lang+`">`) || !strings.Contains(body, "<h1>"+tc.title+"</h1>") {
			t.Errorf("Accept-Language %q: %d\n%s", tc.accept, rec.Code, body)
		}
		if h := rec.Header(); h.Get("Content-Language") != tc.lang || h.Get("Vary") != "Accept-Language" {
			t.Errorf("Accept-Language %q: Content-Language %q, Vary %q", tc.accept, h.Get("Content-Language"), h.Get("Vary"))
		}
	}
}

// FuzzUsersFile: no users file makes the loader panic, and every user it
// accepts has a bcrypt hash and a user ID.
func FuzzUsersFile(f *testing.F) {
	f.Add([]byte("ann:$2a$04$abcdefghijklmnopqrstuuN7Xb0l5XlI0yq6V9m3N8o3pq0Jx2Qe6:u-1\n"))
	f.Add([]byte(`[{"username":"a","password_hash":"x"}]`))
	f.Add([]byte("[\n{}\n,\n]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		// A folder per input: f.TempDir is removed while fuzz workers may
		// still be writing to it.
		path := filepath.Join(t.TempDir(), "users")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		users := StaticUsers{}
		if err := LoadUsersFile(path, users); err != nil {
			return
		}
		for name, u := range users {
			if name == "" || u.UserID == "" || len(u.PasswordHash) != 60 {
				t.Fatalf("accepted user %q: %+v", name, u)
			}
		}
	})
}

// FuzzAuthorizeRequest: whatever the query, the authorization endpoint
// never fails with a 5xx and never redirects anywhere but to its own
// sign-in step or to the client's registered redirect URI.
func FuzzAuthorizeRequest(f *testing.F) {
	f.Add("response_type=code&client_id=web&state=s")
	f.Add("response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&code_challenge=abc")
	f.Add("client_id=web&client_id=web&redirect_uri=https://evil.example/")
	f.Add("response_type=token&client_id=web&scope=read%20read&state=%0d%0a")
	f.Add("%zz&client_id=web")
	a := testAuthorizer(f, AuthorizeConfig{})
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest(http.MethodGet, "/oauth/authorize", nil)
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		a.ServeAuthorize(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%q: status %d", query, rec.Code)
		}
		loc := rec.Header().Get("Location")
		if rec.Code == http.StatusFound && !strings.HasPrefix(loc, "/oauth/login?") && !strings.HasPrefix(loc, "https://app.example/cb?") {
			t.Fatalf("%q: redirected to %q", query, loc)
		}
	})
}
