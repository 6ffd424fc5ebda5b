package caddyoauth

import (
	"encoding/json"
	"net/http"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
)

// MetadataPath is where RFC 8414 puts the authorization server metadata.
const MetadataPath = "/.well-known/oauth-authorization-server"

func init() {
	registerEndpoint(endpoint{path: MetadataPath, serve: serveMetadata})
}

// serveMetadata answers the RFC 8414 authorization server metadata,
// built from the endpoints this build serves and the configured clients.
func serveMetadata(s *Server, w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return writeBearerError(w, http.StatusMethodNotAllowed, "", "", "")
	}
	issuer, err := s.svc.Issuer()
	if err != nil {
		authz.WriteError(w, errIssuerUnresolved, false)
		return nil
	}
	md := map[string]any{"issuer": issuer}
	for field, path := range endpointPaths(s.app) {
		md[field] = issuer + path
	}
	var grants, scopes []string
	for _, c := range s.app.Clients {
		grants = sortedUnion(grants, c.Grants)
		scopes = sortedUnion(scopes, c.Scopes)
	}
	md["grant_types_supported"] = grants
	md["scopes_supported"] = sortedUnion(scopes, s.app.Scopes)
	md["response_types_supported"] = []string{"code"}
	md["token_endpoint_auth_methods_supported"] = []string{"client_secret_basic", "client_secret_post", "none"}
	// Public clients may revoke their own tokens (RFC 7009 §2.1), but only
	// confidential ones may introspect.
	md["revocation_endpoint_auth_methods_supported"] = []string{"client_secret_basic", "client_secret_post", "none"}
	md["introspection_endpoint_auth_methods_supported"] = []string{"client_secret_basic", "client_secret_post"}
	md["code_challenge_methods_supported"] = s.app.codeChallengeMethods()
	md["authorization_response_iss_parameter_supported"] = true // RFC 9207
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=300")
	return json.NewEncoder(w).Encode(md)
}

// errIssuerUnresolved answers while the issuer of a config that is being
// refused is unknown: the previous config, if any, keeps serving.
var errIssuerUnresolved = &authz.Error{Code: "temporarily_unavailable", Status: http.StatusServiceUnavailable,
	Description: "the authorization server has no issuer; retry later"}

// codeChallengeMethods lists the PKCE methods the authorize endpoint takes.
func (a *App) codeChallengeMethods() []string {
	if a.PKCEAllowPlain {
		return []string{"S256", "plain"}
	}
	return []string{"S256"}
}
