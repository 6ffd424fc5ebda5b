package authz

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-oauth2/oauth2/v4"
	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/dpop"
)

// MaxTokenRequestBody caps the token endpoint's request body.
const MaxTokenRequestBody = 16 << 10

// Bounds of a form body that ReadForm accepts: no OAuth request needs
// more parameters, longer names or longer values (client assertions and
// redirect URIs are the longest, at a few KB).
const (
	MaxFormParams      = 32
	MaxFormNameLength  = 64
	MaxFormValueLength = 8 << 10
)

// secretParams may never travel in a URL, where access logs keep them.
var secretParams = []string{"client_secret", "password", "code", "refresh_token", "code_verifier", "client_assertion"}

// tokenRequest is a parsed, checked token endpoint request.
type tokenRequest struct {
	form   url.Values
	client *Client
	basic  bool // the client authenticated with HTTP Basic
}

func (t *tokenRequest) get(name string) string { return t.form.Get(name) }

// ServeToken is the token endpoint (RFC 6749 §3.2): it answers every request
// itself, with tokens or an RFC 6749 §5.2 error, and returns nothing.
func (s *Service) ServeToken(w http.ResponseWriter, r *http.Request) {
	req, err := s.parseTokenRequest(w, r)
	if err != nil {
		s.refuse(w, r, req, err)
		return
	}
	if err := s.tokenClientLimit(r.Context(), req.client); err != nil {
		s.refuse(w, r, req, err)
		return
	}
	ctx, bound, err := s.bindTokenRequest(r, req.client)
	if err != nil {
		s.refuse(w, r, req, err)
		return
	}
	resp, err := s.grant(ctx, req, r)
	if err != nil {
		s.refuse(w, r, req, err)
		return
	}
	if bound.jkt != "" {
		resp.TokenType = TokenTypeDPoP
	}
	if bound.nonce != "" {
		w.Header().Set(dpop.NonceHeader, bound.nonce)
	}
	s.chargePublicClient(r.Context(), req.client)
	gt := req.get("grant_type")
	msg := "token issued"
	if gt == GrantRefreshToken {
		msg = "token refreshed"
	}
	s.log.Info(msg,
		zap.String("grant_type", gt),
		zap.String("client_id", req.client.ID),
		zap.String("user_id", resp.userID),
		zap.String("scope", resp.Scope))
	if s.hooks.TokenIssued != nil {
		s.hooks.TokenIssued(gt, req.client.ID)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Service) refuse(w http.ResponseWriter, r *http.Request, req *tokenRequest, err error) {
	e := asOAuthError(err)
	fields := []zap.Field{zap.String("error", e.Code)}
	var grant, clientID string
	if req != nil {
		grant = req.get("grant_type")
		// Only a known grant type is logged as is: the field is the
		// caller's to fill, with anything up to a stolen token.
		logged := "unsupported"
		if slices.Contains(KnownGrants, grant) {
			logged = grant
		}
		fields = append(fields, zap.String("grant_type", logged))
		if req.client != nil {
			clientID = req.client.ID
			fields = append(fields, zap.String("client_id", clientID))
		}
	}
	if s.hooks.TokenRefused != nil {
		s.hooks.TokenRefused(grant, clientID, e.Code)
	}
	if e == ErrUnavailable || e == ErrLoginUnavailable {
		s.log.Error("token endpoint cannot reach its store or login source", append(fields, zap.Error(err))...)
	} else {
		s.log.Info("token refused", fields...)
	}
	WriteError(w, e, req != nil && req.basic)
}

// parseTokenRequest reads the form body strictly and authenticates the
// client. The returned request is non-nil once the form is read, so errors
// can be answered in kind.
func (s *Service) parseTokenRequest(w http.ResponseWriter, r *http.Request) (*tokenRequest, error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, oauthErr("invalid_request", http.StatusMethodNotAllowed, "the token endpoint takes POST only")
	}
	form, err := ReadForm(w, r, MaxTokenRequestBody)
	if err != nil {
		return nil, err
	}
	for _, p := range secretParams {
		if r.URL.Query().Has(p) {
			return nil, errInvalidRequest("parameter " + p + " must be sent in the request body, not the URL")
		}
	}
	req := &tokenRequest{form: form}
	if req.get("grant_type") == "" {
		return req, errInvalidRequest("grant_type is missing")
	}
	client, basic, err := s.AuthenticateClient(r.Context(), r, form)
	req.basic = basic
	if err != nil {
		return req, err
	}
	req.client = client
	return req, nil
}

// ReadForm reads an application/x-www-form-urlencoded body of at most limit
// bytes and refuses a parameter given more than once (RFC 6749 §3.1; but
// resource, RFC 8707 §2), more than MaxFormParams parameters, and names or values longer than
// MaxFormNameLength and MaxFormValueLength. It never reads the URL's query,
// where secrets do not belong.
func ReadForm(w http.ResponseWriter, r *http.Request, limit int64) (url.Values, error) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/x-www-form-urlencoded" {
		return nil, errInvalidRequest("the body must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, errInvalidRequest("the request body is too large")
		}
		return nil, errInvalidRequest("the request body could not be read")
	}
	// Count the pairs before parsing them, so a body of thousands of
	// empty pairs costs no map.
	if strings.Count(string(body), "&")+1 > MaxFormParams {
		return nil, errInvalidRequest("the request has too many parameters")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errInvalidRequest("the request body is not valid form encoding")
	}
	for name, vals := range form {
		// RFC 8707 §2: resource may be given several times.
		if len(vals) > 1 && name != "resource" {
			return nil, errInvalidRequest("parameter " + safeName(name) + " is given more than once")
		}
		if len(name) > MaxFormNameLength {
			return nil, errInvalidRequest("a parameter name is too long")
		}
		for _, v := range vals {
			if len(v) > MaxFormValueLength {
				return nil, errInvalidRequest("parameter " + safeName(name) + " is too long")
			}
		}
		if len(vals) > 1 {
			continue // its empty values are left out where it is read
		}
		// RFC 6749 §3.2: a parameter sent without a value is treated as
		// omitted (so `client_secret=` next to Basic is not a second
		// authentication method).
		if vals[0] == "" {
			delete(form, name)
		}
	}
	return form, nil
}

// safeName keeps a client-chosen parameter name printable and short for an
// error description.
func safeName(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '?'
		}
		return r
	}, s)
}

// AuthenticateClient authenticates the client of a request by HTTP Basic
// (client_secret_basic) or by form fields (client_secret_post), never both,
// or by client_id alone for a public client; a client registered for
// another method (Client.Auth) by that method only (client_keys.go).
// basic reports whether the Authorization header was tried, so
// invalid_client can be answered with a Basic challenge.
func (s *Service) AuthenticateClient(ctx context.Context, r *http.Request, form url.Values) (c *Client, basic bool, err error) {
	if len(r.Header.Values("Authorization")) > 1 {
		return nil, false, errInvalidRequest("send one Authorization header")
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		// A Basic header Go cannot decode is still Basic: answer it with
		// the Basic challenge (RFC 6749 §5.2).
		scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if strings.EqualFold(scheme, "Basic") {
			return nil, true, errInvalidClient("malformed client credentials")
		}
	}
	if basic {
		// RFC 6749 §2.3.1: both parts are form-urlencoded before Basic.
		var e1, e2 error
		id, e1 = url.QueryUnescape(id)
		secret, e2 = url.QueryUnescape(secret)
		if e1 != nil || e2 != nil {
			return nil, true, errInvalidClient("malformed client credentials")
		}
		if form.Has("client_secret") || hasAssertion(form) {
			return nil, true, errInvalidRequest("use one client authentication method, not both")
		}
		if fid := form.Get("client_id"); fid != "" && fid != id {
			return nil, true, errInvalidRequest("client_id differs from the authenticated client")
		}
	} else if r.Header.Get("Authorization") != "" {
		// RFC 6749 §5.2: authentication tried in the Authorization header
		// gets a 401 with a challenge; Basic is the scheme we take.
		return nil, true, errInvalidClient("unsupported Authorization scheme for client authentication")
	} else if hasAssertion(form) {
		c, err := s.authenticateAssertion(r, form)
		return c, false, err
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if id == "" {
		return nil, basic, errInvalidClient("client authentication is missing")
	}
	c, err = s.clients.Client(ctx, id)
	if errors.Is(err, ErrUnknownClient) {
		return nil, basic, errInvalidClient("client authentication failed")
	} else if err != nil {
		return nil, basic, err
	}
	if c.Auth != nil {
		if err := s.authenticateWithoutSecret(r, c, secret, basic); err != nil {
			return nil, basic, err
		}
		return c, basic, nil
	}
	if c.Public {
		if secret != "" || basic {
			return nil, basic, errInvalidClient("a public client has no secret")
		}
		return c, false, nil
	}
	if err := s.verifySecret(r, c, secret); err != nil {
		return nil, basic, err
	}
	return c, basic, nil
}

// tokenResponse is the RFC 6749 §5.1 answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	IDToken      string `json:"id_token,omitempty"`

	userID string
	family string // set by refreshes, for their ID token
}

func responseFor(ti oauth2.TokenInfo) *tokenResponse {
	return &tokenResponse{
		AccessToken:  ti.GetAccess(),
		TokenType:    "Bearer",
		ExpiresIn:    int64(ti.GetAccessExpiresIn() / time.Second),
		RefreshToken: ti.GetRefresh(),
		Scope:        ti.GetScope(),
		userID:       ti.GetUserID(),
	}
}

// grant runs the requested grant for an authenticated client.
func (s *Service) grant(ctx context.Context, req *tokenRequest, r *http.Request) (*tokenResponse, error) {
	gt := req.get("grant_type")
	known := false
	for _, g := range KnownGrants {
		known = known || g == gt
	}
	if !known {
		return nil, errUnsupportedGrant("grant_type " + safeName(gt) + " is not supported")
	}
	c := req.client
	if !c.AllowsGrant(gt) {
		return nil, errUnauthorizedClient("the client may not use the " + gt + " grant")
	}
	// RFC 8707: the resources the token is for, checked before any grant
	// consumes anything.
	resources, err := s.requestedResources(req.form["resource"])
	if err != nil {
		return nil, err
	}
	// The manager's own secret check passes for the client authenticated
	// above (authenticatedClient), so the secret is not handed to it.
	ctx, _ = withGrant(ctx, c, gt, resources)
	tgr := &oauth2.TokenGenerateRequest{ClientID: c.ID, Request: r}
	switch gt {
	case GrantClientCredentials:
		if c.Public {
			return nil, errUnauthorizedClient("a public client cannot use client_credentials")
		}
		if err := s.checkActing(ctx, c); err != nil {
			return nil, err
		}
		scope, ok := c.grantScope(req.get("scope"))
		if !ok {
			return nil, errInvalidScope("the requested scope is malformed or not allowed for this client")
		}
		tgr.Scope, tgr.UserID = scope, c.UserID
		ti, err := s.manager.GenerateAccessToken(ctx, oauth2.ClientCredentials, tgr)
		if err != nil {
			return nil, err
		}
		return responseFor(ti), nil

	case GrantPassword:
		username, password := req.get("username"), req.get("password")
		if username == "" || password == "" {
			return nil, errInvalidRequest("username and password are required")
		}
		scope, ok := c.grantScope(req.get("scope"))
		if !ok {
			return nil, errInvalidScope("the requested scope is malformed or not allowed for this client")
		}
		uid, err := s.passwordLogin(r, c, username, password)
		if err != nil {
			return nil, err
		}
		tgr.Scope, tgr.UserID = scope, uid
		ti, err := s.manager.GenerateAccessToken(ctx, oauth2.PasswordCredentials, tgr)
		if err != nil {
			return nil, err
		}
		return responseFor(ti), nil

	case GrantAuthorizationCode:
		code, redirectURI := req.get("code"), req.get("redirect_uri")
		if code == "" {
			return nil, errInvalidRequest("code is missing")
		}
		// RFC 6749 §4.1.3: when the code records a redirect_uri, the
		// request must carry the identical one; the manager compares them,
		// and an omitted one does not match.
		tgr.Code, tgr.RedirectURI, tgr.CodeVerifier = code, redirectURI, req.get("code_verifier")
		if v := tgr.CodeVerifier; v != "" && !ValidVerifier(v) {
			// RFC 7636 §4.1: 43-128 unreserved characters. The manager
			// itself refuses a missing, extra or wrong verifier.
			return nil, errInvalidGrant("code_verifier is malformed")
		}
		ti, err := s.manager.GenerateAccessToken(ctx, oauth2.AuthorizationCode, tgr)
		if err != nil {
			e := asOAuthError(err)
			if e.Code == "invalid_grant" {
				s.revokeReplayedCode(ctx, code)
			}
			return nil, e
		}
		resp := responseFor(ti)
		return resp, s.idTokenForCode(ctx, c, code, ti, resp)

	case GrantRefreshToken:
		resp, err := s.refresh(ctx, c, req.get("refresh_token"), req.get("scope"), resources)
		if err != nil {
			return nil, err
		}
		return resp, s.idTokenForRefresh(ctx, c, resp)
	}
	return nil, errUnsupportedGrant("grant_type is not supported")
}

// revokeReplayedCode revokes what a code was exchanged for when the code
// is presented again (RFC 6749 §4.1.2).
func (s *Service) revokeReplayedCode(ctx context.Context, code string) {
	b, err := s.store.Get(ctx, usedCodeKey(code))
	if err != nil || len(b) == 0 {
		return
	}
	fam, userID := parseUsedCodeMarker(b)
	if err := s.RevokeFamily(ctx, userID, fam); err != nil {
		s.log.Error("revoking tokens of a replayed code", zap.Error(err))
		return
	}
	s.log.Warn("authorization code replayed: its tokens are revoked", zap.String("family", fam))
}
