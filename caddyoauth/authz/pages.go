package authz

import (
	"html/template"
	"net/http"

	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/pages"
)

// PageData is what the templates of the screens see.
type PageData = pages.Data

// FormField is a hidden field of a form.
type FormField = pages.FormField

// Pages holds the parsed screens in every language.
type Pages = pages.Set

// DefaultPages returns the embedded screens with no branding.
func DefaultPages() *Pages { return pages.Default() }

// safeURL marks a URL the gateway checked as safe for a form's action.
func safeURL(u string) template.URL { return template.URL(u) }

// Pages returns the screens, which the self-service pages share.
func (a *Authorizer) Pages() *Pages { return a.cfg.Pages }

// setPageHeaders keeps the screens out of frames and caches, and lets them
// load nothing but their own style and images.
func setPageHeaders(w http.ResponseWriter) { pages.SetHeaders(w) }

// render writes a screen in the request's language. A template error
// gives a plain 500 instead of half a page.
func (a *Authorizer) render(w http.ResponseWriter, r *http.Request, status int, name string, data *PageData) {
	if err := a.cfg.Pages.Render(w, r, status, name, data); err != nil {
		a.log.Error("rendering a page", zap.String("template", name), zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}

// text is a message of the catalogues in the request's language.
func (a *Authorizer) text(r *http.Request, key string, args ...string) string {
	return a.cfg.Pages.Text(r, key, args...)
}

// errorPage shows an error page: title and msg name messages of the
// catalogues (error.title.<title>, error.<msg>), args fill the message's
// placeholders.
func (a *Authorizer) errorPage(w http.ResponseWriter, r *http.Request, status int, title, msg string, args ...string) {
	a.render(w, r, status, "error.html", &PageData{Title: a.text(r, "error.title."+title), Message: a.text(r, "error."+msg, args...), Status: status})
}
