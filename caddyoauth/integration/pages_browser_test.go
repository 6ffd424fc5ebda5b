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
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// axe-core is installed with npm from testdata/axe (package.json and
// package-lock.json pin it) once per test process.
var (
	axeOnce   sync.Once
	axeScript string
	axeErr    error
)

// axeSource returns axe-core's script, failing (never skipping) when node
// or npm is missing.
func axeSource(t *testing.T) string {
	t.Helper()
	axeOnce.Do(func() {
		for _, tool := range []string{"node", "npm"} {
			if _, err := exec.LookPath(tool); err != nil {
				axeErr = fmt.Errorf("%s is needed for the accessibility checks: install nodejs and npm (apt-get install nodejs npm) or run scripts/test.sh, which does", tool)
				return
			}
		}
		dir := filepath.Join(gt.RepoRoot(), "caddyoauth", "integration", "testdata", "axe")
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			axeErr = fmt.Errorf("npm ci in %s: %v\n%s", dir, err, out)
			return
		}
		b, err := os.ReadFile(filepath.Join(dir, "node_modules", "axe-core", "axe.min.js"))
		axeScript, axeErr = string(b), err
	})
	if axeErr != nil {
		t.Fatal(axeErr)
	}
	return axeScript
}

// axeRun runs axe-core's WCAG 2.0 and 2.1 A and AA rules on the page and
// returns its violations, one line each.
const axeRun = `axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}, resultTypes: ["violations"]})
	.then(r => r.violations.map(v => v.id + " (" + v.impact + "): " + v.help + ": " +
		v.nodes.map(n => n.target.join(" ") + " " + (n.failureSummary || "").replace(/\s+/g, " ")).join(" | ")))`

// pagesGateway serves the pages with scope descriptions, self-service
// apps, a client whose redirect URI is app, and, when brand is set, the
// branding with a logo the site serves.
func pagesGateway(t *testing.T, app string, brand bool) *gt.Gateway {
	t.Helper()
	branding, site := "", "oauth_server\nrespond \"site\""
	if brand {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "brand"), 0o755); err != nil {
			t.Fatal(err)
		}
		logo := `<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40" viewBox="0 0 40 40"><rect width="40" height="40" rx="8" fill="#0b5fff"/><path d="M10 30 L20 10 L30 30 Z" fill="#fff"/></svg>`
		if err := os.WriteFile(filepath.Join(dir, "brand", "logo.svg"), []byte(logo), 0o644); err != nil {
			t.Fatal(err)
		}
		branding = `
	branding {
		name "Acme API"
		logo /brand/logo.svg
		color "#0b5fff"
		support_url https://help.acme.example/oauth
	}`
		site = fmt.Sprintf("oauth_server\nhandle /brand/* {\n\troot * %s\n\tfile_server\n}\nrespond \"site\"", dir)
	}
	return gt.Start(t, gt.Config(fmt.Sprintf(`
oauth {
	store memory
	self_service
	apps_allowed_grants authorization_code refresh_token password
	apps_allowed_scopes reports.read reports.write
	user alice %s u-alice
	scope reports.read "Read your quarterly reports" {
		de "Ihre Quartalsberichte lesen"
	}
	scope reports.write "Change your quarterly reports" {
		de "Ihre Quartalsberichte ändern"
	}
	client reports {
		name "Quarterly Reports"
		public
		redirect_uri %s/cb
		grants authorization_code
		scopes openid profile reports.read reports.write archive
	}%s
}`, gt.BcryptHash(t, "alice-pw"), app, branding), site))
}

// pageWalk drives one gateway in one language through every page.
type pageWalk struct {
	t    *testing.T
	ctx  context.Context
	axe  string
	out  string
	name string // gateway and language, for the screenshots' names
	lang string
}

// pagesStep bounds one step, so a page that never comes fails that
// step, not the whole test's time.
const pagesStep = 30 * time.Second

func (w *pageWalk) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, pagesStep)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		w.t.Fatalf("%s: %v", what, err)
	}
}

func pagesGet[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, pagesStep)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// check screenshots the page at phone and desktop width and runs axe-core
// on it at each; any violation fails the test. The page must be in the
// walk's language.
func (w *pageWalk) check(page string) {
	w.t.Helper()
	if lang := pagesGet(w.t, w.ctx, "lang", chromedp.Evaluate[string](`document.documentElement.lang`)); lang != w.lang {
		w.t.Errorf("%s: lang=%q, want %s", page, lang, w.lang)
	}
	for _, width := range []int64{360, 1280} {
		w.do("viewport", chromedp.EmulateViewport(width, 800))
		png := pagesGet(w.t, w.ctx, "screenshot", chromedp.FullScreenshot(100))
		if err := os.WriteFile(filepath.Join(w.out, fmt.Sprintf("%s-%s-%d.png", w.name, page, width)), png, 0o644); err != nil {
			w.t.Fatal(err)
		}
		for _, v := range axeViolations(w.t, w.ctx, w.axe) {
			w.t.Errorf("%s at %d px: %s", page, width, v)
		}
	}
	w.do("desktop viewport", chromedp.EmulateViewport(1280, 800))
}

// axeViolations injects axe-core into the page (the DevTools protocol
// evaluates it whatever the page's CSP) and runs it.
func axeViolations(t *testing.T, ctx context.Context, axe string) []string {
	t.Helper()
	if !pagesGet(t, ctx, "axe loaded", chromedp.Evaluate[bool](`typeof axe !== "undefined"`)) {
		pagesGet(t, ctx, "inject axe-core", chromedp.Evaluate[chromedp.Void](axe))
	}
	return pagesGet(t, ctx, "axe.run", chromedp.Evaluate[[]string](axeRun, chromedp.EvalAwaitPromise))
}

// text is the text of the element the selector names.
func (w *pageWalk) text(sel string) string {
	w.t.Helper()
	return pagesGet(w.t, w.ctx, "text of "+sel, chromedp.Text(chromedp.CSS(sel)))
}

func (w *pageWalk) wantText(sel string, want ...string) {
	w.t.Helper()
	got := w.text(sel)
	for _, s := range want {
		if !strings.Contains(got, s) {
			w.t.Errorf("%s: %q lacks %q", sel, got, s)
		}
	}
}

// pagesTexts are what the walk checks in each language.
var pagesTexts = map[string]struct{ badPassword, readReports, profile, copied string }{
	"en": {"Incorrect username or password.", "Read your quarterly reports", "See your name and basic profile", "The secret is copied."},
	"de": {"Benutzername oder Passwort ist falsch.", "Ihre Quartalsberichte lesen", "Ihren Namen und Ihr Basisprofil sehen", "Das Geheimnis ist kopiert."},
}

// TestPagesInBrowser: in Chromium, with and without branding, in English
// and German, every page (sign-in, failed sign-in, consent with scope
// descriptions, the form_post answer, error, authorized apps, new app,
// secret shown once with its Copy button, apps list, sign-out
// confirmation, signed out) is in the browser's language, is
// screenshotted at 360 and 1280 px and has no WCAG 2.1 A/AA violation
// axe-core finds; the secret's Copy button puts the secret on the
// clipboard; and on sign-in and consent, Tab reaches the controls in
// reading order and the whole flow works from the keyboard alone.
func TestPagesInBrowser(t *testing.T) {
	axe := axeSource(t)
	ctx := startChromium(t, 1280, 800, 5*time.Minute)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.URL.Path == "/inaccessible" {
			fmt.Fprint(w, `<!doctype html><html><title>Bad</title><body><img src="data:,"><input type="text"></body></html>`)
			return
		}
		fmt.Fprintf(w, `<!doctype html><html lang="en"><title>Client</title><body><h1 id="callback">Client received</h1><p id="code">%s</p></body></html>`,
			html.EscapeString(r.FormValue("code")))
	}))
	t.Cleanup(app.Close)
	// The checker sees what is wrong with a page that has no language, an
	// image without text and an input without a label.
	if err := chromedp.Do(ctx, chromedp.Navigate(app.URL+"/inaccessible")); err != nil {
		t.Fatal(err)
	}
	bad := strings.Join(axeViolations(t, ctx, axe), "\n")
	for _, rule := range []string{"html-has-lang", "image-alt", "label"} {
		if !strings.Contains(bad, rule+" (") {
			t.Fatalf("axe-core did not report %s on a page that breaks it:\n%s", rule, bad)
		}
	}
	plain, branded := pagesGateway(t, app.URL, false), pagesGateway(t, app.URL, true)
	out := screenshotDir(t)
	t.Logf("screenshots in %s", out)

	_, challenge := pkce("pages")
	// An OpenID Connect request answered by form_post, so the walk sees
	// that page too.
	authorizeURL := func(g *gt.Gateway) string {
		return g.URL + "/oauth/authorize?" + url.Values{
			"response_type": {"code"}, "client_id": {"reports"}, "state": {"s"}, "nonce": {"n"}, "response_mode": {"form_post"},
			"scope": {"openid profile reports.read reports.write archive"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
		}.Encode()
	}
	// fresh forgets the previous walk's session and sets the language.
	fresh := func(t *testing.T, lang string) {
		t.Helper()
		if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": lang + ";q=1, en;q=0.5"}}); err != nil {
			t.Fatal(err)
		}
	}

	for _, gw := range []struct {
		name string
		g    *gt.Gateway
	}{{"plain", plain}, {"branded", branded}} {
		for _, lang := range []string{"en", "de"} {
			t.Run(gw.name+"-"+lang, func(t *testing.T) {
				w := &pageWalk{t: t, ctx: ctx, axe: axe, out: out, name: gw.name + "-" + lang, lang: lang}
				texts := pagesTexts[lang]
				fresh(t, lang)
				for _, perm := range []string{"clipboard-read", "clipboard-write"} {
					if _, err := chromedp.CallBrowser(ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
						Permission: &cdpbrowser.PermissionDescriptor{Name: perm}, Setting: "granted", Origin: gw.g.URL}); err != nil {
						t.Fatalf("granting %s: %v", perm, err)
					}
				}

				w.do("sign-in page", chromedp.Navigate(authorizeURL(gw.g)), chromedp.WaitVisible(chromedp.ID("username")))
				w.check("1-sign-in")
				w.do("a wrong password",
					chromedp.SendKeys(chromedp.ID("username"), "alice"),
					chromedp.SendKeys(chromedp.ID("password"), "wrong"),
					chromedp.Click(chromedp.ID("signin")),
					chromedp.WaitVisible(chromedp.CSS(`[role=alert]`)))
				w.wantText(`[role=alert]`, texts.badPassword)
				w.check("2-sign-in-failed")
				w.do("sign in",
					chromedp.SendKeys(chromedp.ID("password"), "alice-pw"),
					chromedp.Click(chromedp.ID("signin")),
					chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)))
				w.wantText(`ul.scopes`, texts.readReports, "reports.read", texts.profile, "archive")
				w.check("3-consent")
				// The form_post answer submits itself: scripts are off while it
				// loads, so it stays to be checked, then on for axe-core.
				scripts := func(off bool) chromedp.Action[chromedp.Void] {
					return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
						_, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: off})
						return err
					})
				}
				w.do("allow", scripts(true), chromedp.Click(chromedp.CSS(`button[value=allow]`)), chromedp.WaitVisible(chromedp.CSS(`#response button`)), scripts(false))
				w.check("4-form-post")
				w.do("continue", chromedp.Click(chromedp.CSS(`#response button`)), chromedp.WaitVisible(chromedp.ID("callback")))

				w.do("an error page", chromedp.Navigate(gw.g.URL+"/oauth/authorize?response_type=code&client_id=nobody"), chromedp.WaitVisible(chromedp.CSS(`[role=alert]`)))
				w.check("5-error")

				w.do("the apps page", chromedp.Navigate(gw.g.URL+"/oauth/apps"), chromedp.WaitVisible(chromedp.ID("authorized")))
				w.wantText(`#authorized`, "Quarterly Reports", texts.readReports, "archive")
				w.check("6-authorized-apps")
				w.do("the new app form", chromedp.Click(chromedp.ID("new-app-link")), chromedp.WaitVisible(chromedp.ID("new-app")))
				w.wantText(`#new-app`, texts.readReports)
				w.check("7-new-app")
				w.do("create an app",
					chromedp.SendKeys(chromedp.ID("client_name"), "Alice's Reader"),
					chromedp.SendKeys(chromedp.ID("redirect_uris"), app.URL+"/cb"),
					chromedp.Click(chromedp.CSS(`input[name=scope][value="reports.read"]`)),
					chromedp.Click(chromedp.ID("create")),
					chromedp.WaitVisible(chromedp.ID("client-secret")))
				secret := w.text("#client-secret")
				w.check("8-secret-shown-once")
				w.do("copy the secret", chromedp.Click(chromedp.ID("copy")),
					chromedp.Poll[chromedp.Void](`document.getElementById("copy-status").textContent !== ""`))
				if got := w.text("#copy-status"); got != texts.copied {
					t.Errorf("copy status %q, want %q", got, texts.copied)
				}
				if clip := pagesGet(t, ctx, "read the clipboard", chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise)); clip != secret || len(secret) != 43 {
					t.Errorf("clipboard %q, secret %q", clip, secret)
				}
				w.do("back to the list", chromedp.Click(chromedp.ID("back")), chromedp.WaitVisible(chromedp.ID("apps")))
				w.wantText(`#apps`, "Alice's Reader")
				w.check("9-apps-list")
				// Revoked, the client asks for consent again in the next walk.
				w.do("revoke", chromedp.Click(chromedp.CSS(`button[data-client="reports"]`)), chromedp.WaitVisible(chromedp.ID("no-authorized")))

				w.do("sign out at the end_session endpoint", chromedp.Navigate(gw.g.URL+"/oauth/end_session"), chromedp.WaitVisible(chromedp.CSS(`button[name=confirm]`)))
				w.check("10-sign-out")
				w.do("confirm", chromedp.Click(chromedp.CSS(`button[name=confirm]`)), chromedp.WaitNotPresent(chromedp.CSS(`button[name=confirm]`)), chromedp.WaitVisible(chromedp.CSS(`h1`)))
				w.check("11-signed-out")
			})
		}
	}

	// Keyboard only: the username has the focus; Tab goes to the password,
	// the button, then the support link of a branded page; Shift+Tab comes
	// back and Enter signs in. On the consent screen Tab goes through "Not
	// you?", Deny, Allow (and the support link); Enter on Allow returns to
	// the client.
	for _, gw := range []struct {
		name  string
		g     *gt.Gateway
		extra []string
	}{{"plain", plain, nil}, {"branded", branded, []string{"support"}}} {
		t.Run("keyboard-"+gw.name, func(t *testing.T) {
			fresh(t, "en")
			press := func(key string, opts ...chromedp.KeyOption) string {
				t.Helper()
				if err := chromedp.Do(ctx, chromedp.KeyEvent(key, opts...)); err != nil {
					t.Fatal(err)
				}
				return pagesGet(t, ctx, "focused element", chromedp.Evaluate[string](`(e => !e || e === document.body ? "body" :
					e.id || e.tagName.toLowerCase() + (e.name ? "[name=" + e.name + "]" : "") + (e.value ? "[value=" + e.value + "]" : ""))(document.activeElement)`))
			}
			tabs := func(n int, back bool) []string {
				t.Helper()
				var opts []chromedp.KeyOption
				if back {
					opts = append(opts, chromedp.KeyModifiers(chromedp.ModifierShift))
				}
				var seen []string
				for range n {
					seen = append(seen, press(kb.Tab, opts...))
				}
				return seen
			}
			wantOrder := func(page string, got, want []string) {
				t.Helper()
				if strings.Join(got, " ") != strings.Join(want, " ") {
					t.Fatalf("%s: Tab order %v, want %v", page, got, want)
				}
			}
			if err := chromedp.Do(ctx, chromedp.Navigate(authorizeURL(gw.g)), chromedp.WaitVisible(chromedp.ID("username"))); err != nil {
				t.Fatal(err)
			}
			order := []string{press("alice")}
			order = append(order, tabs(1, false)...)
			press("alice-pw")
			order = append(order, tabs(1+len(gw.extra), false)...)
			wantOrder("sign-in", order, append([]string{"username", "password", "signin"}, gw.extra...))
			wantOrder("sign-in, backwards", tabs(len(gw.extra), true), []string{"signin"}[:len(gw.extra)])
			if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`))); err != nil {
				t.Fatalf("Enter on Sign in: %v", err)
			}
			wantOrder("consent", tabs(3+len(gw.extra), false),
				append([]string{"not-you", "button[name=consent][value=deny]", "button[name=consent][value=allow]"}, gw.extra...))
			wantOrder("consent, backwards", tabs(len(gw.extra), true), []string{"button[name=consent][value=allow]"}[:len(gw.extra)])
			if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("callback"))); err != nil {
				t.Fatalf("Enter on Allow: %v", err)
			}
		})
	}
}
