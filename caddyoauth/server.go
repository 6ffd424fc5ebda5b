package caddyoauth

import (
	"net/http"
	"sort"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
)

func init() {
	caddy.RegisterModule(Server{})
}

// PathPrefix is where oauth_server serves its endpoints.
const PathPrefix = "/oauth/"

// endpoint is one path served by oauth_server. Each endpoint's file
// registers it in init, so features stay in files of their own.
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

var (
	endpoints = map[string]endpoint{}
	// subtrees lists the subtree endpoints, so a proxied request is matched
	// against them without walking the map or building prefixes.
	subtrees []endpoint
)

func registerEndpoint(e endpoint) {
	endpoints[e.path] = e
	if e.subtree {
		subtrees = append(subtrees, endpoint{path: e.path + "/", serve: e.serve})
	}
}

// Server serves the OAuth endpoints under /oauth/ and the authorization
// server metadata at /.well-known/oauth-authorization-server, and passes
// every other request on. It strips the identity headers, and the
// Connection options and trailers naming them, from every request it
// passes on, so even a route proxied without oauth_protect never forwards
// a caller's X-User-ID.
type Server struct {
	app    *App
	svc    *authz.Service
	logger *zap.Logger
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
	// The issuer is derived from the sites serving oauth_server. Handlers
	// are provisioned by the http app, already in the config's apps, so
	// this finds it without loading anything.
	if h, err := ctx.AppIfConfigured("http"); err == nil {
		app.httpApp, _ = h.(*caddyhttp.App)
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	path := r.URL.Path
	if e, ok := endpoints[path]; ok && (e.enabled == nil || e.enabled(s.app)) {
		if done, err := s.limitEndpoint(w, r); done {
			return err
		}
		return serveRedacted(func(w http.ResponseWriter) error { return e.serve(s, w, r) }, w)
	}
	for _, e := range subtrees {
		if strings.HasPrefix(path, e.path) {
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
	return next.ServeHTTP(w, r)
}

// endpointPaths lists the endpoints a has enabled that have a metadata name.
func endpointPaths(a *App) map[string]string {
	out := map[string]string{}
	for _, e := range endpoints {
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
