package clients

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
)

// Registration serves dynamic client registration (RFC 7591) at Path and
// each registered client's configuration endpoint (RFC 7592) at Path/<client_id>,
// under the registry's RegistrationPolicy. Every client it registers is
// marked ByRegistration, holds a registration access token (kept as its
// SHA-256 digest) that manages that client and no other, and expires when
// left unused (RegistrationPolicy.Lifetime).
type Registration struct {
	Registry *Registry
	// Path is the registration endpoint's path, such as /oauth/register.
	Path string
	// Issuer gives the issuer the registration_client_uri is built on;
	// the request's Host never is.
	Issuer func() (string, error)
	// InitialTokenDigest, when set, is the SHA-256 of the initial access
	// token a registration must present as a bearer token; nil: anyone may
	// register.
	InitialTokenDigest []byte
	Logger             *zap.Logger
}

// maxRegistrationBody caps a registration or update request.
const maxRegistrationBody = 32 << 10

// registrationRequest is a registration or update request: the metadata
// the registry understands, and what RFC 7591 and 7592 add around it.
type registrationRequest struct {
	Metadata
	ResponseTypes *[]string `json:"response_types"`
	ClientSecret  *string   `json:"client_secret"`
	// Fields of the server's answers, which an update may not send back
	// (RFC 7592 §2.2).
	RegistrationAccessToken json.RawMessage `json:"registration_access_token"`
	RegistrationClientURI   json.RawMessage `json:"registration_client_uri"`
	ClientSecretExpiresAt   json.RawMessage `json:"client_secret_expires_at"`
	ClientIDIssuedAt        json.RawMessage `json:"client_id_issued_at"`
}

// registrationInfo is a client information response (RFC 7591 §3.2.1,
// RFC 7592 §3).
type registrationInfo struct {
	*Info
	ResponseTypes           []string `json:"response_types,omitempty"`
	RegistrationAccessToken string   `json:"registration_access_token"`
	RegistrationClientURI   string   `json:"registration_client_uri"`
}

// ServeHTTP answers every request to the registration endpoint and the
// configuration endpoints below it.
func (h *Registration) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == h.Path {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeRegError(w, &RegError{Status: http.StatusMethodNotAllowed, Code: "invalid_request", Desc: "register with POST"})
			return
		}
		h.register(w, r)
		return
	}
	id := strings.TrimPrefix(r.URL.Path, h.Path+"/")
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete:
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT, DELETE")
		writeRegError(w, &RegError{Status: http.StatusMethodNotAllowed, Code: "invalid_request", Desc: "a client configuration endpoint takes GET, PUT and DELETE"})
		return
	}
	c, token, ok := h.authenticate(w, r, id)
	if !ok {
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.answer(w, http.StatusOK, c, "", token)
	case http.MethodPut:
		h.update(w, r, c, token)
	case http.MethodDelete:
		err := h.Registry.Delete(r.Context(), c.ID)
		if errors.Is(err, ErrNotFound) {
			writeBearerChallenge(w, "invalid_token", "the registration access token is invalid or its client is gone")
			return
		} else if err != nil {
			h.unavailable(w, err)
			return
		}
		h.Logger.Info("registered client deleted by itself", zap.String("client_id", c.ID))
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	}
}

// register creates a client (RFC 7591 §3.1).
func (h *Registration) register(w http.ResponseWriter, r *http.Request) {
	if h.InitialTokenDigest != nil {
		token, found, ok := authz.BearerToken(r.Header)
		switch {
		case !ok:
			writeRegError(w, &RegError{Code: "invalid_request", Desc: "send one Authorization header with one bearer token"})
			return
		case !found:
			writeBearerChallenge(w, "", "registering needs an initial access token, sent as Authorization: Bearer")
			return
		}
		d := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(d[:], h.InitialTokenDigest) != 1 {
			writeBearerChallenge(w, "invalid_token", "the initial access token is not valid")
			return
		}
	}
	req, rerr := readRegistration(w, r)
	if rerr != nil {
		writeRegError(w, rerr)
		return
	}
	c := new(Client)
	policy := h.Registry.RegistrationPolicy()
	if req.Scope == nil {
		c.Scopes = slices.Clone(policy.Scopes) // RFC 7591 §2: the server's default
	}
	if err := req.Metadata.Apply(c, h.rules(), true); err != nil {
		writeRegError(w, asRegError(err))
		return
	}
	if err := req.check(c); err != nil {
		writeRegError(w, err)
		return
	}
	token := NewSecret()
	c.RegistrationTokenSHA256 = Digest(token)
	secret, err := h.Registry.Create(r.Context(), c)
	if err != nil {
		h.unavailable(w, err)
		return
	}
	h.Logger.Info("client registered itself", zap.String("client_id", c.ID), zap.String("client_name", c.Name),
		zap.Strings("redirect_uris", c.RedirectURIs), zap.Strings("grant_types", c.Grants))
	h.answer(w, http.StatusCreated, c, secret, token)
}

// update replaces a client's metadata (RFC 7592 §2.2): fields left out
// return to their defaults. The client_id and the secret stay.
func (h *Registration) update(w http.ResponseWriter, r *http.Request, cur *Client, token string) {
	req, rerr := readRegistration(w, r)
	if rerr != nil {
		writeRegError(w, rerr)
		return
	}
	switch {
	case req.ClientID == nil || *req.ClientID != cur.ID:
		writeRegError(w, BadMetadata("an update must send the client's own client_id (RFC 7592 §2.2)"))
		return
	case req.RegistrationAccessToken != nil || req.RegistrationClientURI != nil || req.ClientSecretExpiresAt != nil || req.ClientIDIssuedAt != nil:
		writeRegError(w, BadMetadata("an update may not send registration_access_token, registration_client_uri, client_secret_expires_at or client_id_issued_at (RFC 7592 §2.2)"))
		return
	case req.ClientSecret != nil && !cur.VerifySecret(*req.ClientSecret):
		writeRegError(w, BadMetadata("client_secret is not the client's secret, which a client cannot choose"))
		return
	}
	req.ClientID = nil
	policy := h.Registry.RegistrationPolicy()
	c, err := h.Registry.Update(r.Context(), cur.ID, func(c *Client) error {
		if !sameToken(c, token) {
			return ErrNotFound
		}
		c.Name, c.RedirectURIs, c.Consent = "", nil, authz.ConsentRemember
		c.Grants = []string{authz.GrantAuthorizationCode}
		if req.Scope == nil {
			c.Scopes = slices.Clone(policy.Scopes)
		}
		if err := req.Metadata.Apply(c, h.rules(), false); err != nil {
			return err
		}
		if err := req.check(c); err != nil {
			return err
		}
		return nil
	})
	var re *RegError
	switch {
	case errors.As(err, &re):
		writeRegError(w, re)
		return
	case errors.Is(err, ErrNotFound):
		writeBearerChallenge(w, "invalid_token", "the registration access token is invalid or its client is gone")
		return
	case err != nil:
		h.unavailable(w, err)
		return
	}
	h.Logger.Info("registered client updated by itself", zap.String("client_id", c.ID), zap.String("client_name", c.Name),
		zap.Strings("redirect_uris", c.RedirectURIs))
	h.answer(w, http.StatusOK, c, "", token)
}

// authenticate finds the client a configuration endpoint request names
// and checks its registration access token. A missing client, one that
// did not register itself, and a token of another client all get the
// same 401 invalid_token (RFC 7592 §2.1).
func (h *Registration) authenticate(w http.ResponseWriter, r *http.Request, id string) (*Client, string, bool) {
	token, found, ok := authz.BearerToken(r.Header)
	switch {
	case !ok:
		writeRegError(w, &RegError{Code: "invalid_request", Desc: "send one Authorization header with one bearer token"})
		return nil, "", false
	case !found:
		writeBearerChallenge(w, "", "send the registration access token as Authorization: Bearer")
		return nil, "", false
	}
	c, err := h.Registry.Get(r.Context(), id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		h.unavailable(w, err)
		return nil, "", false
	}
	if err != nil || !sameToken(c, token) {
		writeBearerChallenge(w, "invalid_token", "the registration access token is invalid or its client is gone")
		return nil, "", false
	}
	return c, token, true
}

// sameToken reports, in constant time, whether token is c's registration
// access token.
func sameToken(c *Client, token string) bool {
	if c == nil || c.RegisteredBy != ByRegistration || c.RegistrationTokenSHA256 == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(Digest(token)), []byte(c.RegistrationTokenSHA256)) == 1
}

// rules are what a client registering itself may set: the policy's
// grants and scopes, no owner, no consent skip, no name of an operator's
// client; its own keys (private_key_jwt, self_signed_tls_client_auth)
// instead of a secret, but no tls_client_auth.
func (h *Registration) rules() Rules {
	p := h.Registry.RegistrationPolicy()
	return Rules{Grants: p.Grants, Scopes: p.Scopes, RegisteredBy: ByRegistration, ReservedNames: h.Registry.StaticNames(),
		KeyMethods: true}
}

// check applies what RFC 7591 adds to the registry's rules: response
// types that agree with the grant types, and redirect URIs a person can
// read on the consent screen.
func (req *registrationRequest) check(c *Client) *RegError {
	if req.ResponseTypes != nil {
		for _, rt := range *req.ResponseTypes {
			if rt != "code" {
				return BadMetadata("response_types may hold only code")
			}
		}
		if slices.Contains(*req.ResponseTypes, "code") != slices.Contains(c.Grants, authz.GrantAuthorizationCode) {
			return BadMetadata("response_types code goes with grant_types authorization_code (RFC 7591 §2.1)")
		}
	}
	for _, raw := range c.RedirectURIs {
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			return badRedirect("redirect_uri %q may not carry a user name or password", safeText(raw))
		}
	}
	return nil
}

// readRegistration reads a JSON body of client metadata.
func readRegistration(w http.ResponseWriter, r *http.Request) (*registrationRequest, *RegError) {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		return nil, BadMetadata("send the client metadata as JSON (Content-Type: application/json)")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRegistrationBody))
	if err != nil {
		return nil, BadMetadata("the request body is too large or unreadable")
	}
	req := new(registrationRequest)
	if err := json.Unmarshal(body, req); err != nil {
		return nil, BadMetadata("the request body is not a JSON object of client metadata: %s", safeText(err.Error()))
	}
	return req, nil
}

// answer writes the client information response: the secret only when
// just generated, and the registration access token the caller holds.
func (h *Registration) answer(w http.ResponseWriter, status int, c *Client, secret, token string) {
	iss, err := h.Issuer()
	if err != nil {
		h.unavailable(w, err)
		return
	}
	info := InfoOf(c, secret)
	info.UpdatedAt = 0
	out := &registrationInfo{
		Info:                    info,
		RegistrationAccessToken: token,
		RegistrationClientURI:   iss + h.Path + "/" + c.ID,
	}
	if slices.Contains(c.Grants, authz.GrantAuthorizationCode) {
		out.ResponseTypes = []string{"code"}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(out)
}

func (h *Registration) unavailable(w http.ResponseWriter, err error) {
	if re := asRegError(err); re.Code != "temporarily_unavailable" {
		writeRegError(w, re)
		return
	}
	h.Logger.Error("client registration: store unavailable", zap.Error(err))
	w.Header().Set("Retry-After", "1")
	writeRegError(w, &RegError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Desc: "the client store cannot be reached; retry later"})
}

// asRegError turns the registry's errors into RFC 7591 answers.
func asRegError(err error) *RegError {
	var re *RegError
	switch {
	case errors.As(err, &re):
		return re
	case errors.Is(err, ErrExists):
		return BadMetadata("client_id is already taken")
	}
	return &RegError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable"}
}

// writeBearerChallenge answers 401 with an RFC 6750 §3 challenge; code
// is empty when no token was sent (§3.1).
func writeBearerChallenge(w http.ResponseWriter, code, desc string) {
	challenge := `Bearer realm="oauth"`
	if code != "" {
		challenge += `, error="` + code + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	body := &RegError{Status: http.StatusUnauthorized, Code: code, Desc: desc}
	if code == "" {
		body.Code = "invalid_token" // the JSON body still names the problem
	}
	writeRegError(w, body)
}

// writeRegError writes an RFC 7591 §3.2.2 error.
func writeRegError(w http.ResponseWriter, e *RegError) {
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e)
}
