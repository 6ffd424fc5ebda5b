package caddyoauth

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/clients"
)

// AppsPath is where signed-in users manage their own clients, when the
// oauth block has self_service:
//
//	GET  /oauth/apps                                 your apps, authorized apps, a form for a new app
//	POST /oauth/apps/new                             create; shows the secret once
//	GET  /oauth/apps/{client_id}                     edit form
//	POST /oauth/apps/{client_id}                     save changes
//	POST /oauth/apps/{client_id}/secret              rotate; shows the secret once
//	POST /oauth/apps/{client_id}/delete              delete
//	POST /oauth/apps/authorized/{client_id}/revoke   end that app's tokens and consent for you
//
// Every POST carries the session's CSRF token; another user's client_id
// is answered 404, as an unknown one is.
const AppsPath = PathPrefix + "apps"

func init() {
	registerEndpoint(endpoint{path: AppsPath, serve: serveApps, subtree: true})
}

// maxPageForm caps a form body of the self-service pages.
const maxPageForm = 32 << 10

// appsPage is one request to the self-service pages.
type appsPage struct {
	s    *Server
	auth appsAuth
	w    http.ResponseWriter
	r    *http.Request
	ctx  context.Context
	uid  string
	csrf string
}

func (a *App) appsAuth() appsAuth {
	return &appsLogin{az: a.authorizer, logger: a.logger}
}

func serveApps(s *Server, w http.ResponseWriter, r *http.Request) error {
	if !s.app.SelfService {
		return caddyhttp.Error(http.StatusNotFound, nil)
	}
	setPageHeaders(w)
	auth := s.app.appsAuth()
	if done, err := auth.serve(w, r); done {
		return err
	}
	uid, csrf, ok, err := auth.user(r)
	p := &appsPage{s: s, auth: auth, w: w, r: r, ctx: r.Context(), uid: uid, csrf: csrf}
	if err != nil {
		return p.unavailable(err)
	}
	if !ok {
		return auth.signIn(w, r)
	}
	if r.Method == http.MethodPost {
		if err := parsePageForm(w, r); err != nil {
			return renderError(w, http.StatusBadRequest, "The form could not be read.")
		}
		if ok, err := auth.checkCSRF(r, r.PostForm.Get("csrf_token")); err != nil {
			return p.unavailable(err)
		} else if !ok {
			return renderError(w, http.StatusForbidden, "The form expired. Go back, reload and try again.")
		}
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, AppsPath), "/")
	parts := strings.Split(rest, "/")
	switch {
	case rest == "":
		return p.only(http.MethodGet, p.index)
	case rest == "new":
		return p.only(http.MethodPost, p.create)
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
	return renderError(w, http.StatusNotFound, "Not found.")
}

func (p *appsPage) only(method string, f func() error) error {
	if p.r.Method != method {
		p.w.Header().Set("Allow", method)
		return renderError(p.w, http.StatusMethodNotAllowed, "Method not allowed.")
	}
	return f()
}

func (p *appsPage) rules() clients.Rules {
	return clients.Rules{Grants: p.s.app.AppsAllowedGrants, Scopes: p.s.app.configuredScopes(), DefaultUser: p.uid}
}

// authorizedApp is a row of the "authorized apps" list.
type authorizedApp struct {
	ClientID, Name, Scope string
	Since                 time.Time
}

func (p *appsPage) index() error {
	return p.renderIndex(http.StatusOK, nil, "")
}

func (p *appsPage) renderIndex(status int, form *appForm, formErr string) error {
	reg := p.s.app.registry
	own, err := reg.Owned(p.ctx, p.uid)
	if err != nil {
		return p.unavailable(err)
	}
	authorized, err := p.authorized()
	if err != nil {
		return p.unavailable(err)
	}
	if form == nil {
		form = &appForm{Grants: slices.Clone(p.s.app.AppsAllowedGrants)}
		form.Grants = slices.DeleteFunc(form.Grants, func(g string) bool { return g == authz.GrantClientCredentials || g == authz.GrantPassword })
	}
	return renderPage(p.w, status, "index", map[string]any{
		"User": p.uid, "CSRF": p.csrf, "Apps": own, "Authorized": authorized,
		"Form": form, "FormError": formErr, "AllGrants": p.s.app.AppsAllowedGrants, "AllScopes": p.s.app.configuredScopes(),
	})
}

// authorized lists the clients holding tokens or a consent of the user.
func (p *appsPage) authorized() ([]authorizedApp, error) {
	grants, err := p.s.svc.UserGrants(p.ctx, p.uid)
	if err != nil {
		return nil, err
	}
	consented, err := p.s.svc.UserConsents(p.ctx, p.uid)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []authorizedApp
	add := func(id, scope string, since time.Time) {
		if seen[id] {
			return
		}
		seen[id] = true
		c, err := p.s.app.registry.Client(p.ctx, id)
		if err != nil {
			return // a deleted client: nothing of it works any more
		}
		out = append(out, authorizedApp{ClientID: id, Name: c.Name, Scope: scope, Since: since})
	}
	for _, g := range grants {
		add(g.ClientID, g.Scope, g.IssuedAt)
	}
	for _, id := range consented {
		add(id, "", time.Time{})
	}
	return out, nil
}

func (p *appsPage) create() error {
	form := readAppForm(p.r)
	c := new(clients.Client)
	if err := form.metadata(true).Apply(c, p.rules(), true); err != nil {
		return p.renderIndex(http.StatusBadRequest, form, describe(err))
	}
	secret, err := p.s.app.registry.Create(p.ctx, c)
	if err != nil {
		return p.unavailable(err)
	}
	p.s.logger.Info("client registered by its owner", zap.String("client_id", c.ID), zap.String("owner", p.uid))
	return p.renderSecret(c, secret, "Your app is registered.")
}

// owned returns the user's client, or ErrNotFound for anyone else's.
func (p *appsPage) owned(id string) (*clients.Client, error) {
	c, err := p.s.app.registry.Get(p.ctx, id)
	if err != nil {
		return nil, err
	}
	if c.UserID != p.uid {
		return nil, clients.ErrNotFound
	}
	return c, nil
}

func (p *appsPage) edit(id string, form *appForm, formErr string) error {
	c, err := p.owned(id)
	if err != nil {
		return p.fail(err)
	}
	if form == nil {
		form = &appForm{Name: c.Name, RedirectURIs: strings.Join(c.RedirectURIs, "\n"), Grants: c.Grants, Scopes: c.Scopes, Public: c.Public}
	}
	status := http.StatusOK
	if formErr != "" {
		status = http.StatusBadRequest
	}
	return renderPage(p.w, status, "edit", map[string]any{
		"User": p.uid, "CSRF": p.csrf, "App": c, "Form": form, "FormError": formErr,
		"AllGrants": p.s.app.AppsAllowedGrants, "AllScopes": p.s.app.configuredScopes(),
	})
}

func (p *appsPage) update(id string) error {
	if _, err := p.owned(id); err != nil {
		return p.fail(err)
	}
	form := readAppForm(p.r)
	_, err := p.s.app.registry.Update(p.ctx, id, func(c *clients.Client) error {
		if c.UserID != p.uid {
			return clients.ErrNotFound
		}
		return form.metadata(false).Apply(c, p.rules(), false)
	})
	var re *clients.RegError
	if errors.As(err, &re) {
		return p.edit(id, form, describe(err))
	} else if err != nil {
		return p.fail(err)
	}
	p.s.logger.Info("client updated by its owner", zap.String("client_id", id), zap.String("owner", p.uid))
	http.Redirect(p.w, p.r, AppsPath, http.StatusSeeOther)
	return nil
}

func (p *appsPage) rotate(id string) error {
	if _, err := p.owned(id); err != nil {
		return p.fail(err)
	}
	c, secret, err := p.s.app.registry.RotateSecret(p.ctx, id)
	if err != nil {
		return p.fail(err)
	}
	p.s.logger.Info("client secret rotated by its owner", zap.String("client_id", id), zap.String("owner", p.uid))
	return p.renderSecret(c, secret, "The secret is replaced; the old one no longer works.")
}

func (p *appsPage) remove(id string) error {
	if _, err := p.owned(id); err != nil {
		return p.fail(err)
	}
	if err := p.s.app.registry.Delete(p.ctx, id); err != nil {
		return p.fail(err)
	}
	p.s.logger.Info("client deleted by its owner", zap.String("client_id", id), zap.String("owner", p.uid))
	http.Redirect(p.w, p.r, AppsPath, http.StatusSeeOther)
	return nil
}

// revoke ends one client's tokens and consent for the signed-in user.
func (p *appsPage) revoke(clientID string) error {
	if err := p.s.svc.RevokeUserClient(p.ctx, p.uid, clientID); err != nil {
		return p.unavailable(err)
	}
	p.s.logger.Info("user revoked an app", zap.String("client_id", clientID), zap.String("user_id", p.uid))
	http.Redirect(p.w, p.r, AppsPath, http.StatusSeeOther)
	return nil
}

func (p *appsPage) renderSecret(c *clients.Client, secret, msg string) error {
	return renderPage(p.w, http.StatusOK, "secret", map[string]any{"User": p.uid, "CSRF": p.csrf, "App": c, "Secret": secret, "Message": msg})
}

func (p *appsPage) fail(err error) error {
	switch {
	case errors.Is(err, clients.ErrNotFound), errors.Is(err, clients.ErrReadOnly):
		return renderError(p.w, http.StatusNotFound, "Not found.")
	case clients.IsPublicClientError(err):
		return renderError(p.w, http.StatusBadRequest, "A public app has no secret.")
	}
	return p.unavailable(err)
}

func (p *appsPage) unavailable(err error) error {
	p.s.logger.Error("self-service page failed", zap.String("user_id", p.uid), zap.Error(err))
	p.w.Header().Set("Retry-After", "1")
	return renderError(p.w, http.StatusServiceUnavailable, "The app registry cannot be reached. Try again shortly.")
}

// appForm is the new/edit app form.
type appForm struct {
	Name         string
	RedirectURIs string // one per line
	Grants       []string
	Scopes       []string
	Public       bool
}

func readAppForm(r *http.Request) *appForm {
	f := r.PostForm
	return &appForm{
		Name: f.Get("client_name"), RedirectURIs: f.Get("redirect_uris"),
		Grants: f["grant_types"], Scopes: f["scope"], Public: f.Get("public") == "on",
	}
}

func (f *appForm) metadata(create bool) *clients.Metadata {
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

// Has reports whether list holds v, for the templates' checkboxes.
func (f *appForm) Has(list []string, v string) bool { return slices.Contains(list, v) }

func describe(err error) string {
	var re *clients.RegError
	if errors.As(err, &re) {
		return re.Desc
	}
	return "The app could not be saved."
}

func parsePageForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxPageForm)
	return r.ParseForm()
}

func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}
