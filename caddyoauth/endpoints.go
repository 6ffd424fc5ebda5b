package caddyoauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/clientauth"
	"github.com/caddyoauth/gateway/caddyoauth/dpop"
	"github.com/caddyoauth/gateway/caddyoauth/oidc"
	"github.com/caddyoauth/gateway/caddyoauth/selfservice"
)

// MetadataPath is where RFC 8414 puts the authorization server metadata.
const MetadataPath = "/.well-known/oauth-authorization-server"

// serveMetadata answers the RFC 8414 authorization server metadata,
// built from the endpoints this build serves and the configured clients;
// with OpenID Connect the same document, OpenID fields included, is the
// provider configuration at /.well-known/openid-configuration.
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
	if s.app.registrationOn() {
		policy := s.app.registry.RegistrationPolicy()
		grants, scopes = sortedUnion(grants, policy.Grants), sortedUnion(scopes, policy.Scopes)
	}
	md["grant_types_supported"] = grants
	md["scopes_supported"] = sortedUnion(scopes, s.app.Scopes)
	md["response_types_supported"] = []string{"code"}
	md["token_endpoint_auth_methods_supported"] = s.app.clientAuthMethods(true)
	// Public clients may revoke their own tokens (RFC 7009 §2.1), but only
	// confidential ones may introspect.
	md["revocation_endpoint_auth_methods_supported"] = s.app.clientAuthMethods(true)
	md["introspection_endpoint_auth_methods_supported"] = s.app.clientAuthMethods(false)
	for _, e := range []string{"token", "revocation", "introspection"} {
		md[e+"_endpoint_auth_signing_alg_values_supported"] = clientauth.Algorithms()
	}
	md["code_challenge_methods_supported"] = s.app.codeChallengeMethods()
	md["authorization_response_iss_parameter_supported"] = true // RFC 9207
	if s.app.metadataDocuments() {
		md["client_id_metadata_document_supported"] = true
	}
	if s.app.openID() {
		oidc.AddDiscovery(md)
	}
	if v := s.svc.DPoP(); v != nil {
		md["dpop_signing_alg_values_supported"] = v.Algorithms() // RFC 9449 §5.1
	}
	md["tls_client_certificate_bound_access_tokens"] = true // RFC 8705 §3.3
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=300")
	return json.NewEncoder(w).Encode(md)
}

// clientAuthMethods lists how clients may authenticate at the token,
// revocation and introspection endpoints: with a secret, none (public),
// private_key_jwt, and the TLS client certificate methods when a site of
// the config requests client certificates (RFC 8705 §2: the same
// endpoints serve them, so no mtls_endpoint_aliases).
func (a *App) clientAuthMethods(public bool) []string {
	out := []string{"client_secret_basic", "client_secret_post"}
	if public {
		out = append(out, "none")
	}
	out = append(out, clientauth.PrivateKeyJWT)
	if a.requestsClientCertificates() {
		out = append(out, clientauth.TLSClientAuth, clientauth.SelfSignedTLSClientAuth)
	}
	return out
}

// requestsClientCertificates reports whether a TLS connection policy of
// the config asks clients for certificates (tls { client_auth {...} }).
func (a *App) requestsClientCertificates() bool {
	if a.httpApp == nil {
		return false
	}
	for _, srv := range a.httpApp.Servers {
		for _, p := range srv.TLSConnPolicies {
			if p.ClientAuthentication != nil && p.ClientAuthentication.Active() {
				return true
			}
		}
	}
	return false
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

// serveResourceMetadata answers the RFC 9728 metadata of the protected
// resources of the site (resolveResources): at the well-known path for
// the resource with no path, followed by its path for one with a path.
// Everything in it comes from the config, never from the request.
func serveResourceMetadata(s *Server, w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return writeBearerError(w, http.StatusMethodNotAllowed, "", "", "")
	}
	t, err := s.app.resources()
	if err != nil {
		authz.WriteError(w, errIssuerUnresolved, false)
		return nil
	}
	doc, ok := t.docs[s][r.URL.EscapedPath()]
	if !ok {
		return caddyhttp.Error(http.StatusNotFound, nil)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=300")
	_, err = w.Write(doc)
	return err
}

// serveJWKS publishes the keys JWT access tokens and ID tokens are signed
// with (RFC 7517 §5): the current keys and retired ones whose tokens may
// still be alive.
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

// meResponse is the answer of GET /oauth/me.
type meResponse struct {
	UserID   string             `json:"user_id,omitempty"`
	ClientID string             `json:"client_id"`
	Scope    string             `json:"scope"`
	Exp      int64              `json:"exp,omitempty"`
	Aud      authz.AudienceList `json:"aud,omitempty"` // the token's resources (RFC 8707)
}

// serveMe tells a bearer who it is: GET /oauth/me.
func serveMe(s *Server, w http.ResponseWriter, r *http.Request) error {
	challenge := `Bearer realm="oauth"`
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return writeBearerError(w, http.StatusMethodNotAllowed, "", "", "")
	}
	token, dpopScheme, found, ok := authz.AccessToken(r.Header)
	if dpopScheme {
		challenge = `DPoP realm="oauth"`
	}
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
	if id.Cnf != nil || dpopScheme {
		if err := meSender(s, w, r, token, dpopScheme, id); err != nil {
			return writeBearerError(w, err.status, err.challenge, err.code, err.desc)
		}
	}
	resp := meResponse{UserID: id.UserID, ClientID: id.ClientID, Scope: id.Scope, Aud: authz.Audiences(id.Audience)}
	if !id.ExpiresAt.IsZero() {
		resp.Exp = id.ExpiresAt.Unix()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(resp)
}

// meRefusal is how /oauth/me refuses a token its sender may not use.
type meRefusal struct {
	status                int
	challenge, code, desc string
}

// meSender checks that a bound token comes from its holder, as
// oauth_protect does (Protect.checkSender), the proof naming
// <issuer>/oauth/me.
func meSender(s *Server, w http.ResponseWriter, r *http.Request, token string, dpopScheme bool, id *authz.Identity) *meRefusal {
	iss, err := s.svc.Issuer()
	if err == nil {
		var nonce string
		nonce, err = s.svc.CheckSender(r.Context(), authz.SenderRequest{Method: r.Method, URL: iss + PathPrefix + "me",
			Header: r.Header, TLS: r.TLS, Token: token, DPoP: dpopScheme}, id)
		if nonce != "" {
			w.Header().Set(dpop.NonceHeader, nonce)
		}
	}
	challenge := `Bearer realm="oauth"`
	if dpopScheme {
		challenge = `DPoP realm="oauth"`
		if v := s.svc.DPoP(); v != nil {
			challenge += `, algs="` + strings.Join(v.Algorithms(), " ") + `"`
		}
	}
	var de *dpop.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &de):
		if de.Nonce != "" {
			w.Header().Set(dpop.NonceHeader, de.Nonce)
		}
		return &meRefusal{http.StatusUnauthorized, challenge, de.Code, de.Description}
	case errors.Is(err, authz.ErrDPoPBoundAsBearer), errors.Is(err, authz.ErrNotDPoPBound),
		errors.Is(err, authz.ErrCertificateBound), errors.Is(err, authz.ErrDPoPUnavailable):
		return &meRefusal{http.StatusUnauthorized, challenge, "invalid_token", err.Error()}
	}
	w.Header().Set("Retry-After", "1")
	return &meRefusal{http.StatusServiceUnavailable, "", "temporarily_unavailable", "the token store cannot be reached"}
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

// serveSelfService serves the self-service pages when the config turns
// them on. Their actions are logged by oauth_server, the sign-in's store
// failures by the app, as the consent screen's are.
func serveSelfService(s *Server, w http.ResponseWriter, r *http.Request) error {
	if !s.app.SelfService {
		return caddyhttp.Error(http.StatusNotFound, nil)
	}
	return selfservice.New(selfservice.Config{
		Registry: s.app.registry, Service: s.svc, Authorizer: s.app.authorizer,
		Grants: s.app.SelfServiceGrants, Scopes: s.app.SelfServiceScopes,
		MaxPerUser: s.app.AppsPerUser, ReservedNames: s.app.registry.StaticNames(),
		Logger: s.logger, SignInLogger: s.app.logger,
	}).ServeHTTP(w, r)
}

// serveRegister serves client registration (RFC 7591) and management
// (RFC 7592) when dynamic_clients turns registration on.
func serveRegister(s *Server, w http.ResponseWriter, r *http.Request) error {
	s.app.registration.ServeHTTP(w, r)
	return nil
}
