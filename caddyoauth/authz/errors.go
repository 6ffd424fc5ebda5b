package authz

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	oerrors "github.com/go-oauth2/oauth2/v4/errors"

	"github.com/caddyoauth/gateway/caddyoauth/dpop"
)

// Error is an OAuth error response: RFC 6749 §5.2 at the token endpoint,
// RFC 6750 §3 for protected resources. Its text never holds a token, code
// or secret.
type Error struct {
	Code        string
	Description string
	Status      int
	// RetryAfter, when positive, is sent as a Retry-After header.
	RetryAfter time.Duration
	// DPoPNonce, when set, is sent as a DPoP-Nonce header (RFC 9449 §8).
	DPoPNonce string
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

func oauthErr(code string, status int, desc string) *Error {
	return &Error{Code: code, Description: desc, Status: status}
}

// Constructors for the RFC 6749 §5.2 errors.
func errInvalidRequest(desc string) *Error { return oauthErr("invalid_request", 400, desc) }
func errInvalidClient(desc string) *Error  { return oauthErr("invalid_client", 401, desc) }
func errInvalidGrant(desc string) *Error   { return oauthErr("invalid_grant", 400, desc) }
func errUnauthorizedClient(desc string) *Error {
	return oauthErr("unauthorized_client", 400, desc)
}
func errUnsupportedGrant(desc string) *Error { return oauthErr("unsupported_grant_type", 400, desc) }
func errInvalidScope(desc string) *Error     { return oauthErr("invalid_scope", 400, desc) }

// ErrUnavailable answers when the store cannot be reached: RFC 6749's
// temporarily_unavailable with 503, never a pass or a 500.
var ErrUnavailable = oauthErr("temporarily_unavailable", http.StatusServiceUnavailable,
	"the authorization server cannot reach its token store; retry later")

// asOAuthError turns any error met while serving the token endpoint into the
// RFC error to answer with. go-oauth2's sentinel errors are mapped to their
// RFC 6749 codes and statuses (the library answers invalid_grant with 401);
// anything else is an internal fault and answers 503.
func asOAuthError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch err {
	// One answer for every failed code exchange, a redirect_uri the client
	// never registered included: none may tell whether the code is live.
	case oerrors.ErrInvalidAuthorizeCode, oerrors.ErrInvalidCodeChallenge,
		oerrors.ErrMissingCodeVerifier, oerrors.ErrMissingCodeChallenge,
		oerrors.ErrInvalidRefreshToken, oerrors.ErrExpiredRefreshToken,
		oerrors.ErrInvalidGrant, oerrors.ErrInvalidRedirectURI:
		return errInvalidGrant("the grant is invalid, expired, revoked, or was issued to another client or redirect_uri")
	case oerrors.ErrInvalidClient:
		return errInvalidClient("client authentication failed")
	case oerrors.ErrUnauthorizedClient:
		return errUnauthorizedClient("the client may not use this grant type")
	case oerrors.ErrInvalidScope:
		return errInvalidScope("the requested scope is invalid or exceeds what the client may ask for")
	case oerrors.ErrInvalidRequest:
		return errInvalidRequest("the request is malformed")
	}
	return ErrUnavailable
}

// writeJSON answers with a JSON body that no cache may keep (RFC 6749 §5.1).
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError answers an OAuth error as the token endpoint does. basic says
// whether the client tried HTTP Basic authentication, which RFC 6749 §5.2
// answers with a matching WWW-Authenticate challenge on invalid_client.
func WriteError(w http.ResponseWriter, e *Error, basic bool) {
	if e.RetryAfter > 0 {
		setRetryAfter(w.Header(), e.RetryAfter)
	}
	if e.DPoPNonce != "" {
		w.Header().Set(dpop.NonceHeader, e.DPoPNonce)
	}
	if e.Code == "invalid_client" && basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="oauth", charset="UTF-8"`)
	}
	body := map[string]string{"error": e.Code}
	if e.Description != "" {
		body["error_description"] = e.Description
	}
	writeJSON(w, e.Status, body)
}
