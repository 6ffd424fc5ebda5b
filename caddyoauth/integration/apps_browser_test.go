package integration

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// chromiumPath is the Chromium scripts/test.sh installs.
const chromiumPath = "/usr/bin/chromium"

// newChromium starts a headless Chromium for one test and returns its
// context; it is closed when the test ends.
func newChromium(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("chromium is needed (scripts/test.sh installs it): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.WindowSize(1100, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// screenshotDir is TEST_OUTPUT_DIR, else testdata/out in the repository.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("TEST_OUTPUT_DIR")
	if dir == "" {
		dir = filepath.Join(gt.RepoRoot(), "testdata", "out")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// screenshot saves the page as <dir>/<name>.png.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir(t), name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

// get runs one action that returns a value.
func get[T any](t *testing.T, ctx context.Context, step string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	return v
}

// TestAppsInBrowser: in Chromium, alice signs in, creates an app and sees
// its secret once; the app gets a token for her; the app shows in her
// "apps you authorized" list; she revokes it there and the token is
// refused. Then she edits, rotates and deletes the app. Screenshots of
// each page are saved.
func TestAppsInBrowser(t *testing.T) {
	g := startAppsGateway(t)
	ctx := newChromium(t)

	run(t, ctx, "open the apps page",
		chromedp.Navigate(g.URL+"/oauth/apps"),
		chromedp.WaitVisible(chromedp.ID("username")),
	)
	screenshot(t, ctx, "apps-01-sign-in")
	run(t, ctx, "sign in",
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "alice-pw"),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("new-app")),
	)
	if who := get(t, ctx, "signed in", chromedp.Text(chromedp.ID("user"))); who != "alice" {
		t.Fatalf("signed in as %q", who)
	}

	run(t, ctx, "fill the new app form",
		chromedp.SendKeys(chromedp.ID("client_name"), "Alice's Reader"),
		chromedp.SendKeys(chromedp.ID("redirect_uris"), "https://reader.example.com/cb"),
		chromedp.Click(chromedp.CSS(`input[name=grant_types][value=password]`)),
		chromedp.Click(chromedp.CSS(`input[name=scope][value=read]`)),
	)
	screenshot(t, ctx, "apps-02-new-app-form")
	run(t, ctx, "create the app",
		chromedp.Click(chromedp.ID("create")),
		chromedp.WaitVisible(chromedp.ID("client-secret")),
	)
	clientID := get(t, ctx, "client id", chromedp.Text(chromedp.ID("client-id")))
	secret := get(t, ctx, "client secret", chromedp.Text(chromedp.ID("client-secret")))
	screenshot(t, ctx, "apps-03-secret-shown-once")
	if clientID == "" || len(secret) != 43 {
		t.Fatalf("client id %q, secret of %d chars", clientID, len(secret))
	}

	// The secret is not on the list page.
	run(t, ctx, "back to the list", chromedp.Click(chromedp.ID("back")), chromedp.WaitVisible(chromedp.ID("apps")))
	listHTML := get(t, ctx, "list html", chromedp.OuterHTML(chromedp.CSS("html")))
	if !strings.Contains(listHTML, clientID) || strings.Contains(listHTML, secret) {
		t.Fatalf("list page: has id %v, has secret %v", strings.Contains(listHTML, clientID), strings.Contains(listHTML, secret))
	}

	// The app gets a token for alice.
	tok := gt.PostForm(t, g.URL+"/oauth/token", clientID, secret, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-pw"}, "scope": {"read"}})
	if tok.Status != 200 {
		t.Fatalf("token for the new app: %d %s", tok.Status, tok.Body)
	}
	access := tok.Str("access_token")
	if me := gt.Get(t, g.URL+"/oauth/me", access); me.Status != 200 || me.Str("user_id") != "alice" || me.Str("client_id") != clientID {
		t.Fatalf("me: %d %s", me.Status, me.Body)
	}

	// It appears among the apps alice authorized; she revokes it.
	run(t, ctx, "authorized apps", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("authorized")))
	if row := get(t, ctx, "authorized row", chromedp.Text(chromedp.ID("authorized"))); !strings.Contains(row, "Alice's Reader") || !strings.Contains(row, "read") {
		t.Fatalf("authorized apps list: %q", row)
	}
	screenshot(t, ctx, "apps-04-authorized-apps")
	run(t, ctx, "revoke",
		chromedp.Click(chromedp.CSS(`button[data-client="`+clientID+`"]`)),
		chromedp.WaitVisible(chromedp.ID("no-authorized")),
	)
	screenshot(t, ctx, "apps-05-after-revoke")
	if me := gt.Get(t, g.URL+"/oauth/me", access); me.Status != 401 {
		t.Fatalf("token after revoking the app: %d %s", me.Status, me.Body)
	}
	if r := gt.PostForm(t, g.URL+"/oauth/token", clientID, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.Str("refresh_token")}}); r.Status != 400 {
		t.Fatalf("refresh after revoking the app: %d %s", r.Status, r.Body)
	}

	// Edit, rotate and delete from the edit page.
	run(t, ctx, "edit",
		chromedp.Navigate(g.URL+"/oauth/apps/"+clientID),
		chromedp.WaitVisible(chromedp.ID("edit-app")),
		chromedp.SetValue(chromedp.ID("client_name"), "Reader v2"),
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.ID("apps")),
	)
	if list := get(t, ctx, "list after rename", chromedp.Text(chromedp.ID("apps"))); !strings.Contains(list, "Reader v2") {
		t.Fatalf("rename did not show: %q", list)
	}
	run(t, ctx, "edit page", chromedp.Navigate(g.URL+"/oauth/apps/"+clientID), chromedp.WaitVisible(chromedp.ID("rotate")))
	screenshot(t, ctx, "apps-06-edit")
	run(t, ctx, "rotate", chromedp.Click(chromedp.ID("rotate")), chromedp.WaitVisible(chromedp.ID("client-secret")))
	rotated := get(t, ctx, "rotated secret", chromedp.Text(chromedp.ID("client-secret")))
	if rotated == secret || len(rotated) != 43 {
		t.Fatal("rotation showed no new secret")
	}
	pw := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-pw"}}
	if r := gt.PostForm(t, g.URL+"/oauth/token", clientID, secret, pw); r.Status != 401 {
		t.Fatalf("old secret after rotation: %d", r.Status)
	}
	tok = gt.PostForm(t, g.URL+"/oauth/token", clientID, rotated, pw)
	if tok.Status != 200 {
		t.Fatalf("new secret: %d %s", tok.Status, tok.Body)
	}
	run(t, ctx, "delete",
		chromedp.Navigate(g.URL+"/oauth/apps/"+clientID),
		chromedp.WaitVisible(chromedp.ID("delete")),
		chromedp.Click(chromedp.ID("delete")),
		chromedp.WaitVisible(chromedp.ID("no-apps")),
	)
	screenshot(t, ctx, "apps-07-after-delete")
	if me := gt.Get(t, g.URL+"/oauth/me", tok.Str("access_token")); me.Status != 401 {
		t.Fatalf("token of a deleted app: %d", me.Status)
	}
}
