package caddyoauth

import (
	"net/http"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
)

// The authorization endpoint (RFC 6749 §3.1) and its screens.
func init() {
	screens := []struct {
		path, metadata string
		serve          func(*authz.Authorizer, http.ResponseWriter, *http.Request)
	}{
		{"authorize", "authorization_endpoint", (*authz.Authorizer).ServeAuthorize},
		{"login", "", (*authz.Authorizer).ServeLogin},
		{"consent", "", (*authz.Authorizer).ServeConsent},
		{"logout", "", (*authz.Authorizer).ServeLogout},
	}
	for _, sc := range screens {
		serve := sc.serve
		registerEndpoint(endpoint{
			path:     PathPrefix + sc.path,
			metadata: sc.metadata,
			serve: func(s *Server, w http.ResponseWriter, r *http.Request) error {
				serve(s.app.authorizer, w, r)
				return nil
			},
		})
	}
}
