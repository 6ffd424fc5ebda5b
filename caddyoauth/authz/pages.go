package authz

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"go.uber.org/zap"
)

// PageFiles are the templates of the screens. layout.html defines
// "layout", the page around every screen; each other file defines "title"
// and "content" for one screen.
var PageFiles = []string{"layout.html", "login.html", "consent.html", "error.html", "signed_out.html", "form_post.html", "end_session.html"}

//go:embed templates/*.html
var embeddedPages embed.FS

// PageData is what the templates see.
type PageData struct {
	// AppName is the client's display name, ClientID its client_id.
	AppName, ClientID string
	// Username is the signed-in person, or what was typed in the form.
	Username string
	// Scopes are the scopes asked for.
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
	// csrf_token of every form.
	RequestID, CSRFToken string
	// Error is a message for the form, such as a failed sign-in.
	Error string
	// LoginURL, ConsentURL and LogoutURL are the forms' actions.
	LoginURL, ConsentURL, LogoutURL string
	// Title, Message and Status describe an error page.
	Title, Message string
	Status         int

	// FormAction and FormFields make the form that form_post.html and
	// end_session.html post; ScriptNonce lets the script of that page
	// alone run.
	FormAction  template.URL
	FormFields  []FormField
	ScriptNonce string
	// EndSessionURL is the action of the sign-out confirmation.
	EndSessionURL string
}

// FormField is a hidden field of a form.
type FormField struct{ Name, Value string }

// safeURL marks a URL the gateway checked as safe for a form's action.
func safeURL(u string) template.URL { return template.URL(u) }

// Pages holds the parsed screen templates.
type Pages struct {
	sets map[string]*template.Template
}

// DefaultPages returns the embedded templates.
func DefaultPages() *Pages {
	p, err := LoadPages("")
	if err != nil {
		panic(err) // the embedded templates are tested
	}
	return p
}

// LoadPages parses the screen templates, taking each file from dir when it
// is there and the embedded one otherwise. An empty dir uses only the
// embedded templates.
func LoadPages(dir string) (*Pages, error) {
	src := map[string]string{}
	for _, name := range PageFiles {
		text, err := fs.ReadFile(embeddedPages, "templates/"+name)
		if err != nil {
			return nil, err
		}
		src[name] = string(text)
		if dir == "" {
			continue
		}
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("templates: %v", err)
		}
		src[name] = string(b)
	}
	p := &Pages{sets: map[string]*template.Template{}}
	for _, name := range PageFiles[1:] {
		t, err := template.New("layout.html").Parse(src["layout.html"])
		if err != nil {
			return nil, fmt.Errorf("templates: layout.html (in %s or embedded): %v", dirOr(dir), err)
		}
		if _, err := t.New(name).Parse(src[name]); err != nil {
			return nil, fmt.Errorf("templates: %s (in %s or embedded): %v", name, dirOr(dir), err)
		}
		if t.Lookup("layout") == nil {
			return nil, fmt.Errorf("templates: layout.html must define \"layout\"")
		}
		// Render once with sample data so a broken template fails at load
		// time, not in front of a person.
		var buf bytes.Buffer
		sample := &PageData{AppName: "App", ClientID: "app", Scopes: []string{"read"}, Status: 400}
		if err := t.ExecuteTemplate(&buf, "layout", sample); err != nil {
			return nil, fmt.Errorf("templates: %s: %v", name, err)
		}
		p.sets[name] = t
	}
	return p, nil
}

func dirOr(dir string) string {
	if dir == "" {
		return "the embedded set"
	}
	return dir
}

// setPageHeaders keeps the screens out of frames and caches, and lets them
// load nothing but their own inline style. The policy has no form-action:
// browsers apply it to the redirect that follows a form post, which would
// block the consent form's redirect to the client.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// render writes a screen. The page is rendered whole before anything is
// sent, so a template error gives a plain 500 instead of half a page.
func (a *Authorizer) render(w http.ResponseWriter, status int, name string, data *PageData) {
	setPageHeaders(w)
	if data.ScriptNonce != "" {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+data.ScriptNonce+"'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'")
	}
	var buf bytes.Buffer
	if err := a.cfg.Pages.sets[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		a.log.Error("rendering a page", zap.String("template", name), zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
