package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// legacyLogin is the legacy system's login endpoint: carol/carol-pw is
// user legacy-42; "slow" never answers until the caller gives up;
// "broken" gets a 500; everyone else 401.
type legacyLogin struct {
	*httptest.Server
	mu    sync.Mutex
	seen  []string // content types received
	block chan struct{}
}

func startLegacyLogin(t *testing.T) *legacyLogin {
	l := &legacyLogin{block: make(chan struct{})}
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var user, pass string
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			var body map[string]string
			_ = json.NewDecoder(r.Body).Decode(&body)
			user, pass = body["username"], body["password"]
		} else {
			_ = r.ParseForm()
			user, pass = r.PostForm.Get("username"), r.PostForm.Get("password")
		}
		l.mu.Lock()
		l.seen = append(l.seen, r.Header.Get("Content-Type"))
		l.mu.Unlock()
		switch {
		case user == "slow":
			select {
			case <-r.Context().Done():
			case <-l.block:
			}
			return
		case user == "broken":
			http.Error(w, "database down", 500)
		case user == "carol" && pass == "carol-pw":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"id":"legacy-42","account":{"number":42}}`)
		case user == "dave" && pass == "dave-pw":
			fmt.Fprint(w, `{"name":"no id here"}`)
		default:
			http.Error(w, `{"error":"bad login"}`, 401)
		}
	}))
	t.Cleanup(func() { close(l.block); l.Close() })
	return l
}

func (l *legacyLogin) contentTypes() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seen...)
}

func startWithLoginUpstream(t *testing.T, loginBlock string) (*gt.Gateway, *gt.Upstream) {
	t.Helper()
	up := gt.StartUpstream(t)
	g := gt.Start(t, gt.Config(fmt.Sprintf(`
oauth {
	store memory
	user alice %s u-alice
	%s
	client web {
		name "Web App"
		secret web-secret
		redirect_uri %s
		grants authorization_code password
		scopes read
	}
}`, gt.BcryptHash(t, "alice-pw"), loginBlock, webCB), fmt.Sprintf(`
oauth_server
oauth_protect
reverse_proxy %s`, up.Addr())))
	return g, up
}

func passwordGrant(t *testing.T, g *gt.Gateway, user, pass string) *gt.Response {
	t.Helper()
	return gt.PostForm(t, g.URL+"/oauth/token", "web", "web-secret",
		url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass}})
}

// TestLoginUpstream: the legacy login decides for people the config does
// not know; its failures are failed logins, and its silence or absence is
// a 503, never a success.
func TestLoginUpstream(t *testing.T) {
	legacy := startLegacyLogin(t)
	g, up := startWithLoginUpstream(t, fmt.Sprintf(`login_upstream %s/login {
		timeout 300ms
	}`, legacy.URL))

	t.Run("good login through the screens", func(t *testing.T) {
		b := newBrowser(t, g.URL)
		u := b.approve(webParams("s"), "carol", "carol-pw")
		tok := redeem(t, g, "web", "web-secret", url.Values{"code": {u.Query().Get("code")}, "redirect_uri": {webCB}})
		if tok.Status != 200 {
			t.Fatalf("token: %d %s", tok.Status, tok.Body)
		}
		gt.Get(t, g.URL+"/api", tok.Str("access_token"))
		if got := up.Last().Get("X-User-Id"); got != "legacy-42" {
			t.Fatalf("upstream X-User-ID = %q, want legacy-42", got)
		}
		if ct := legacy.contentTypes(); len(ct) == 0 || ct[0] != "application/json" {
			t.Fatalf("the login upstream received %v, want JSON", ct)
		}
	})
	t.Run("static users still work", func(t *testing.T) {
		if r := passwordGrant(t, g, "alice", "alice-pw"); r.Status != 200 {
			t.Fatalf("alice: %d %s", r.Status, r.Body)
		}
	})
	t.Run("bad login", func(t *testing.T) {
		b := newBrowser(t, g.URL)
		r := b.login(b.follow(b.authorize(webParams("s"))), "carol", "wrong")
		if r.Status != 200 || !strings.Contains(string(r.Body), "Incorrect username or password.") {
			t.Fatalf("bad login page: %d %s", r.Status, r.Body)
		}
		if r := passwordGrant(t, g, "carol", "wrong"); r.Status != 400 || r.Str("error") != "invalid_grant" {
			t.Fatalf("password grant: %d %s", r.Status, r.Body)
		}
	})
	t.Run("2xx without an id", func(t *testing.T) {
		if r := passwordGrant(t, g, "dave", "dave-pw"); r.Status != 400 || r.Str("error") != "invalid_grant" {
			t.Fatalf("password grant: %d %s", r.Status, r.Body)
		}
	})
	for _, who := range []string{"slow", "broken"} {
		t.Run(who+" upstream", func(t *testing.T) {
			b := newBrowser(t, g.URL)
			r := b.login(b.follow(b.authorize(webParams("s"))), who, "pw")
			if r.Status != 503 || !strings.Contains(string(r.Body), "Sign-in unavailable") {
				t.Fatalf("sign-in page: %d %s", r.Status, r.Body)
			}
			tok := passwordGrant(t, g, who, "pw")
			if tok.Status != 503 || tok.Str("error") != "temporarily_unavailable" {
				t.Fatalf("password grant: %d %s", tok.Status, tok.Body)
			}
		})
	}
}

// TestLoginUpstreamDown: an unreachable upstream is a 503 on the screens
// and at the token endpoint; the configured users still sign in.
func TestLoginUpstreamDown(t *testing.T) {
	down := fmt.Sprintf("http://127.0.0.1:%d/login", gt.FreePort(t))
	g, _ := startWithLoginUpstream(t, "login_upstream "+down)
	b := newBrowser(t, g.URL)
	r := b.login(b.follow(b.authorize(webParams("s"))), "carol", "carol-pw")
	if r.Status != 503 {
		t.Fatalf("sign-in with the upstream down: %d %s", r.Status, r.Body)
	}
	if tok := passwordGrant(t, g, "carol", "carol-pw"); tok.Status != 503 || tok.Str("error") != "temporarily_unavailable" {
		t.Fatalf("password grant: %d %s", tok.Status, tok.Body)
	}
	if tok := passwordGrant(t, g, "alice", "alice-pw"); tok.Status != 200 {
		t.Fatalf("alice with the upstream down: %d %s", tok.Status, tok.Body)
	}
	if strings.Contains(g.Logs(), "carol-pw") {
		t.Fatalf("a password reached the log")
	}
}

// TestLoginUpstreamForm: format form and id_field.
func TestLoginUpstreamForm(t *testing.T) {
	var got url.Values
	var mu sync.Mutex
	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		got = r.PostForm
		mu.Unlock()
		fmt.Fprint(w, `{"uid": 9001}`)
	}))
	t.Cleanup(legacy.Close)
	g, _ := startWithLoginUpstream(t, fmt.Sprintf(`login_upstream %s {
		format form
		id_field uid
	}`, legacy.URL))
	tok := passwordGrant(t, g, "erin", "erin-pw")
	if tok.Status != 200 {
		t.Fatalf("password grant: %d %s", tok.Status, tok.Body)
	}
	me := gt.Get(t, g.URL+"/oauth/me", tok.Str("access_token"))
	mu.Lock()
	defer mu.Unlock()
	if got.Get("username") != "erin" || got.Get("password") != "erin-pw" {
		t.Fatalf("the upstream received %v", got)
	}
	if me.Status != 200 || me.Str("user_id") != "9001" {
		t.Fatalf("/oauth/me: %s, want user 9001", me.Body)
	}
}

// TestUsersFile: users come from a JSON or a htpasswd-style file; a bad
// file stops the config with its name and line.
func TestUsersFile(t *testing.T) {
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "users.json")
	lineFile := filepath.Join(dir, "users.txt")
	write(t, jsonFile, fmt.Sprintf(`[
  {"username": "frank", "password_hash": %q, "user_id": "u-frank"},
  {"username": "gina", "password_hash": %q}
]`, gt.BcryptHash(t, "frank-pw"), gt.BcryptHash(t, "gina-pw")))
	write(t, lineFile, fmt.Sprintf("# legacy export\nhank:%s:u-hank\n\nivy:%s\n", gt.BcryptHash(t, "hank-pw"), gt.BcryptHash(t, "ivy-pw")))

	for file, users := range map[string][][2]string{jsonFile: {{"frank", "u-frank"}, {"gina", "gina"}}, lineFile: {{"hank", "u-hank"}, {"ivy", "ivy"}}} {
		g, up := startWithLoginUpstream(t, "users_file "+file)
		for _, u := range users {
			tok := passwordGrant(t, g, u[0], u[0]+"-pw")
			if tok.Status != 200 {
				t.Fatalf("%s from %s: %d %s", u[0], filepath.Base(file), tok.Status, tok.Body)
			}
			gt.Get(t, g.URL+"/api", tok.Str("access_token"))
			if id := up.Last().Get("X-User-Id"); id != u[1] {
				t.Fatalf("%s: X-User-ID %q, want %q", u[0], id, u[1])
			}
		}
		if tok := passwordGrant(t, g, users[0][0], "wrong"); tok.Status != 400 {
			t.Fatalf("wrong password: %d", tok.Status)
		}
	}

	bad := filepath.Join(dir, "bad.txt")
	write(t, bad, fmt.Sprintf("ok:%s\nbroken:not-a-hash\n", gt.BcryptHash(t, "x")))
	cfg := filepath.Join(dir, "Caddyfile")
	write(t, cfg, fmt.Sprintf("{\n\toauth {\n\t\tstore memory\n\t\tusers_file %s\n\t}\n}\n:0 {\n\toauth_server\n}\n", bad))
	out, ok := gt.ValidateConfig(t, cfg)
	if ok || !strings.Contains(out, bad+":2") {
		t.Fatalf("validate with a bad users file: ok=%v\n%s", ok, out)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
