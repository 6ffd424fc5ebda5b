package caddyoauth

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
)

func init() {
	registerEndpoint(endpoint{path: PathPrefix + "me", serve: serveMe})
}

// meResponse is the answer of GET /oauth/me.
type meResponse struct {
	UserID   string `json:"user_id,omitempty"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	Exp      int64  `json:"exp,omitempty"`
}

// serveMe tells a bearer who it is: GET /oauth/me.
func serveMe(s *Server, w http.ResponseWriter, r *http.Request) error {
	challenge := `Bearer realm="oauth"`
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return writeBearerError(w, http.StatusMethodNotAllowed, "", "", "")
	}
	token, found, ok := bearerToken(r.Header)
	switch {
	case !ok:
		return writeBearerError(w, http.StatusBadRequest, challenge, "invalid_request", "send one Authorization header with one bearer token")
	case !found:
		return writeBearerError(w, http.StatusUnauthorized, challenge, "", "")
	}
	id, err := s.svc.Validate(r.Context(), token)
	if errors.Is(err, authz.ErrTokenInvalid) || errors.Is(err, authz.ErrTokenExpired) {
		return writeBearerError(w, http.StatusUnauthorized, challenge, "invalid_token", "the access token is invalid, expired or revoked")
	} else if err != nil {
		w.Header().Set("Retry-After", "1")
		return writeBearerError(w, http.StatusServiceUnavailable, "", "temporarily_unavailable", "the token store cannot be reached")
	}
	resp := meResponse{UserID: id.UserID, ClientID: id.ClientID, Scope: id.Scope}
	if !id.ExpiresAt.IsZero() {
		resp.Exp = id.ExpiresAt.Unix()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(resp)
}

// writeBearerError answers an RFC 6750 §3 error with a JSON body.
func writeBearerError(w http.ResponseWriter, status int, challenge, code, desc string) error {
	if challenge != "" {
		if code != "" {
			challenge += `, error="` + code + `"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	body := map[string]string{}
	if code != "" {
		body["error"] = code
		body["error_description"] = desc
	}
	return json.NewEncoder(w).Encode(body)
}
