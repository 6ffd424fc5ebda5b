package selfservice

import (
	"net/http"

	"github.com/caddyoauth/gateway/caddyoauth/pages"
)

// The pages are those of the consent screen (package pages): one layout,
// the same catalogues, languages and branding. Their forms post only to
// the gateway, which their Content-Security-Policy says.

// render writes a page in the request's language. Without apps it gets an
// empty pages.Apps, so it has the wide layout and the link back.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, d *pages.Data) error {
	if d.Apps == nil {
		d.Apps = &pages.Apps{}
	}
	d.Apps.Home = Path
	return h.pages().Render(w, r, status, name, d, pages.FormActionSelf)
}

func (h *Handler) pages() *pages.Set { return h.cfg.Authorizer.Pages() }

// errorTitles name the error page's title by status.
var errorTitles = map[int]string{
	http.StatusBadRequest:         "invalid_request",
	http.StatusForbidden:          "refused",
	http.StatusNotFound:           "not_found",
	http.StatusMethodNotAllowed:   "method_not_allowed",
	http.StatusServiceUnavailable: "unavailable",
}

// renderError shows an error page; msg names a message of the catalogues
// (error.<msg>).
func (h *Handler) renderError(w http.ResponseWriter, r *http.Request, status int, msg string, args ...string) error {
	p := h.pages()
	return h.render(w, r, status, "error.html", &pages.Data{Status: status,
		Title: p.Text(r, "error.title."+errorTitles[status]), Message: p.Text(r, "error."+msg, args...)})
}
