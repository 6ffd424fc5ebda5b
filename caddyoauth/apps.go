package caddyoauth

import (
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddyoauth/gateway/caddyoauth/selfservice"
)

func init() {
	registerEndpoint(endpoint{path: selfservice.Path, serve: serveSelfService, subtree: true})
}

// serveSelfService serves the self-service pages when the config turns
// them on. Their actions are logged by oauth_server, the sign-in's store
// failures by the app, as the consent screen's are.
func serveSelfService(s *Server, w http.ResponseWriter, r *http.Request) error {
	if !s.app.SelfService {
		return caddyhttp.Error(http.StatusNotFound, nil)
	}
	return selfservice.New(selfservice.Config{
		Registry: s.app.registry, Service: s.svc, Authorizer: s.app.authorizer,
		Grants: s.app.SelfServiceGrants, Scopes: s.app.configuredScopes(),
		Logger: s.logger, SignInLogger: s.app.logger,
	}).ServeHTTP(w, r)
}
