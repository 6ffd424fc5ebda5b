// Package pages renders the pages people see: the sign-in, consent, error
// and OpenID Connect screens of the authorization server and the
// self-service /oauth/apps pages. They share one layout and style, take
// their texts from message catalogues in the person's language
// (Accept-Language among the shipped and the operator's languages), show
// scopes by their descriptions and carry the operator's branding. It has
// no Caddy and no OAuth in it.
package pages

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Files are the templates. layout.html defines "layout", the page around
// every screen; components.html the parts the /oauth/apps pages share;
// each other file defines "title" and "content" for one page.
var Files = []string{
	"layout.html", "components.html",
	"login.html", "consent.html", "error.html", "signed_out.html", "form_post.html", "end_session.html",
	"apps.html", "app_new.html", "app_edit.html", "app_secret.html",
}

// shared are the files parsed into every page's set.
var shared = Files[:2]

//go:embed templates/*.html
var embedded embed.FS

// Data is what the templates see.
type Data struct {
	// AppName is the client's display name, ClientID its client_id.
	AppName, ClientID string
	// Username is the signed-in person, or what was typed in the form.
	Username string
	// Scopes are the scopes asked for; the template function scope gives
	// each one's description.
	Scopes []string
	// RedirectTo is where the browser is sent back to: the host of the
	// redirect URI (with its port), or its scheme for an app's own scheme.
	RedirectTo string
	// UserRegistered: a user, not the operator, registered the app.
	UserRegistered bool
	// Unvetted: nobody vetted the app: AppName is the name it gave itself
	// and RedirectTo the host it chose. ClientHost serves its description
	// when it is a client ID metadata document; empty when it registered.
	Unvetted   bool
	ClientHost string
	// RequestID and CSRFToken go into hidden fields request_id and
	// csrf_token of the forms.
	RequestID, CSRFToken string
	// Error is a message for the form, such as a failed sign-in.
	Error string
	// LoginURL, ConsentURL and LogoutURL are the forms' actions.
	LoginURL, ConsentURL, LogoutURL string
	// Title, Message and Status describe an error page.
	Title, Message string
	Status         int

	// FormAction and FormFields make the form that form_post.html and
	// end_session.html post; ScriptNonce lets the scripts of the page
	// alone run (the Content-Security-Policy names it).
	FormAction  template.URL
	FormFields  []FormField
	ScriptNonce string
	// EndSessionURL is the action of the sign-out confirmation.
	EndSessionURL string

	// Apps is what the /oauth/apps pages show; nil on the other pages.
	Apps *Apps

	// Lang is the page's language tag and Dir its direction (ltr or
	// rtl); Brand is the operator's branding. Render sets them.
	Lang, Dir string
	Brand     Brand
}

// Wide reports whether the page takes the wide layout: the /oauth/apps
// pages but their error pages.
func (d *Data) Wide() bool { return d.Apps != nil && d.Status == 0 }

// FormField is a hidden field of a form.
type FormField struct{ Name, Value string }

// Apps is what the self-service pages show.
type Apps struct {
	// Home is the path of the pages, /oauth/apps.
	Home string
	// Clients are the signed-in user's apps; Authorized the apps that
	// hold tokens or a consent of theirs.
	Clients    []App
	Authorized []AuthorizedApp
	// Form is the new or edit form; Grants and Scopes what it offers.
	Form           *AppForm
	Grants, Scopes []string
	// Client is the app of the edit and secret pages; Secret its new
	// secret, shown once; Notice says what just happened.
	Client *App
	Secret string
	Notice string
}

// App is one of the user's apps.
type App struct {
	ID, Name     string
	Public       bool
	RedirectURIs []string
}

// AuthorizedApp is an app holding tokens or a consent of the user.
type AuthorizedApp struct {
	ClientID, Name string
	Scopes         []string
	// Since is when its tokens were issued; zero for a consent alone.
	Since time.Time
}

// AppForm is the new or edit app form.
type AppForm struct {
	Name         string
	RedirectURIs string // one per line
	Grants       []string
	Scopes       []string
	Public       bool
}

// Has reports whether list holds v, for the form's checkboxes.
func (f *AppForm) Has(list []string, v string) bool { return slices.Contains(list, v) }

// Options configure a Set.
type Options struct {
	// Templates is a folder of templates replacing the embedded ones file
	// by file. Default: the embedded templates only.
	Templates string
	// Languages are the operator's message files, by language tag: each
	// adds a language or overrides messages of a shipped one.
	Languages map[string]string
	// Branding is applied to every page. Default: none.
	Branding *Branding
	// Scopes describe scopes, by name.
	Scopes map[string]*ScopeText
}

// ScopeText describes a scope to the people asked for it.
type ScopeText struct {
	// Description is shown for every language without one of its own.
	Description string `json:"description"`
	// Languages are descriptions by language tag. Default: none.
	Languages map[string]string `json:"languages,omitempty"`
}

// Set is the parsed pages in every language.
type Set struct {
	langs    map[string]*language // by lower-case tag
	fallback *language            // English
	brand    Brand
	imgSrc   string
	scopes   map[string]*ScopeText
}

// Default returns the embedded pages with no branding.
func Default() *Set {
	s, err := Load(Options{})
	if err != nil {
		panic(err) // the embedded templates and catalogues are tested
	}
	return s
}

// Load reads the catalogues and parses the templates for every language,
// rendering each page once with sample data so that a broken template or
// a message it names that does not exist fails here, not in front of a
// person.
func Load(o Options) (*Set, error) {
	s := &Set{scopes: o.Scopes}
	var err error
	if s.brand, s.imgSrc, err = o.Branding.view(); err != nil {
		return nil, err
	}
	for name, st := range o.Scopes {
		if st == nil || st.Description == "" {
			return nil, fmt.Errorf("scope %q: a description is needed", name)
		}
		for tag := range st.Languages {
			if !ValidTag(tag) {
				return nil, fmt.Errorf("scope %q: %q is not a language tag", name, tag)
			}
		}
	}
	if s.langs, err = loadLanguages(o.Languages); err != nil {
		return nil, err
	}
	s.fallback = s.langs["en"]
	src, err := readTemplates(o.Templates)
	if err != nil {
		return nil, err
	}
	for _, l := range s.langs {
		if err := s.parse(l, src, o.Templates); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func readTemplates(dir string) (map[string]string, error) {
	src := map[string]string{}
	for _, name := range Files {
		text, err := fs.ReadFile(embedded, "templates/"+name)
		if err != nil {
			return nil, err
		}
		src[name] = string(text)
		if dir == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("templates: %v", err)
		}
		src[name] = string(b)
	}
	return src, nil
}

// parse builds the page templates of one language.
func (s *Set) parse(l *language, src map[string]string, dir string) error {
	where := "the embedded set"
	if dir != "" {
		where = dir + " or embedded"
	}
	funcs := s.funcs(l)
	l.pages = map[string]*template.Template{}
	for _, name := range Files[len(shared):] {
		t := template.New("page").Funcs(funcs)
		for _, f := range append(slices.Clone(shared), name) {
			// Parse errors name the file and line: "template: login.html:3: ...".
			if _, err := t.New(f).Parse(src[f]); err != nil {
				return fmt.Errorf("templates: %v (in %s)", err, where)
			}
		}
		if t.Lookup("layout") == nil {
			return fmt.Errorf("templates: layout.html must define \"layout\"")
		}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, "layout", sample(name, l, s.brand)); err != nil {
			return fmt.Errorf("templates: %s (language %s): %v", name, l.tag, err)
		}
		l.pages[name] = t
	}
	return nil
}

// sample is data to render a page with at load time.
func sample(name string, l *language, b Brand) *Data {
	d := &Data{AppName: "App", ClientID: "app", Username: "user", Scopes: []string{"read"}, Status: 400,
		Title: "Title", Message: "Message", Error: "Error", RedirectTo: "app.example", ClientHost: "app.example",
		FormFields: []FormField{{"state", "s"}}, ScriptNonce: "nonce", Lang: l.tag, Dir: l.dir, Brand: b}
	if strings.HasPrefix(name, "app") {
		app := App{ID: "c_1", Name: "App", RedirectURIs: []string{"https://app.example/cb"}}
		d.Apps = &Apps{Home: "/oauth/apps", Clients: []App{app}, Client: &app, Secret: "secret", Notice: "Notice",
			Authorized: []AuthorizedApp{{ClientID: "c_1", Name: "App", Scopes: []string{"read"}, Since: time.Unix(0, 0)}},
			Form:       &AppForm{Grants: []string{"authorization_code"}}, Grants: []string{"authorization_code", "password"}, Scopes: []string{"read"}}
	}
	return d
}

// funcs are the template functions of one language.
func (s *Set) funcs(l *language) template.FuncMap {
	return template.FuncMap{
		// t is a message of the catalogue with its {placeholders} filled
		// from name, value pairs; values are escaped unless they are
		// template.HTML (such as strong's).
		"t": l.html,
		// strong is a value in bold, with an optional id.
		"strong": strong,
		// scope is a scope's description, or "" for a scope nobody
		// described.
		"scope": func(name string) string { return s.scopeText(l, name) },
		// grant is the label of a grant type.
		"grant": func(name string) string {
			if v, ok := l.msgs["grant."+name]; ok {
				return v
			}
			return name
		},
	}
}

func strong(v any, id ...string) template.HTML {
	s, ok := v.(template.HTML)
	if !ok {
		s = template.HTML(template.HTMLEscapeString(fmt.Sprint(v)))
	}
	if len(id) > 0 {
		return template.HTML(`<strong id="`+template.HTMLEscapeString(id[0])+`">`) + s + "</strong>"
	}
	return "<strong>" + s + "</strong>"
}

// scopeText is the description of a scope in l: the operator's for l
// (or its base language), else the operator's default, else the
// catalogue's (the OpenID Connect scopes), else "".
func (s *Set) scopeText(l *language, name string) string {
	if st := s.scopes[name]; st != nil {
		for _, tag := range l.chain {
			for t, v := range st.Languages {
				if strings.EqualFold(t, tag) {
					return v
				}
			}
		}
		return st.Description
	}
	return l.msgs["scope."+name]
}

// Option changes how a page is sent.
type Option int

// FormActionSelf adds form-action 'self' to the page's policy: its forms
// post to the gateway and are answered with redirects on it.
const FormActionSelf Option = 1

// SetHeaders keeps a page out of frames and caches and lets it load
// nothing but its own style and images.
func SetHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", csp("", "", false))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// csp is the pages' Content-Security-Policy: no script but the one the
// nonce names, inline style, images from the gateway (and the logo's
// origin). The screens of the authorization code flow have no
// form-action: browsers apply it to the redirect that follows a form
// post, which would block the consent form's redirect to the client.
func csp(nonce, imgSrc string, formAction bool) string {
	var b strings.Builder
	b.WriteString("default-src 'none'; ")
	if nonce != "" {
		b.WriteString("script-src 'nonce-" + nonce + "'; ")
	}
	b.WriteString("style-src 'unsafe-inline'; img-src 'self' data:")
	if imgSrc != "" {
		b.WriteString(" " + imgSrc)
	}
	if formAction {
		b.WriteString("; form-action 'self'")
	}
	b.WriteString("; base-uri 'none'; frame-ancestors 'none'")
	return b.String()
}

// Nonce returns a fresh script nonce.
func Nonce() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Render writes a page in the request's language. The page is rendered
// whole before anything is sent: on a template error nothing is written
// and the caller answers.
func (s *Set) Render(w http.ResponseWriter, r *http.Request, status int, name string, d *Data, opts ...Option) error {
	l := s.pick(r)
	t := l.pages[name]
	if t == nil {
		return fmt.Errorf("no page %q", name)
	}
	d.Lang, d.Dir, d.Brand = l.tag, l.dir, s.brand
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", d); err != nil {
		return err
	}
	SetHeaders(w)
	h := w.Header()
	h.Set("Content-Security-Policy", csp(d.ScriptNonce, s.imgSrc, slices.Contains(opts, FormActionSelf)))
	h.Set("Content-Language", l.tag)
	addVary(h, "Accept-Language")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	return nil
}

func addVary(h http.Header, name string) {
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), name) {
				return
			}
		}
	}
	h.Add("Vary", name)
}

// Text is a message in the request's language, its placeholders filled
// from name, value pairs.
func (s *Set) Text(r *http.Request, key string, args ...string) string {
	l := s.pick(r)
	v, ok := l.msgs[key]
	if !ok {
		return key
	}
	return fill(v, func(name string) (string, bool) {
		for i := 0; i+1 < len(args); i += 2 {
			if args[i] == name {
				return args[i+1], true
			}
		}
		return "", false
	})
}
