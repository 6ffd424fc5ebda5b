package integration

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// chromiumPath finds the browser, failing (never skipping) with what to
// install when it is missing.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium is needed for the browser test: install it (apt-get install chromium) or run scripts/test.sh, which does")
	return ""
}

// startChromium starts a headless Chromium for one test, with a window of
// width by height, and returns its context, which ends after timeout or
// with the test.
func startChromium(t *testing.T, width, height int, timeout time.Duration) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	if err := chromedp.Do(ctx); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("starting chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// screenshotDir is where the browser test leaves its screenshots for a
// person to look at: $TEST_OUTPUT_DIR, else <repo>/testdata/out/ (ignored
// by git).
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TEST_OUTPUT_DIR")
	if dir == "" {
		dir = filepath.Join(gt.RepoRoot(), "testdata", "out")
	}
	dir = filepath.Join(dir, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestAuthorizeInBrowser drives headless Chromium through sign-in and
// consent to the client's redirect URI, saving a screenshot of each page.
func TestAuthorizeInBrowser(t *testing.T) {
	// The client: a page on loopback that shows what it received.
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><title>Client</title><body><h1 id="callback">Client received</h1><p id="code">%s</p><p id="state">%s</p></body></html>`,
			html.EscapeString(r.URL.Query().Get("code")), html.EscapeString(r.URL.Query().Get("state")))
	}))
	t.Cleanup(app.Close)
	g := gt.Start(t, gt.Config(fmt.Sprintf(`
oauth {
	store memory
	user alice %s u-alice
	client reports {
		name "Quarterly Reports"
		public
		redirect_uri %s/cb
		grants authorization_code
		scopes profile reports.read
	}
}`, gt.BcryptHash(t, "alice-pw"), app.URL), "oauth_server\nrespond \"site\""))

	out := screenshotDir(t)
	t.Logf("screenshots in %s", out)
	ctx := startChromium(t, 900, 760, 60*time.Second)

	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(out, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	_, challenge := pkce("browser")
	start := g.URL + "/oauth/authorize?" + url.Values{
		"response_type": {"code"}, "client_id": {"reports"}, "state": {"xyz-42"},
		"scope": {"profile reports.read"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}.Encode()

	do("open the authorization request", chromedp.Navigate(start), chromedp.WaitVisible(chromedp.ID("username")))
	shot("1-login.png")

	do("a wrong password",
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "wrong"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[role=alert]`)))
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[role=alert]`)))
	if err != nil || !strings.Contains(msg, "Incorrect username or password") {
		t.Fatalf("failed sign-in message = %q, %v", msg, err)
	}
	shot("2-login-failed.png")

	// The form keeps the username typed; the password is typed again.
	do("sign in",
		chromedp.SendKeys(chromedp.ID("password"), "alice-pw"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)))
	heading, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`h1`)))
	if !strings.Contains(heading, "Quarterly Reports") {
		t.Fatalf("consent heading = %q, want the app's name", heading)
	}
	shot("3-consent.png")

	do("allow", chromedp.Click(chromedp.CSS(`button[value=allow]`)), chromedp.WaitVisible(chromedp.ID("callback")))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(loc)
	if !strings.HasPrefix(loc, app.URL+"/cb?") || u.Query().Get("code") == "" || u.Query().Get("state") != "xyz-42" {
		t.Fatalf("the browser ended at %s, want %s/cb with a code and the state", loc, app.URL)
	}
	shot("4-client.png")

	do("an unknown client", chromedp.Navigate(g.URL+"/oauth/authorize?response_type=code&client_id=nobody"), chromedp.WaitVisible(chromedp.CSS(`h1`)))
	shot("5-error.png")
}
