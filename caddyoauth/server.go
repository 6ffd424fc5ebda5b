package caddyoauth

import (
	"net/http"
	"sort"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/oidc"
	"github.com/caddyoauth/gateway/caddyoauth/selfservice"
)

func init() {
	caddy.RegisterModule(Server{})
}

// PathPrefix is where oauth_server serves its endpoints.
const PathPrefix = "/oauth/"

// endpoint is one path served by oauth_server.
type endpoint struct {
	path string
	// metadata is the RFC 8414 field naming this endpoint, if any.
	metadata string
	serve    func(s *Server, w http.ResponseWriter, r *http.Request) error
	// enabled, when set, says whether the config serves the endpoint; a
	// disabled one answers 404 and is left out of the metadata.
	enabled func(a *App) bool
	// subtree: the endpoint also serves every path below path + "/".
	subtree bool
}

// routeTable is every path oauth_server serves. It is a function rather
// than a variable because the metadata endpoint lists the table itself.
func routeTable() []endpoint {
	return []endpoint{
		{path: MetadataPath, serve: serveMetadata},
		{path: authz.ResourceMetadataPath, serve: serveResourceMetadata, subtree: true}, // RFC 9728
		{path: PathPrefix + "token", metadata: "token_endpoint", serve: serviceEndpoint((*authz.Service).ServeToken)},
		{path: PathPrefix + "revoke", metadata: "revocation_endpoint", serve: serviceEndpoint((*authz.Service).ServeRevoke)},
		{path: PathPrefix + "introspect", metadata: "introspection_endpoint", serve: serviceEndpoint((*authz.Service).ServeIntrospect)},
		{path: PathPrefix + "jwks", metadata: "jwks_uri", serve: serveJWKS,
			enabled: func(a *App) bool { return a.TokenFormat == authz.FormatJWT || a.openID() }},
		// OpenID Connect, when a client may be given the openid scope.
		{path: oidc.DiscoveryPath, serve: serveMetadata, enabled: (*App).openID},
		{path: PathPrefix + "userinfo", metadata: "userinfo_endpoint", serve: serviceEndpoint((*authz.Service).ServeUserInfo), enabled: (*App).openID},
		{path: PathPrefix + "end_session", metadata: "end_session_endpoint", serve: screen((*authz.Authorizer).ServeEndSession), enabled: (*App).openID},
		{path: PathPrefix + "me", serve: serveMe},
		// The authorization endpoint (RFC 6749 §3.1) and its screens.
		{path: PathPrefix + "authorize", metadata: "authorization_endpoint", serve: screen((*authz.Authorizer).ServeAuthorize)},
		{path: PathPrefix + "login", serve: screen((*authz.Authorizer).ServeLogin)},
		{path: PathPrefix + "consent", serve: screen((*authz.Authorizer).ServeConsent)},
		{path: PathPrefix + "logout", serve: screen((*authz.Authorizer).ServeLogout)},
		{path: selfservice.Path, serve: serveSelfService, subtree: true},
		// Dynamic client registration (RFC 7591) and, below it, each
		// registered client's configuration endpoint (RFC 7592).
		{path: PathPrefix + "register", metadata: "registration_endpoint", serve: serveRegister,
			enabled: (*App).registrationOn, subtree: true},
	}
}

func serviceEndpoint(serve func(*authz.Service, http.ResponseWriter, *http.Request)) func(*Server, http.ResponseWriter, *http.Request) error {
	return func(s *Server, w http.ResponseWriter, r *http.Request) error {
		serve(s.svc, w, r)
		return nil
	}
}

func screen(serve func(*authz.Authorizer, http.ResponseWriter, *http.Request)) func(*Server, http.ResponseWriter, *http.Request) error {
	return func(s *Server, w http.ResponseWriter, r *http.Request) error {
		serve(s.app.authorizer, w, r)
		return nil
	}
}

// Server serves the OAuth endpoints under /oauth/, the authorization
// server metadata at /.well-known/oauth-authorization-server and the
// protected resource metadata of its site, and passes every other request
// on. It strips the identity headers, and the
// Connection options and trailers naming them, from every request it
// passes on, so even a route proxied without oauth_protect never forwards
// a caller's X-User-ID.
type Server struct {
	app    *App
	svc    *authz.Service
	logger *zap.Logger
	// endpoints indexes the route table by path; subtrees lists its
	// subtree endpoints with their trailing slash, so a proxied request is
	// matched without building strings.
	endpoints map[string]endpoint
	subtrees  []endpoint
	accessLog *accessLog // redact.go
}

// CaddyModule returns the Caddy module information.
func (Server) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.oauth_server",
		New: func() caddy.Module { return new(Server) },
	}
}

// Provision finds the oauth app.
func (s *Server) Provision(ctx caddy.Context) error {
	s.logger = ctx.Logger()
	app, err := oauthApp(ctx)
	if err != nil {
		return err
	}
	s.app, s.svc = app, app.Service()
	s.indexRoutes()
	s.accessLog = newAccessLog(ctx)
	// The issuer is derived from the sites serving oauth_server. Handlers
	// are provisioned by the http app, already in the config's apps, so
	// this finds it without loading anything.
	if h, err := ctx.AppIfConfigured("http"); err == nil {
		app.httpApp, _ = h.(*caddyhttp.App)
	}
	app.servesOAuth = true
	return nil
}

func (s *Server) indexRoutes() {
	s.endpoints, s.subtrees = map[string]endpoint{}, nil
	for _, e := range routeTable() {
		s.endpoints[e.path] = e
		if e.subtree {
			s.subtrees = append(s.subtrees, endpoint{path: e.path + "/", serve: e.serve, enabled: e.enabled})
		}
	}
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if lw, logged := s.accessLog.takeOver(w, r); logged != nil {
		return logged(s.serve(lw, r, next))
	}
	return s.serve(w, r, next)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	path := r.URL.Path
	if e, ok := s.endpoints[path]; ok && (e.enabled == nil || e.enabled(s.app)) {
		if done, err := s.limitEndpoint(w, r); done {
			return err
		}
		return serveRedacted(func(w http.ResponseWriter) error { return e.serve(s, w, r) }, w)
	}
	for _, e := range s.subtrees {
		if strings.HasPrefix(path, e.path) && (e.enabled == nil || e.enabled(s.app)) {
			if done, err := s.limitEndpoint(w, r); done {
				return err
			}
			return e.serve(s, w, r)
		}
	}
	if strings.HasPrefix(path, PathPrefix) || path == strings.TrimSuffix(PathPrefix, "/") {
		return caddyhttp.Error(http.StatusNotFound, nil)
	}
	stripIdentity(r, s.app.identityHeaders(), false)
	stripSessionCookie(r)
	return next.ServeHTTP(w, r)
}

// endpointPaths lists the endpoints a has enabled that have a metadata name.
func endpointPaths(a *App) map[string]string {
	out := map[string]string{}
	for _, e := range routeTable() {
		if e.metadata != "" && (e.enabled == nil || e.enabled(a)) {
			out[e.metadata] = e.path
		}
	}
	return out
}

// sortedUnion returns the sorted union of string lists.
func sortedUnion(lists ...[]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lists {
		for _, v := range l {
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Server)(nil)
	_ caddyhttp.MiddlewareHandler = (*Server)(nil)
)
