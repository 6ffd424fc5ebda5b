package integration

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// screenshot saves the page as <dir>/<name>.png.
func appsScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir(t), name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func appsRun(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

// get runs one action that returns a value.
func appsGet[T any](t *testing.T, ctx context.Context, step string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	return v
}

// TestAppsInBrowser: in Chromium, alice signs in on the apps page, creates
// an app and sees its secret once; the app goes through the authorization
// code flow (consent screen, code, token) on the same session; the app
// shows in her "apps you authorized" list; she revokes it there, its token
// and refresh token are refused and her consent is forgotten. Then she
// edits, rotates and deletes the app. Screenshots of each page are saved.
func TestAppsInBrowser(t *testing.T) {
	// The app's redirect URI: a loopback page showing what it received.
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>App</title><h1 id="callback">App received</h1><p id="code">%s</p><p id="state">%s</p>`,
			html.EscapeString(r.URL.Query().Get("code")), html.EscapeString(r.URL.Query().Get("state")))
	}))
	t.Cleanup(app.Close)
	redirectURI := app.URL + "/cb"
	g := startAppsGateway(t)
	ctx := startChromium(t, 1100, 900, 60*time.Second)
	id := func(s string) chromedp.ID { return chromedp.ID(s) }

	appsRun(t, ctx, "open the apps page",
		chromedp.Navigate(g.URL+"/oauth/apps"),
		chromedp.WaitVisible(id("username")),
	)
	appsScreenshot(t, ctx, "apps-01-sign-in")
	appsRun(t, ctx, "sign in",
		chromedp.SendKeys(id("username"), "alice"),
		chromedp.SendKeys(id("password"), "alice-pw"),
		chromedp.Click(id("signin")),
		chromedp.WaitVisible(id("new-app-link")),
	)
	if who := appsGet(t, ctx, "signed in", chromedp.Text(id("user"))); who != "alice" {
		t.Fatalf("signed in as %q", who)
	}
	appsRun(t, ctx, "open the new app form", chromedp.Click(id("new-app-link")), chromedp.WaitVisible(id("new-app")))

	appsRun(t, ctx, "fill the new app form",
		chromedp.SendKeys(id("client_name"), "Alice's Reader"),
		chromedp.SendKeys(id("redirect_uris"), redirectURI),
		chromedp.Click(chromedp.CSS(`input[name=scope][value=read]`)),
	)
	appsScreenshot(t, ctx, "apps-02-new-app-form")
	appsRun(t, ctx, "create the app",
		chromedp.Click(id("create")),
		chromedp.WaitVisible(id("client-secret")),
	)
	clientID := appsGet(t, ctx, "client id", chromedp.Text(id("client-id")))
	secret := appsGet(t, ctx, "client secret", chromedp.Text(id("client-secret")))
	appsScreenshot(t, ctx, "apps-03-secret-shown-once")
	if clientID == "" || len(secret) != 43 {
		t.Fatalf("client id %q, secret of %d chars", clientID, len(secret))
	}

	// The secret is not on the list page.
	appsRun(t, ctx, "back to the list", chromedp.Click(id("back")), chromedp.WaitVisible(id("apps")))
	listHTML := appsGet(t, ctx, "list html", chromedp.OuterHTML(chromedp.CSS("html")))
	if !strings.Contains(listHTML, clientID) || strings.Contains(listHTML, secret) {
		t.Fatalf("list page: has id %v, has secret %v", strings.Contains(listHTML, clientID), strings.Contains(listHTML, secret))
	}

	// The app asks for alice's authorization; she is signed in already, so
	// the consent screen comes straight away.
	verifier, challenge := pkce("apps-browser")
	authorizeURL := g.URL + "/oauth/authorize?" + url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirectURI},
		"scope": {"read"}, "state": {"s-1"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}.Encode()
	appsRun(t, ctx, "authorize", chromedp.Navigate(authorizeURL), chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)))
	appsScreenshot(t, ctx, "apps-04-consent")
	appsRun(t, ctx, "allow", chromedp.Click(chromedp.CSS(`button[value=allow]`)), chromedp.WaitVisible(id("callback")))
	code := appsGet(t, ctx, "code", chromedp.Text(id("code")))
	if st := appsGet(t, ctx, "state", chromedp.Text(id("state"))); code == "" || st != "s-1" {
		t.Fatalf("callback: code %q state %q", code, st)
	}
	tok := gt.PostForm(t, g.URL+"/oauth/token", clientID, secret, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}, "code_verifier": {verifier},
	})
	if tok.Status != 200 || tok.Str("refresh_token") == "" {
		t.Fatalf("code exchange: %d %s", tok.Status, tok.Body)
	}
	access := tok.Str("access_token")
	if me := gt.Get(t, g.URL+"/oauth/me", access); me.Status != 200 || me.Str("user_id") != "alice" || me.Str("client_id") != clientID {
		t.Fatalf("me: %d %s", me.Status, me.Body)
	}

	// It appears among the apps alice authorized; she revokes it.
	appsRun(t, ctx, "authorized apps", chromedp.Navigate(g.URL+"/oauth/apps"), chromedp.WaitVisible(id("authorized")))
	if row := appsGet(t, ctx, "authorized row", chromedp.Text(id("authorized"))); !strings.Contains(row, "Alice's Reader") || !strings.Contains(row, "read") {
		t.Fatalf("authorized apps list: %q", row)
	}
	appsScreenshot(t, ctx, "apps-05-authorized-apps")
	appsRun(t, ctx, "revoke",
		chromedp.Click(chromedp.CSS(`button[data-client="`+clientID+`"]`)),
		chromedp.WaitVisible(id("no-authorized")),
	)
	appsScreenshot(t, ctx, "apps-06-after-revoke")
	if me := gt.Get(t, g.URL+"/oauth/me", access); me.Status != 401 {
		t.Fatalf("token after revoking the app: %d %s", me.Status, me.Body)
	}
	if r := gt.PostForm(t, g.URL+"/oauth/token", clientID, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.Str("refresh_token")}}); r.Status != 400 || r.Str("error") != "invalid_grant" {
		t.Fatalf("refresh after revoking the app: %d %s", r.Status, r.Body)
	}
	// The consent is forgotten too: the app must ask again.
	appsRun(t, ctx, "authorize again", chromedp.Navigate(authorizeURL), chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)))

	// Edit, rotate and delete from the edit page.
	appsRun(t, ctx, "edit",
		chromedp.Navigate(g.URL+"/oauth/apps/"+clientID),
		chromedp.WaitVisible(id("edit-app")),
		chromedp.SetValue(id("client_name"), "Reader v2"),
		chromedp.Click(id("save")),
		chromedp.WaitVisible(id("apps")),
	)
	if list := appsGet(t, ctx, "list after rename", chromedp.Text(id("apps"))); !strings.Contains(list, "Reader v2") {
		t.Fatalf("rename did not show: %q", list)
	}
	appsRun(t, ctx, "edit page", chromedp.Navigate(g.URL+"/oauth/apps/"+clientID), chromedp.WaitVisible(id("rotate")))
	appsScreenshot(t, ctx, "apps-07-edit")
	appsRun(t, ctx, "rotate", chromedp.Click(id("rotate")), chromedp.WaitVisible(id("client-secret")))
	rotated := appsGet(t, ctx, "rotated secret", chromedp.Text(id("client-secret")))
	if rotated == secret || len(rotated) != 43 {
		t.Fatal("rotation showed no new secret")
	}
	pw := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-pw"}}
	if r := gt.PostForm(t, g.URL+"/oauth/token", clientID, secret, pw); r.Status != 401 {
		t.Fatalf("old secret after rotation: %d", r.Status)
	}
	// The app has no password grant: the new secret authenticates, and the
	// grant is refused as unauthorized_client, not invalid_client.
	if r := gt.PostForm(t, g.URL+"/oauth/token", clientID, rotated, pw); r.Status != 400 || r.Str("error") != "unauthorized_client" {
		t.Fatalf("new secret: %d %s", r.Status, r.Body)
	}
	appsRun(t, ctx, "delete",
		chromedp.Navigate(g.URL+"/oauth/apps/"+clientID),
		chromedp.WaitVisible(id("delete")),
		chromedp.Click(id("delete")),
		chromedp.WaitVisible(id("no-apps")),
	)
	appsScreenshot(t, ctx, "apps-08-after-delete")
	if r := gt.PostForm(t, g.URL+"/oauth/token", clientID, rotated, pw); r.Status != 401 {
		t.Fatalf("deleted app authenticated: %d", r.Status)
	}
}
