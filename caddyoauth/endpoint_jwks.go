package caddyoauth

import (
	"encoding/json"
	"net/http"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
)

func init() {
	registerEndpoint(endpoint{path: PathPrefix + "jwks", metadata: "jwks_uri", serve: serveJWKS,
		enabled: func(a *App) bool { return a.TokenFormat == authz.FormatJWT }})
}

// serveJWKS publishes the keys JWT access tokens are signed with (RFC 7517
// §5): the current key and retired ones whose tokens may still be alive.
func serveJWKS(s *Server, w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return writeBearerError(w, http.StatusMethodNotAllowed, "", "", "")
	}
	keys, err := s.svc.JWKS(r.Context())
	if err != nil {
		w.Header().Set("Retry-After", "1")
		return writeBearerError(w, http.StatusServiceUnavailable, "", "temporarily_unavailable", "the token store cannot be reached")
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	// Short, so a rotation reaches verifiers well within a token lifetime.
	w.Header().Set("Cache-Control", "max-age=300")
	return json.NewEncoder(w).Encode(map[string]any{"keys": keys})
}
