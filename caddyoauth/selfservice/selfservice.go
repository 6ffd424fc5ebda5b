// Package selfservice serves the pages where signed-in users manage their
// own OAuth clients (self-service clients) and the clients they authorized.
// The pages call them "apps". It has no Caddy in it: the oauth_server
// handler routes Path and everything below it to a Handler.
package selfservice

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/clients"
	"github.com/caddyoauth/gateway/caddyoauth/pages"
)

// Path is where signed-in users manage their own clients:
//
//	GET  /oauth/apps                                 your apps and the apps you authorized
//	GET  /oauth/apps/new                             the form for a new app
//	POST /oauth/apps/new                             create; shows the secret once
//	GET  /oauth/apps/{client_id}                     edit form
//	POST /oauth/apps/{client_id}                     save changes
//	POST /oauth/apps/{client_id}/secret              rotate; shows the secret once
//	POST /oauth/apps/{client_id}/delete              delete
//	POST /oauth/apps/authorized/{client_id}/revoke   end that app's tokens and consent for you
//	GET  /oauth/apps/login, POST /oauth/apps/login   sign in
//	POST /oauth/apps/logout                          sign out
//
// Every POST carries the session's CSRF token; another user's client_id
// is answered 404, as an unknown one is.
const Path = "/oauth/apps"

// Config is what the pages work with.
type Config struct {
	// Registry holds the clients users create.
	Registry *clients.Registry
	// Service lists and revokes the clients a user authorized.
	Service *authz.Service
	// Authorizer holds the sign-in session, shared with the consent
	// screen.
	Authorizer *authz.Authorizer
	// Grants are the grant types users may give their clients.
	Grants []string
	// Scopes are the scopes users may give their clients.
	Scopes []string
	// MaxPerUser is how many clients one user may have; 0 means no
	// limit.
	MaxPerUser int
	// ReservedNames are names users' clients may not take (clients.NameKey
	// compares them): those of the operator's clients.
	ReservedNames []string
	// Logger logs what users do to their clients, and store failures.
	Logger *zap.Logger
	// SignInLogger logs store failures of the sign-in. Default: Logger.
	SignInLogger *zap.Logger
}

// Handler serves the self-service pages.
type Handler struct {
	cfg  Config
	auth signIn
}

// New returns the pages' handler.
func New(cfg Config) *Handler {
	if cfg.SignInLogger == nil {
		cfg.SignInLogger = cfg.Logger
	}
	h := &Handler{cfg: cfg}
	h.auth = &sessionSignIn{h: h, az: cfg.Authorizer, logger: cfg.SignInLogger}
	return h
}

// maxPageForm caps a form body of the self-service pages.
const maxPageForm = 32 << 10

// page is one request to the self-service pages.
type page struct {
	h    *Handler
	w    http.ResponseWriter
	r    *http.Request
	ctx  context.Context
	uid  string
	csrf string
}

// ServeHTTP serves a request for Path or below it. The error is one of
// writing the answer.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	setPageHeaders(w)
	auth := h.auth
	if done, err := auth.serve(w, r); done {
		return err
	}
	uid, csrf, ok, err := auth.user(r)
	p := &page{h: h, w: w, r: r, ctx: r.Context(), uid: uid, csrf: csrf}
	if err != nil {
		return p.unavailable(err)
	}
	if !ok {
		return auth.signIn(w, r)
	}
	if r.Method == http.MethodPost {
		if err := parsePageForm(w, r); err != nil {
			return h.renderError(w, r, http.StatusBadRequest, "form_unreadable")
		}
		if ok, err := auth.checkCSRF(r, r.PostForm.Get("csrf_token")); err != nil {
			return p.unavailable(err)
		} else if !ok {
			return h.renderError(w, r, http.StatusForbidden, "form_expired")
		}
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, Path), "/")
	parts := strings.Split(rest, "/")
	switch {
	case rest == "":
		return p.only(http.MethodGet, p.index)
	case rest == "new":
		if r.Method == http.MethodPost {
			return p.create()
		}
		return p.only(http.MethodGet, func() error { return p.newForm(http.StatusOK, nil, "") })
	case len(parts) == 3 && parts[0] == "authorized" && parts[2] == "revoke":
		return p.only(http.MethodPost, func() error { return p.revoke(parts[1]) })
	case len(parts) == 1:
		if r.Method == http.MethodPost {
			return p.update(parts[0])
		}
		return p.only(http.MethodGet, func() error { return p.edit(parts[0], nil, "") })
	case len(parts) == 2 && parts[1] == "secret":
		return p.only(http.MethodPost, func() error { return p.rotate(parts[0]) })
	case len(parts) == 2 && parts[1] == "delete":
		return p.only(http.MethodPost, func() error { return p.remove(parts[0]) })
	}
	return h.renderError(w, r, http.StatusNotFound, "not_found")
}

func (p *page) only(method string, f func() error) error {
	if p.r.Method != method {
		p.w.Header().Set("Allow", method)
		return p.h.renderError(p.w, p.r, http.StatusMethodNotAllowed, "methods", "methods", method)
	}
	return f()
}

// render writes a page with the signed-in user and the session's CSRF
// token.
func (p *page) render(status int, name string, d *pages.Data) error {
	d.Username, d.CSRFToken = p.uid, p.csrf
	return p.h.render(p.w, p.r, status, name, d)
}

// text is a message in the request's language.
func (p *page) text(key string, args ...string) string {
	return p.h.pages().Text(p.r, key, args...)
}

func (p *page) rules() clients.Rules {
	return clients.Rules{Grants: p.h.cfg.Grants, Scopes: p.h.cfg.Scopes, DefaultUser: p.uid, ReservedNames: p.h.cfg.ReservedNames}
}

func (p *page) index() error {
	own, err := p.h.cfg.Registry.Owned(p.ctx, p.uid)
	if err != nil {
		return p.unavailable(err)
	}
	authorized, err := p.authorized()
	if err != nil {
		return p.unavailable(err)
	}
	apps := &pages.Apps{Authorized: authorized}
	for _, c := range own {
		apps.Clients = append(apps.Clients, appView(c))
	}
	return p.render(http.StatusOK, "apps.html", &pages.Data{Apps: apps})
}

func appView(c *clients.Client) pages.App {
	return pages.App{ID: c.ID, Name: c.Name, Public: c.Public, RedirectURIs: c.RedirectURIs}
}

// newForm shows the form for a new app: empty, or as sent with what is
// wrong with it.
func (p *page) newForm(status int, form *pages.AppForm, formErr string) error {
	if form == nil {
		form = &pages.AppForm{Grants: slices.Clone(p.h.cfg.Grants)}
		form.Grants = slices.DeleteFunc(form.Grants, func(g string) bool { return g == authz.GrantClientCredentials || g == authz.GrantPassword })
	}
	return p.render(status, "app_new.html", &pages.Data{Error: formErr,
		Apps: &pages.Apps{Form: form, Grants: p.h.cfg.Grants, Scopes: p.h.cfg.Scopes}})
}

// authorized lists the clients holding tokens or a consent of the user.
func (p *page) authorized() ([]pages.AuthorizedApp, error) {
	grants, err := p.h.cfg.Service.UserGrants(p.ctx, p.uid)
	if err != nil {
		return nil, err
	}
	consented, err := p.h.cfg.Service.UserConsents(p.ctx, p.uid)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []pages.AuthorizedApp
	add := func(id, scope string, since time.Time) {
		if seen[id] {
			return
		}
		seen[id] = true
		c, err := p.h.cfg.Registry.Client(p.ctx, id)
		if err != nil {
			return // a deleted client: nothing of it works any more
		}
		scopes, _ := authz.ParseScope(scope)
		out = append(out, pages.AuthorizedApp{ClientID: id, Name: c.Name, Scopes: scopes, Since: since})
	}
	for _, g := range grants {
		add(g.ClientID, g.Scope, g.IssuedAt)
	}
	for _, id := range consented {
		if seen[id] {
			continue
		}
		scope, at, err := p.h.cfg.Service.UserConsent(p.ctx, p.uid, id)
		if err != nil {
			return nil, err
		}
		add(id, scope, at)
	}
	return out, nil
}

func (p *page) create() error {
	form := readClientForm(p.r)
	if limit := p.h.cfg.MaxPerUser; limit > 0 {
		// Counted before the new one is stored: two creations racing may
		// both pass, so the bound can be passed by the number of
		// concurrent requests of one user, never more.
		own, err := p.h.cfg.Registry.Owned(p.ctx, p.uid)
		if err != nil {
			return p.unavailable(err)
		}
		// Clients the operator gave the user do not count.
		n := 0
		for _, c := range own {
			if c.UserRegistered() {
				n++
			}
		}
		if n >= limit {
			return p.newForm(http.StatusBadRequest, form, p.text("apps.too_many", "count", strconv.Itoa(n)))
		}
	}
	c := new(clients.Client)
	if err := metadata(form, true).Apply(c, p.rules(), true); err != nil {
		return p.newForm(http.StatusBadRequest, form, p.describe(err))
	}
	secret, err := p.h.cfg.Registry.Create(p.ctx, c)
	if err != nil {
		return p.unavailable(err)
	}
	p.h.cfg.Logger.Info("client registered by its owner", zap.String("client_id", c.ID), zap.String("owner", p.uid))
	return p.renderSecret(c, secret, p.text("apps.registered"))
}

// owned returns the user's client, or ErrNotFound for anyone else's.
func (p *page) owned(id string) (*clients.Client, error) {
	c, err := p.h.cfg.Registry.Get(p.ctx, id)
	if err != nil {
		return nil, err
	}
	if c.UserID != p.uid {
		return nil, clients.ErrNotFound
	}
	return c, nil
}

func (p *page) edit(id string, form *pages.AppForm, formErr string) error {
	c, err := p.owned(id)
	if err != nil {
		return p.fail(err)
	}
	if form == nil {
		form = &pages.AppForm{Name: c.Name, RedirectURIs: strings.Join(c.RedirectURIs, "\n"), Grants: c.Grants, Scopes: c.Scopes, Public: c.Public}
	}
	status := http.StatusOK
	if formErr != "" {
		status = http.StatusBadRequest
	}
	app := appView(c)
	return p.render(status, "app_edit.html", &pages.Data{Error: formErr,
		Apps: &pages.Apps{Client: &app, Form: form, Grants: p.h.cfg.Grants, Scopes: p.h.cfg.Scopes}})
}

func (p *page) update(id string) error {
	if _, err := p.owned(id); err != nil {
		return p.fail(err)
	}
	form := readClientForm(p.r)
	_, err := p.h.cfg.Registry.Update(p.ctx, id, func(c *clients.Client) error {
		if c.UserID != p.uid {
			return clients.ErrNotFound
		}
		return metadata(form, false).Apply(c, p.rules(), false)
	})
	var re *clients.RegError
	if errors.As(err, &re) {
		return p.edit(id, form, p.describe(err))
	} else if err != nil {
		return p.fail(err)
	}
	p.h.cfg.Logger.Info("client updated by its owner", zap.String("client_id", id), zap.String("owner", p.uid))
	http.Redirect(p.w, p.r, Path, http.StatusSeeOther)
	return nil
}

func (p *page) rotate(id string) error {
	if _, err := p.owned(id); err != nil {
		return p.fail(err)
	}
	c, secret, err := p.h.cfg.Registry.RotateSecret(p.ctx, id)
	if err != nil {
		return p.fail(err)
	}
	p.h.cfg.Logger.Info("client secret rotated by its owner", zap.String("client_id", id), zap.String("owner", p.uid))
	return p.renderSecret(c, secret, p.text("apps.rotated"))
}

func (p *page) remove(id string) error {
	if _, err := p.owned(id); err != nil {
		return p.fail(err)
	}
	if err := p.h.cfg.Registry.Delete(p.ctx, id); err != nil {
		return p.fail(err)
	}
	p.h.cfg.Logger.Info("client deleted by its owner", zap.String("client_id", id), zap.String("owner", p.uid))
	http.Redirect(p.w, p.r, Path, http.StatusSeeOther)
	return nil
}

// revoke ends one client's tokens and consent for the signed-in user.
func (p *page) revoke(clientID string) error {
	if err := p.h.cfg.Service.RevokeUserClient(p.ctx, p.uid, clientID); err != nil {
		return p.unavailable(err)
	}
	p.h.cfg.Logger.Info("user revoked an app", zap.String("client_id", clientID), zap.String("user_id", p.uid))
	http.Redirect(p.w, p.r, Path, http.StatusSeeOther)
	return nil
}

// renderSecret shows a new secret, once; the page's script copies it.
func (p *page) renderSecret(c *clients.Client, secret, notice string) error {
	app := appView(c)
	return p.render(http.StatusOK, "app_secret.html", &pages.Data{ScriptNonce: pages.Nonce(),
		Apps: &pages.Apps{Client: &app, Secret: secret, Notice: notice}})
}

func (p *page) fail(err error) error {
	switch {
	case errors.Is(err, clients.ErrNotFound), errors.Is(err, clients.ErrReadOnly):
		return p.h.renderError(p.w, p.r, http.StatusNotFound, "not_found")
	case clients.IsPublicClientError(err):
		return p.h.renderError(p.w, p.r, http.StatusBadRequest, "public_no_secret")
	}
	return p.unavailable(err)
}

func (p *page) unavailable(err error) error {
	p.h.cfg.Logger.Error("self-service page failed", zap.String("user_id", p.uid), zap.Error(err))
	p.w.Header().Set("Retry-After", "1")
	return p.h.renderError(p.w, p.r, http.StatusServiceUnavailable, "registry_unavailable")
}

func readClientForm(r *http.Request) *pages.AppForm {
	f := r.PostForm
	return &pages.AppForm{
		Name: f.Get("client_name"), RedirectURIs: f.Get("redirect_uris"),
		Grants: f["grant_types"], Scopes: f["scope"], Public: f.Get("public") == "on",
	}
}

func metadata(f *pages.AppForm, create bool) *clients.Metadata {
	var uris []string
	for line := range strings.SplitSeq(f.RedirectURIs, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			uris = append(uris, line)
		}
	}
	scope := strings.Join(f.Scopes, " ")
	grants := slices.Clone(f.Grants)
	m := &clients.Metadata{ClientName: &f.Name, RedirectURIs: &uris, GrantTypes: &grants, Scope: &scope}
	if create {
		method := clients.AuthMethodBasic
		if f.Public {
			method = clients.AuthMethodNone
		}
		m.TokenEndpointAuthMethod = &method
	}
	return m
}

// describe says what is wrong with a form; the rule's own words are
// English, as the registration endpoint gives them.
func (p *page) describe(err error) string {
	var re *clients.RegError
	reason := "?"
	if errors.As(err, &re) {
		reason = re.Desc
	}
	return p.text("apps.not_saved", "reason", reason)
}

func parsePageForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxPageForm)
	return r.ParseForm()
}

// setPageHeaders sets the pages' headers on every answer, redirects
// included; render sets them again with the page's own policy.
func setPageHeaders(w http.ResponseWriter) {
	pages.SetHeaders(w)
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
}
