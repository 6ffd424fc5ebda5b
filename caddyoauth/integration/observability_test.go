package integration

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// metricValue returns the value of the series name{labels} in a
// Prometheus text exposition (labels as written there, in name order).
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

// TestObservability runs every grant, refresh, reuse and error against a
// gateway with access logging and a metrics endpoint, then checks that
// the metrics counted each outcome, that the logs record every issued,
// refreshed, refused and revoked token and every login with client_id and
// user_id, that the access log carries the user ID, and that not one
// secret, password, code or token used reached the logs or the metrics.
func TestObservability(t *testing.T) {
	const (
		appSecret    = "app-secret-0bs3rv"
		webSecret    = "web-secret-0bs3rv"
		alicePass    = "alice-pass-0bs3rv"
		wrongSecret  = "wrong-secret-0bs3rv"
		wrongPass    = "wrong-pass-0bs3rv"
		typedAsUser  = "typed-into-username-0bs3rv"
		bogusCode    = "bogus-code-0bs3rv"
		bogusRefresh = "bogus-refresh-0bs3rv"
		bogusBearer  = "bogus-bearer-0bs3rv"
		codeVerifier = "verifier-0bs3rv-verifier-0bs3rv-verifier-0bs3rv"
	)
	up := gt.StartUpstream(t)
	g := gt.Start(t, gt.Config(`
oauth {
	store memory
	refresh_token_grace 0s
	rate_limit {
		token 25/h
	}
	client app {
		secret {env.APP_SECRET}
		grants client_credentials password refresh_token
		scopes read write
		user svc-1
	}
	client web {
		secret {env.WEB_SECRET}
		grants authorization_code refresh_token
		redirect_uri https://app.example/cb
		scopes read
	}
	user alice `+gt.BcryptHash(t, alicePass)+` user-42
}`, fmt.Sprintf(`
log
metrics /metrics
oauth_server
route /api/* {
	oauth_protect {
		scope read
	}
	reverse_proxy %[1]s
}
route /admin/* {
	oauth_protect {
		scope admin
	}
	reverse_proxy %[1]s
}`, up.Addr())), gt.WithEnv("APP_SECRET="+appSecret, "WEB_SECRET="+webSecret))
	tokenURL := g.URL + "/oauth/token"
	post := func(client, secret string, form url.Values) *gt.Response {
		return gt.PostForm(t, tokenURL, client, secret, form)
	}
	expect := func(what string, r *gt.Response, status int) *gt.Response {
		t.Helper()
		if r.Status != status {
			t.Fatalf("%s: %d %s, want %d", what, r.Status, r.Body, status)
		}
		return r
	}

	cc := expect("client_credentials", post("app", appSecret, url.Values{"grant_type": {"client_credentials"}}), 200)
	pw := expect("password", post("app", appSecret, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePass}}), 200)
	rf := expect("refresh", post("app", appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {pw.Str("refresh_token")}}), 200)
	expect("reuse of a rotated refresh token", post("app", appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {pw.Str("refresh_token")}}), 400)
	expect("wrong secret", post("app", wrongSecret, url.Values{"grant_type": {"client_credentials"}}), 401)
	expect("wrong password", post("app", appSecret, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {wrongPass}}), 400)
	expect("password typed as username", post("app", appSecret, url.Values{"grant_type": {"password"}, "username": {typedAsUser}, "password": {wrongPass}}), 400)
	expect("bogus code", post("web", webSecret, url.Values{"grant_type": {"authorization_code"}, "code": {bogusCode},
		"redirect_uri": {"https://app.example/cb"}, "code_verifier": {codeVerifier}}), 400)
	expect("bogus refresh token", post("app", appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {bogusRefresh}}), 400)
	expect("unknown grant", post("app", appSecret, url.Values{"grant_type": {"urn:x:" + bogusCode}}), 400)
	// The authorization code flow: sign-in form (a wrong password first),
	// consent, code redemption with PKCE.
	verifier, challenge := pkce("0bs3rv")
	codeParams := url.Values{"response_type": {"code"}, "client_id": {"web"},
		"redirect_uri": {"https://app.example/cb"}, "state": {"st-0bs3rv"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	b := newBrowser(t, g.URL)
	if r := b.login(b.follow(b.authorize(codeParams)), "alice", wrongPass); r.Status != 200 {
		t.Fatalf("sign-in form, wrong password: %d %s", r.Status, r.Body)
	}
	code := b.approve(codeParams, "alice", alicePass).Query().Get("code")
	session := sessionCookie(t, b)
	redeemForm := url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {"https://app.example/cb"}, "code_verifier": {verifier}}
	ac := expect("authorization code", post("web", webSecret, redeemForm), 200)
	expect("code replayed", post("web", webSecret, redeemForm), 400)

	// A fresh password login, whose access token goes to the API.
	pw2 := expect("password again", post("app", appSecret, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePass}}), 200)

	expect("API with the client's token", gt.Get(t, g.URL+"/api/a", cc.Str("access_token")), 200)
	expect("API with alice's token", gt.Get(t, g.URL+"/api/whoami", pw2.Str("access_token")), 200)
	expect("API without a token", gt.Get(t, g.URL+"/api/a", ""), 401)
	expect("API with a bogus token", gt.Get(t, g.URL+"/api/a", bogusBearer), 401)
	expect("API with a revoked token", gt.Get(t, g.URL+"/api/a", rf.Str("access_token")), 401)
	expect("admin route without the scope", gt.Get(t, g.URL+"/admin/x", cc.Str("access_token")), 403)
	expect("/oauth/me", gt.Get(t, g.URL+"/oauth/me", pw2.Str("access_token")), 200)
	// Spend the token limit to see a 429 counted.
	limited := false
	for i := 0; i < 30 && !limited; i++ {
		limited = post("app", appSecret, url.Values{"grant_type": {"client_credentials"}}).Status == 429
	}
	if !limited {
		t.Fatal("30 more token requests never met the 25/h limit")
	}

	m := expect("metrics", gt.Get(t, g.URL+"/metrics", ""), 200)
	metricsText := string(m.Body)
	for series, want := range map[string]float64{
		`caddy_oauth_tokens_issued_total{client_id="app",grant="password"}`:                 2,
		`caddy_oauth_tokens_issued_total{client_id="app",grant="refresh_token"}`:            1,
		`caddy_oauth_token_errors_total{error="invalid_client",grant="client_credentials"}`: 1,
		`caddy_oauth_token_errors_total{error="invalid_grant",grant="password"}`:            2,
		`caddy_oauth_token_errors_total{error="invalid_grant",grant="authorization_code"}`:  2,
		`caddy_oauth_tokens_issued_total{client_id="web",grant="authorization_code"}`:       1,
		`caddy_oauth_logins_total{method="form",result="success"}`:                          1,
		`caddy_oauth_logins_total{method="form",result="failure"}`:                          1,
		`caddy_oauth_token_errors_total{error="invalid_grant",grant="refresh_token"}`:       2,
		`caddy_oauth_token_errors_total{error="unsupported_grant_type",grant="other"}`:      1,
		`caddy_oauth_token_validations_total{result="ok"}`:                                  2,
		`caddy_oauth_token_validations_total{result="missing"}`:                             1,
		`caddy_oauth_token_validations_total{result="invalid"}`:                             2,
		`caddy_oauth_token_validations_total{result="insufficient_scope"}`:                  1,
		`caddy_oauth_logins_total{method="password_grant",result="success"}`:                2,
		`caddy_oauth_logins_total{method="password_grant",result="failure"}`:                2,
		`caddy_oauth_rate_limited_total{key="address",limit="token"}`:                       1,
	} {
		if got := metricValue(t, metricsText, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if n := metricValue(t, metricsText, `caddy_oauth_tokens_issued_total{client_id="app",grant="client_credentials"}`); n < 2 {
		t.Errorf("client_credentials tokens issued = %v, want at least 2", n)
	}
	if n := metricValue(t, metricsText, `caddy_oauth_store_operation_duration_seconds_count{backend="memory",op="put",result="ok"}`); n < 1 {
		t.Errorf("store put latency observations = %v, want some", n)
	}

	logs := g.Logs()
	secrets := map[string]string{
		"app secret": appSecret, "web secret": webSecret, "alice's password": alicePass,
		"wrong secret": wrongSecret, "wrong password": wrongPass, "password typed as username": typedAsUser,
		"bogus code": bogusCode, "bogus refresh token": bogusRefresh, "bogus bearer token": bogusBearer,
		"code verifier":         codeVerifier,
		"basic credentials":     base64.StdEncoding.EncodeToString([]byte("app:" + appSecret)),
		"client token":          cc.Str("access_token"),
		"alice's access token":  pw.Str("access_token"),
		"alice's refresh token": pw.Str("refresh_token"),
		"refreshed access":      rf.Str("access_token"),
		"refreshed refresh":     rf.Str("refresh_token"),
		"second access token":   pw2.Str("access_token"),
		"second refresh token":  pw2.Str("refresh_token"),
		"authorization code":    code,
		"code's access token":   ac.Str("access_token"),
		"code's refresh token":  ac.Str("refresh_token"),
		"PKCE verifier":         verifier,
		"session cookie":        session,
	}
	for what, s := range secrets {
		if s == "" {
			t.Fatalf("%s is empty: the scenario went wrong", what)
		}
		if strings.Contains(logs, s) {
			t.Errorf("the logs contain the %s", what)
			for line := range strings.SplitSeq(logs, "\n") {
				if strings.Contains(line, s) {
					t.Log(line)
				}
			}
		}
		if strings.Contains(metricsText, s) {
			t.Errorf("the metrics contain the %s", what)
		}
	}
	// What must be there.
	for _, want := range []string{
		`"logger":"oauth","msg":"token issued","grant_type":"client_credentials","client_id":"app","user_id":"svc-1"`,
		`"msg":"token issued","grant_type":"password","client_id":"app","user_id":"user-42"`,
		`"msg":"token refreshed","grant_type":"refresh_token","client_id":"app","user_id":"user-42"`,
		`"msg":"token refused","error":"invalid_client","grant_type":"client_credentials"`,
		`"msg":"token refused","error":"invalid_grant","grant_type":"authorization_code","client_id":"web"`,
		`"msg":"login","method":"password_grant","client_id":"app","user_id":"user-42"`,
		`"msg":"login failed","method":"password_grant","client_id":"app","username_digest":`,
		`"msg":"login failed","method":"form","client_id":"web","username_digest":`,
		`"msg":"login","method":"form","client_id":"web","user_id":"user-42"`,
		`"msg":"token issued","grant_type":"authorization_code","client_id":"web","user_id":"user-42"`,
		`"msg":"rotated refresh token reused: its family is revoked","client_id":"app","user_id":"user-42"`,
		`"msg":"tokens revoked"`,
		`"msg":"rate limited","limit":"token"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the logs lack %s", want)
		}
	}
	// The access log line of alice's API call carries her user ID.
	found := false
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, `"logger":"http.log.access`) && strings.Contains(line, `"uri":"/api/whoami"`) {
			found = true
			if !strings.Contains(line, `"user_id":"user-42"`) {
				t.Errorf("access log line lacks user_id user-42: %s", line)
			}
		}
	}
	if !found {
		t.Errorf("no access log line for /api/whoami in:\n%s", logs)
	}
}
