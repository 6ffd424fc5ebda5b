package pages

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// render renders a page for a request with the given Accept-Language.
func render(t *testing.T, s *Set, accept, name string, d *Data, opts ...Option) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", "/oauth/login", nil)
	if accept != "" {
		req.Header.Set("Accept-Language", accept)
	}
	rec := httptest.NewRecorder()
	if err := s.Render(rec, req, http.StatusOK, name, d, opts...); err != nil {
		t.Fatalf("render %s: %v", name, err)
	}
	return rec
}

// TestLoadTemplates: files in the operator's folder replace the embedded
// ones one by one; a broken one fails at load, naming the file and line.
func TestLoadTemplates(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "login.html", `{{define "title"}}Log in{{end}}{{define "content"}}<h1>ACME login for {{.AppName}}</h1>{{end}}`)
	s, err := Load(Options{Templates: dir})
	if err != nil {
		t.Fatal(err)
	}
	if body := render(t, s, "", "login.html", &Data{AppName: "Web"}).Body.String(); !strings.Contains(body, "ACME login for Web") || !strings.Contains(body, `<html lang="en">`) {
		t.Fatalf("custom login page: %s", body)
	}
	rec := render(t, s, "", "consent.html", &Data{AppName: "Web", Username: "ann"})
	if !strings.Contains(rec.Body.String(), "wants to access your account") {
		t.Fatalf("consent did not fall back to the embedded page: %s", rec.Body)
	}
	for _, h := range []string{"X-Frame-Options", "Content-Security-Policy", "Cache-Control"} {
		if rec.Header().Get(h) == "" {
			t.Errorf("page lacks %s", h)
		}
	}

	for content, want := range map[string]string{
		`{{define "content"}}{{.Nope}}{{end}}{{define "title"}}x{{end}}`:           "consent.html",
		`{{define "title"}}x{{end}}` + "\n\n" + `{{define "content"}}{{end`:        "consent.html:3",
		`{{define "title"}}x{{end}}{{define "content"}}{{t "no.such.key"}}{{end}}`: `no message "no.such.key"`,
	} {
		write(t, dir, "consent.html", content)
		if _, err := Load(Options{Templates: dir}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("template %q: error %v, want one naming %s", content, err, want)
		}
	}
}

// TestShippedCatalogues: every shipped language has exactly English's
// messages, with the same placeholders, and a direction.
func TestShippedCatalogues(t *testing.T) {
	en := shippedCatalogue("en")
	if len(en) < 100 {
		t.Fatalf("English has %d messages", len(en))
	}
	placeholders := func(s string) []string {
		out := placeholderRE.FindAllString(s, -1)
		slices.Sort(out)
		return out
	}
	for _, tag := range Shipped {
		m := shippedCatalogue(tag)
		for k, v := range en {
			got, ok := m[k]
			if !ok {
				t.Errorf("%s lacks %s", tag, k)
				continue
			}
			if !slices.Equal(placeholders(got), placeholders(v)) {
				t.Errorf("%s %s: placeholders %v, English has %v", tag, k, placeholders(got), placeholders(v))
			}
			if strings.TrimSpace(got) == "" {
				t.Errorf("%s %s is empty", tag, k)
			}
		}
		for k := range m {
			if _, ok := en[k]; !ok {
				t.Errorf("%s has %s, which English lacks", tag, k)
			}
		}
		if d := m["page.dir"]; d != "ltr" && d != "rtl" {
			t.Errorf("%s: page.dir %q", tag, d)
		}
	}
	// Every page renders in every language, in that language.
	s := Default()
	for _, tag := range Shipped {
		l := s.langs[tag]
		for name := range l.pages {
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("Accept-Language", tag)
			rec := httptest.NewRecorder()
			if err := s.Render(rec, req, 200, name, sample(name, l, s.brand)); err != nil {
				t.Errorf("%s %s: %v", tag, name, err)
			} else if !strings.Contains(rec.Body.String(), `<html lang="`+tag+`">`) {
				t.Errorf("%s %s is not in %s", tag, name, tag)
			}
		}
	}
}

// TestAcceptLanguage: the page's language is the most preferred one the
// gateway has, whole or by base language, else English; lang,
// Content-Language and Vary follow.
func TestAcceptLanguage(t *testing.T) {
	dir := t.TempDir()
	pt := write(t, dir, "pt-BR.json", `{"login.heading": "Entrar"}`)
	s, err := Load(Options{Languages: map[string]string{"pt-BR": pt}})
	if err != nil {
		t.Fatal(err)
	}
	for accept, want := range map[string]string{
		"":                                "en",
		"de":                              "de",
		"DE-at":                           "de",
		"de-CH, de;q=0.9, en;q=0.8":       "de",
		"fr;q=0.5, ja":                    "ja",
		"it, es;q=0.1":                    "es",
		"it":                              "en",
		"*":                               "en",
		"de;q=0, fr":                      "fr",
		"de;q=2, fr;q=0.4":                "fr",
		"de;x=1;q=0.1, ja;q=0.2":          "ja",
		"pt":                              "pt-BR",
		"pt-br":                           "pt-BR",
		"x!y, ja":                         "ja",
		strings.Repeat("it, ", 40) + "de": "en", // ranges past the first 16 are not read
	} {
		rec := render(t, s, accept, "login.html", &Data{AppName: "App"})
		body := rec.Body.String()
		if !strings.Contains(body, `<html lang="`+want+`">`) || rec.Header().Get("Content-Language") != want {
			t.Errorf("Accept-Language %q: Content-Language %q, want %s", accept, rec.Header().Get("Content-Language"), want)
		}
		if v := rec.Header().Values("Vary"); !slices.Equal(v, []string{"Accept-Language"}) {
			t.Errorf("Vary %q", v)
		}
	}
	if body := render(t, s, "pt-BR", "login.html", &Data{AppName: "App"}).Body.String(); !strings.Contains(body, "<h1>Entrar</h1>") || !strings.Contains(body, "Password") {
		t.Fatalf("pt-BR: its own message, English for the rest:\n%s", body)
	}
	for lang, heading := range map[string]string{"de": "möchte auf Ihr Konto zugreifen", "fr": "souhaite accéder à votre compte",
		"es": "quiere acceder a tu cuenta", "ja": "があなたのアカウントへのアクセスを求めています"} {
		if body := render(t, s, lang, "consent.html", &Data{AppName: "App"}).Body.String(); !strings.Contains(body, heading) {
			t.Errorf("%s consent: %s", lang, body)
		}
	}
}

// TestOperatorLanguages: a file adds a language or overrides messages of
// a shipped one; a regional language builds on its base; a message that
// English lacks, a placeholder it lacks, a bad direction or bad JSON
// fails the load naming the file.
func TestOperatorLanguages(t *testing.T) {
	dir := t.TempDir()
	it := write(t, dir, "it.json", `{"login.heading": "Accedi", "login.sub": "per continuare su {app}"}`)
	de := write(t, dir, "de.json", `{"login.heading": "Einloggen"}`)
	s, err := Load(Options{Languages: map[string]string{"it": it, "de": de, "de-CH": write(t, dir, "de-CH.json", `{"login.submit": "Anmelden!"}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if body := render(t, s, "it", "login.html", &Data{AppName: "App"}).Body.String(); !strings.Contains(body, "<h1>Accedi</h1>") || !strings.Contains(body, "per continuare su <strong>App</strong>") {
		t.Fatalf("it: %s", body)
	}
	if body := render(t, s, "de", "login.html", &Data{AppName: "App"}).Body.String(); !strings.Contains(body, "<h1>Einloggen</h1>") || !strings.Contains(body, "Passwort") {
		t.Fatalf("de override: %s", body)
	}
	if body := render(t, s, "de-CH", "login.html", &Data{AppName: "App"}).Body.String(); !strings.Contains(body, "<h1>Einloggen</h1>") || !strings.Contains(body, "Anmelden!") || !strings.Contains(body, `lang="de-CH"`) {
		t.Fatalf("de-CH over the operator's de: %s", body)
	}
	for content, want := range map[string]string{
		`{"login.nope": "x"}`:                `unknown message "login.nope"`,
		`{"login.sub": "für {application}"}`: "unknown placeholder {application}",
		`{"page.dir": "up"}`:                 "page.dir",
		`{"login.sub": `:                     "bad.json",
	} {
		path := write(t, dir, "bad.json", content)
		if _, err := Load(Options{Languages: map[string]string{"nl": path}}); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "bad.json") {
			t.Errorf("%s: error %v, want one naming bad.json and %s", content, err, want)
		}
	}
	if _, err := Load(Options{Languages: map[string]string{"nl": filepath.Join(dir, "missing.json")}}); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("a missing file: %v", err)
	}
	if _, err := Load(Options{Languages: map[string]string{"not a tag": it}}); err == nil {
		t.Error("a bad tag was accepted")
	}
}

// TestMessagesAreEscaped: a message from the operator's file and the
// values put in it are text: neither can add markup.
func TestMessagesAreEscaped(t *testing.T) {
	dir := t.TempDir()
	path := write(t, dir, "en.json", `{"login.sub": "<b>to</b> {app}", "login.heading": "<script>alert(1)</script>"}`)
	s, err := Load(Options{Languages: map[string]string{"en": path}})
	if err != nil {
		t.Fatal(err)
	}
	body := render(t, s, "", "login.html", &Data{AppName: `<img src=x onerror=alert(1)>`}).Body.String()
	if strings.Contains(body, "<b>") || strings.Contains(body, "<script>") || strings.Contains(body, "<img") {
		t.Fatalf("markup got through:\n%s", body)
	}
	if !strings.Contains(body, "&lt;b&gt;to&lt;/b&gt; <strong>&lt;img src=x onerror=alert(1)&gt;</strong>") {
		t.Fatalf("escaped message:\n%s", body)
	}
	if got := s.Text(httptest.NewRequest("GET", "/", nil), "apps.too_many", "count", "7"); !strings.HasPrefix(got, "You already have 7 apps") {
		t.Fatalf("Text: %q", got)
	}
}

var liRE = regexp.MustCompile(`<li>.*?</li>`)

// TestScopeDescriptions: a scope shows the operator's description in the
// page's language, or in its base language, or the default one; the
// OpenID Connect scopes have the catalogue's; any other scope its name.
func TestScopeDescriptions(t *testing.T) {
	s, err := Load(Options{Scopes: map[string]*ScopeText{
		"reports.read": {Description: "Read your quarterly reports", Languages: map[string]string{"de": "Ihre Quartalsberichte lesen", "fr-CA": "Lire vos rapports (CA)"}},
		"profile":      {Description: "Your profile at Acme"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	d := func() *Data {
		return &Data{AppName: "App", Scopes: []string{"reports.read", "openid", "profile", "admin"}}
	}
	for accept, want := range map[string][]string{
		"": {`<li><span class="scope-desc">Read your quarterly reports</span><code class="scope-name">reports.read</code></li>`,
			`<li><span class="scope-desc">Know who you are</span><code class="scope-name">openid</code></li>`,
			`<li><span class="scope-desc">Your profile at Acme</span><code class="scope-name">profile</code></li>`,
			`<li>admin</li>`},
		"de-AT": {`<li><span class="scope-desc">Ihre Quartalsberichte lesen</span><code class="scope-name">reports.read</code></li>`,
			`<li><span class="scope-desc">Wissen, wer Sie sind</span><code class="scope-name">openid</code></li>`,
			`<li><span class="scope-desc">Your profile at Acme</span><code class="scope-name">profile</code></li>`,
			`<li>admin</li>`},
		"fr": {`<li><span class="scope-desc">Read your quarterly reports</span><code class="scope-name">reports.read</code></li>`},
	} {
		body := render(t, s, accept, "consent.html", d()).Body.String()
		items := strings.Join(liRE.FindAllString(body, -1), "\n")
		for _, w := range want {
			if !strings.Contains(items, w) {
				t.Errorf("Accept-Language %q: no %s in\n%s", accept, w, items)
			}
		}
	}
	apps := &Data{Apps: &Apps{Home: "/oauth/apps", Form: &AppForm{}, Scopes: []string{"reports.read"}, Grants: []string{"authorization_code", "password"}}}
	body := render(t, s, "de", "app_new.html", apps).Body.String()
	if !strings.Contains(body, "Ihre Quartalsberichte lesen<code class=\"scope-name\">reports.read</code>") {
		t.Fatalf("new app form: %s", body)
	}
	if !regexp.MustCompile(`(?s)value="password">.*?<span class="badge legacy">Veraltet</span>`).MatchString(body) {
		t.Fatalf("the password grant is not labelled legacy: %s", body)
	}
	if _, err := Load(Options{Scopes: map[string]*ScopeText{"x": {}}}); err == nil {
		t.Error("a scope without a description was accepted")
	}
	if _, err := Load(Options{Scopes: map[string]*ScopeText{"x": {Description: "X", Languages: map[string]string{"!!": "y"}}}}); err == nil {
		t.Error("a bad language tag was accepted")
	}
}

// TestBranding: the name, logo, colour and support link show on every
// page; an https logo's origin is allowed for images and nothing else;
// bad settings fail.
func TestBranding(t *testing.T) {
	s, err := Load(Options{Branding: &Branding{Name: "Acme API", Logo: "https://cdn.acme.example/logo.svg", Color: "#0B5FFF", SupportURL: "https://help.acme.example/oauth"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"login.html", "consent.html", "error.html", "signed_out.html", "end_session.html", "form_post.html"} {
		rec := render(t, s, "", name, &Data{AppName: "App", Title: "T", Message: "M", Status: 400, ScriptNonce: "n0nce"})
		body := rec.Body.String()
		for _, want := range []string{`<img src="https://cdn.acme.example/logo.svg" alt="" height="40"><span>Acme API</span>`,
			`--brand:#0b5fff;`, `<a href="https://help.acme.example/oauth" id="support">Help and support</a>`, " · Acme API</title>"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %s", name, want)
			}
		}
		csp := rec.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "img-src 'self' data: https://cdn.acme.example;") || !strings.Contains(csp, "script-src 'nonce-n0nce';") ||
			!strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "script-src 'unsafe-inline'") || strings.Contains(csp, "form-action") {
			t.Errorf("%s: CSP %q", name, csp)
		}
	}
	if csp := render(t, s, "", "apps.html", &Data{Apps: &Apps{}}, FormActionSelf).Header().Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self'") || strings.Contains(csp, "script-src") {
		t.Errorf("apps CSP %q", csp)
	}
	plain := render(t, Default(), "", "login.html", &Data{AppName: "App"})
	if body := plain.Body.String(); strings.Contains(body, "<header") || strings.Contains(body, "<footer") || !strings.Contains(body, "--brand:"+DefaultColor) {
		t.Errorf("without branding: %s", body)
	}
	if csp := plain.Header().Get("Content-Security-Policy"); csp != "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'" {
		t.Errorf("CSP without branding: %q", csp)
	}
	if body := render(t, mustLoad(t, Options{Branding: &Branding{Logo: "/brand/logo.png"}}), "de", "login.html", &Data{}).Body.String(); !strings.Contains(body, `<img src="/brand/logo.png" alt="Logo" height="40">`) {
		t.Errorf("a logo without a name: %s", body)
	}

	for _, b := range []Branding{
		{Color: "blue"}, {Color: "#12345"}, {Color: "#ggg"}, {Logo: "http://acme.example/logo.png"}, {Logo: "//evil.example/x.png"},
		{Logo: "javascript:alert(1)"}, {Logo: "/a b.png"}, {Logo: "https://user@acme.example/x.png"}, {Logo: "https://acme.example;script-src *"},
		{SupportURL: "http://help.example"}, {SupportURL: "javascript:alert(1)"}, {SupportURL: "/help"}, {Name: strings.Repeat("x", 201)}, {Name: "a\nb"},
	} {
		if _, err := Load(Options{Branding: &b}); err == nil {
			t.Errorf("branding %+v was accepted", b)
		}
	}
}

func mustLoad(t *testing.T, o Options) *Set {
	t.Helper()
	s, err := Load(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBrandContrast: whatever the brand colour, text on it and text in it
// on the pages' light backgrounds keep a contrast of at least 4.5:1.
func TestBrandContrast(t *testing.T) {
	vars := regexp.MustCompile(`--brand:(#\w+);--brand-fg:(#\w+);--brand-dark:(#\w+);--brand-ink:(#\w+)`)
	for _, c := range []string{"#ffffff", "#ffff00", "#0b5fff", "#808080", "#777777", "#00ff00", "#000000", "#ff6600", "#2563eb", "#f0f0f0"} {
		m := vars.FindStringSubmatch(string(brandCSS(c)))
		if m == nil {
			t.Fatalf("%s: %s", c, brandCSS(c))
		}
		bg, fg, ink := parseRGB(m[1]), parseRGB(m[2]), parseRGB(m[4])
		if r := contrast(bg, fg); r < 4.5 {
			t.Errorf("%s: text on it %s has contrast %.2f", c, m[2], r)
		}
		for _, light := range []rgb{white, pageGray} {
			if r := contrast(ink, light); r < 4.5 {
				t.Errorf("%s: ink %s on %s has contrast %.2f", c, m[4], light, r)
			}
		}
	}
}

// FuzzAcceptLanguage: any Accept-Language picks a language the gateway
// has, from at most maxRanges ranges, without panicking.
func FuzzAcceptLanguage(f *testing.F) {
	for _, seed := range []string{"de-CH, de;q=0.9, en;q=0.8", "*;q=0", "ja;q=NaN", "fr;q=1e9, es;;q=", ",,,;", "zh-Hant-TW"} {
		f.Add(seed)
	}
	s := Default()
	f.Fuzz(func(t *testing.T, header string) {
		if n := len(acceptLanguages([]string{header})); n > maxRanges {
			t.Fatalf("%d ranges", n)
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Accept-Language", header)
		if l := s.pick(req); l == nil || s.langs[strings.ToLower(l.tag)] != l {
			t.Fatalf("picked %v", l)
		}
	})
}
