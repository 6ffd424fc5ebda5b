package authz

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-oauth2/oauth2/v4"
	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/oidc"
	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// Consent modes of a client (Client.Consent).
const (
	// ConsentRemember asks once and remembers the approved scopes per user
	// and client. It is the default, written as the empty string too.
	ConsentRemember = "remember"
	// ConsentAlways asks on every authorization request.
	ConsentAlways = "always"
	// ConsentSkip never asks: for first-party clients.
	ConsentSkip = "skip"
)

// DefaultSessionTTL is how long a sign-in lasts when Config gives no
// SessionTTL.
const DefaultSessionTTL = time.Hour

// maxFormBody caps the login, consent and logout form bodies.
const maxFormBody = 16 << 10

// Bounds of an authorization request. Its state is stored with the
// pending request and echoed to the client; nothing else it carries is
// stored without being checked against the client.
const (
	// MaxAuthorizeQuery caps the query of an authorization request; a
	// longer one is an error page.
	MaxAuthorizeQuery = 8 << 10
	// MaxState caps the state parameter; a longer one is invalid_request.
	MaxState = 1 << 10
)

// AuthorizeConfig configures the authorization code flow.
type AuthorizeConfig struct {
	// BasePath is the path the endpoints live under, ending in a slash:
	// BasePath+"authorize", "login", "consent" and "logout".
	BasePath string
	// PKCERequired makes every client send a code_challenge; public
	// clients always must.
	PKCERequired bool
	// PKCEAllowPlain accepts the plain challenge method besides S256.
	PKCEAllowPlain bool
	// Pages renders the screens. Default: the embedded templates.
	Pages *Pages
	// SecureRequest reports whether a request reached the gateway over
	// HTTPS, which makes the session cookie Secure and __Host- prefixed.
	// Default: whether it came over TLS.
	SecureRequest func(*http.Request) bool
}

// Authorizer serves the authorization endpoint (RFC 6749 §4.1) with its
// login and consent screens, on top of a Service.
type Authorizer struct {
	svc *Service
	cfg AuthorizeConfig
	log *zap.Logger
}

// NewAuthorizer builds the authorization code flow of the service.
func (s *Service) NewAuthorizer(cfg AuthorizeConfig) *Authorizer {
	if cfg.BasePath == "" {
		cfg.BasePath = "/oauth/"
	}
	if cfg.Pages == nil {
		cfg.Pages = DefaultPages()
	}
	return &Authorizer{svc: s, cfg: cfg, log: s.log}
}

// pendingRequest is a validated authorization request waiting for the
// person, kept in the store under the digest of its random id and bound
// to the browser session it started in.
type pendingRequest struct {
	ClientID        string `json:"cid"`
	RedirectURI     string `json:"ru"`
	RedirectGiven   bool   `json:"rug,omitempty"` // the request named redirect_uri, so the token request must repeat it
	State           string `json:"st,omitempty"`
	Scope           string `json:"scp,omitempty"`
	Challenge       string `json:"cc,omitempty"`
	ChallengeMethod string `json:"ccm,omitempty"`
	Resource        string `json:"res,omitempty"` // RFC 8707: the resources named, separated by spaces
	Session         string `json:"sess"`          // store key of the session
	// OIDC is what OpenID Connect adds to the request (openid.go).
	OIDC *oidc.Request `json:"oidc,omitempty"`
}

// ServeAuthorize is the authorization endpoint. It validates the request,
// keeps it server-side, and sends the browser on to sign in, to consent,
// or straight back to the client with a code.
func (a *Authorizer) ServeAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		a.errorPage(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "authorize_method")
		return
	}
	ctx := r.Context()
	if len(r.URL.RawQuery) > MaxAuthorizeQuery {
		a.errorPage(w, r, http.StatusBadRequest, "invalid_request", "authorize_too_long")
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		a.errorPage(w, r, http.StatusBadRequest, "invalid_request", "authorize_encoding")
		return
	}
	// RFC 6749 §4.1.2.1: without a known client and a redirect URI it
	// registered, the error is shown here and never redirected.
	if len(q["client_id"]) > 1 || len(q["redirect_uri"]) > 1 {
		a.errorPage(w, r, http.StatusBadRequest, "invalid_request", "authorize_repeated")
		return
	}
	clientID := q.Get("client_id")
	if clientID == "" {
		a.errorPage(w, r, http.StatusBadRequest, "invalid_request", "authorize_no_client")
		return
	}
	client, err := a.svc.clients.Client(ctx, clientID)
	var lookup *ClientLookupError
	if errors.As(err, &lookup) {
		a.log.Info("authorize: client refused", zap.String("client_id", clientID), zap.String("reason", lookup.Reason))
		a.errorPage(w, r, http.StatusBadRequest, "unknown_client", "client_unidentified", "reason", lookup.Reason)
		return
	} else if errors.Is(err, ErrUnknownClient) {
		a.errorPage(w, r, http.StatusBadRequest, "unknown_client", "client_unknown")
		return
	} else if err != nil {
		a.unavailable(w, r, "looking up a client", err)
		return
	}
	redirectURI := q.Get("redirect_uri")
	switch {
	case redirectURI != "":
		if !client.HasRedirectURI(redirectURI) {
			a.errorPage(w, r, http.StatusBadRequest, "invalid_redirect_uri", "redirect_unregistered")
			return
		}
	case len(client.RedirectURIs) == 1:
		redirectURI = client.RedirectURIs[0]
	default:
		a.errorPage(w, r, http.StatusBadRequest, "invalid_redirect_uri", "redirect_missing")
		return
	}
	p := &pendingRequest{ClientID: client.ID, RedirectURI: redirectURI, RedirectGiven: q.Has("redirect_uri"), State: q.Get("state")}

	// From here on every error goes back to the client (§4.1.2.1), unless
	// a user registered its redirect URI (refuseRequest). Nothing is
	// written to the store before the request has passed every check.
	if len(p.State) > MaxState {
		p.State = ""
		a.refuseRequest(w, r, p, client, "invalid_request", "state is longer than 1024 bytes")
		return
	}
	for name, vals := range q {
		if len(vals) > 1 && name != "resource" { // RFC 8707 §2: resource may repeat
			a.refuseRequest(w, r, p, client, "invalid_request", "parameter "+safeName(name)+" is given more than once")
			return
		}
	}
	switch rt := q.Get("response_type"); {
	case rt == "":
		a.refuseRequest(w, r, p, client, "invalid_request", "response_type is missing")
		return
	case rt != "code":
		a.refuseRequest(w, r, p, client, "unsupported_response_type", "only response_type=code is supported")
		return
	}
	if !client.AllowsGrant(GrantAuthorizationCode) {
		a.refuseRequest(w, r, p, client, "unauthorized_client", "the client may not use the authorization code grant")
		return
	}
	scope, ok := client.grantScope(q.Get("scope"))
	if !ok {
		a.refuseRequest(w, r, p, client, "invalid_scope", "the requested scope is malformed or not allowed for this client")
		return
	}
	p.Scope = scope
	resources, err := a.svc.requestedResources(q["resource"])
	var oe *Error
	if errors.As(err, &oe) {
		a.refuseRequest(w, r, p, client, oe.Code, oe.Description)
		return
	} else if err != nil {
		a.log.Error("authorize: the resources are unknown", zap.Error(err))
		a.redirectError(w, r, p, "temporarily_unavailable", "the authorization server cannot check the resource; retry later")
		return
	}
	p.Resource = strings.Join(resources, " ")
	if code, desc := a.checkPKCE(client, q.Get("code_challenge"), q.Get("code_challenge_method")); code != "" {
		a.refuseRequest(w, r, p, client, code, desc)
		return
	}
	if p.Challenge = q.Get("code_challenge"); p.Challenge != "" {
		p.ChallengeMethod = q.Get("code_challenge_method")
		if p.ChallengeMethod == "" {
			p.ChallengeMethod = PKCEPlain // RFC 7636 §4.3
		}
	}
	if !a.openIDRequest(w, r, p, client, q) {
		return
	}

	// A browser without a session gets an anonymous one: a cookie only,
	// nothing stored (see newSession).
	sid, sess, err := a.loadSession(r)
	if err == nil && sess == nil {
		sid, sess, err = a.newSession(ctx, w, r, "", "")
	}
	if err != nil {
		a.log.Error("authorize: session store unavailable", zap.Error(err))
		a.redirectError(w, r, p, "temporarily_unavailable", "the authorization server cannot reach its store; retry later")
		return
	}
	p.Session = sessionKey(sid)
	if p.OIDC.NoInteraction() {
		a.authorizeSilently(w, r, p, client, sess)
		return
	}
	rid := randomToken()
	if err := a.savePending(ctx, rid, p); err != nil {
		a.log.Error("authorize: saving the request", zap.Error(err))
		a.redirectError(w, r, p, "temporarily_unavailable", "the authorization server cannot reach its store; retry later")
		return
	}
	if !signedIn(sess, p) {
		a.redirect(w, r, a.cfg.BasePath+"login?request_id="+rid)
		return
	}
	a.redirect(w, r, a.cfg.BasePath+"consent?request_id="+rid)
}

// checkPKCE checks the challenge of an authorization request (RFC 7636
// §4.3, §4.4.1) and returns the error code and description to redirect
// with, or "" when it is acceptable.
func (a *Authorizer) checkPKCE(c *Client, challenge, method string) (string, string) {
	if challenge == "" {
		if method != "" {
			return "invalid_request", "code_challenge_method is given without code_challenge"
		}
		if c.Public || c.Unvetted || a.cfg.PKCERequired {
			return "invalid_request", "code_challenge is required (PKCE, RFC 7636)"
		}
		return "", ""
	}
	if method == "" {
		method = PKCEPlain
	}
	switch {
	case method == PKCES256:
	case method == PKCEPlain && a.cfg.PKCEAllowPlain:
	default:
		return "invalid_request", "transform algorithm not supported: use code_challenge_method=S256"
	}
	if !validChallenge(challenge, method) {
		return "invalid_request", "code_challenge is malformed"
	}
	return "", ""
}

func (a *Authorizer) savePending(ctx context.Context, rid string, p *pendingRequest) error {
	b, _ := json.Marshal(p)
	return a.svc.store.Put(ctx, pendingKey(rid), b, pendingTTL)
}

// loadPending returns the pending request rid when it belongs to the
// session sid, and re-validates its client and redirect URI against the
// current config, which a reload may have changed. It writes the error
// page itself and returns nil when the request cannot go on.
func (a *Authorizer) loadPending(w http.ResponseWriter, r *http.Request, rid, sid string) (*pendingRequest, *Client) {
	if rid == "" || sid == "" || len(rid) > 128 {
		a.expiredPage(w, r)
		return nil, nil
	}
	b, err := a.svc.store.Get(r.Context(), pendingKey(rid))
	if errors.Is(err, store.ErrNotFound) {
		a.expiredPage(w, r)
		return nil, nil
	} else if err != nil {
		a.unavailable(w, r, "loading an authorization request", err)
		return nil, nil
	}
	p := new(pendingRequest)
	if err := json.Unmarshal(b, p); err != nil || p.Session != sessionKey(sid) {
		a.expiredPage(w, r)
		return nil, nil
	}
	c, err := a.svc.clients.Client(r.Context(), p.ClientID)
	if errors.Is(err, ErrUnknownClient) || (err == nil && !c.HasRedirectURI(p.RedirectURI)) {
		a.errorPage(w, r, http.StatusBadRequest, "unknown_client", "client_gone")
		return nil, nil
	} else if err != nil {
		a.unavailable(w, r, "looking up a client", err)
		return nil, nil
	}
	return p, c
}

// takePending consumes the pending request, so that of two submissions of
// one consent only one gets a code.
func (a *Authorizer) takePending(w http.ResponseWriter, r *http.Request, rid string) bool {
	_, err := a.svc.store.Take(r.Context(), pendingKey(rid))
	if errors.Is(err, store.ErrNotFound) {
		a.expiredPage(w, r)
		return false
	} else if err != nil {
		a.unavailable(w, r, "consuming an authorization request", err)
		return false
	}
	return true
}

// issueCode mints the authorization code for an approved request and sends
// the browser back to the client with it.
func (a *Authorizer) issueCode(w http.ResponseWriter, r *http.Request, p *pendingRequest, sess *session) {
	userID := sess.UserID
	iss, err := a.svc.Issuer()
	if err != nil {
		a.unavailable(w, r, "naming the issuer", err)
		return
	}
	// RFC 6749 §4.1.3: the code records the redirect_uri only when the
	// request named one; then the token request must repeat it.
	boundURI := ""
	if p.RedirectGiven {
		boundURI = p.RedirectURI
	}
	ti, err := a.svc.manager.GenerateAuthToken(withCodeResource(r.Context(), p.Resource), oauth2.Code, &oauth2.TokenGenerateRequest{
		ClientID:            p.ClientID,
		UserID:              userID,
		RedirectURI:         boundURI,
		Scope:               p.Scope,
		CodeChallenge:       p.Challenge,
		CodeChallengeMethod: oauth2.CodeChallengeMethod(p.ChallengeMethod),
		Request:             r,
	})
	if err != nil {
		a.log.Error("authorize: issuing a code", zap.String("client_id", p.ClientID), zap.Error(err))
		a.redirectError(w, r, p, "server_error", "the authorization code could not be issued")
		return
	}
	if err := a.bindOpenID(r.Context(), ti.GetCode(), p, sess); err != nil {
		a.log.Error("authorize: binding the ID token to a code", zap.String("client_id", p.ClientID), zap.Error(err))
		a.redirectError(w, r, p, "temporarily_unavailable", "the authorization server cannot reach its store; retry later")
		return
	}
	a.log.Info("authorization code issued", zap.String("client_id", p.ClientID), zap.String("user_id", userID), zap.String("scope", p.Scope))
	a.respond(w, r, p, "code", ti.GetCode(), "state", p.State, "iss", iss)
}

// refuseRequest answers an authorization request that failed a check.
// The error goes back to the client (RFC 6749 §4.1.2.1), except for a
// client whose redirect URIs a user registered (a self-service app) or
// nobody vetted: redirecting to them with no interaction would let anyone
// use the gateway as an open redirector to any URI a user or a client can
// register (RFC 9700 §4.11.2), so the browser is shown an error page
// instead. Errors after
// the request was found valid (the person denied, the store failed) are
// redirected for every client.
func (a *Authorizer) refuseRequest(w http.ResponseWriter, r *http.Request, p *pendingRequest, c *Client, code, desc string) {
	if c.UserRegistered || c.Unvetted {
		a.log.Info("authorization refused", zap.String("client_id", p.ClientID), zap.String("error", code))
		a.errorPage(w, r, http.StatusBadRequest, "invalid_request", "authorize_refused", "code", code, "description", desc)
		return
	}
	a.redirectError(w, r, p, code, desc)
}

// redirectError sends an authorization error back to the client (RFC 6749
// §4.1.2.1) with the request's state. Both kinds of authorization
// response carry the gateway's issuer as iss (RFC 9207), never one taken
// from the request.
func (a *Authorizer) redirectError(w http.ResponseWriter, r *http.Request, p *pendingRequest, code, desc string) {
	iss, err := a.svc.Issuer()
	if err != nil {
		a.unavailable(w, r, "naming the issuer", err)
		return
	}
	a.log.Info("authorization refused", zap.String("client_id", p.ClientID), zap.String("error", code))
	a.respond(w, r, p, "error", code, "error_description", desc, "state", p.State, "iss", iss)
}

// redirect answers 302 to a GET and 303 to a POST, so the browser follows
// a form submission with a GET and never re-posts the form elsewhere (RFC
// 9700 §4.12).
func (a *Authorizer) redirect(w http.ResponseWriter, r *http.Request, to string) {
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	setPageHeaders(w)
	w.Header().Set("Location", to)
	w.WriteHeader(status)
}

// withParams adds name, value pairs with a value to uri's query, keeping
// the query the client registered as it is. Pairs with an empty value are
// left out.
func withParams(uri string, pairs ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(pairs[i]) + "=" + url.QueryEscape(pairs[i+1]))
	}
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
		if strings.HasSuffix(uri, "?") || strings.HasSuffix(uri, "&") {
			sep = ""
		}
	}
	return uri + sep + b.String()
}

// needsConsent reports whether the person must be asked before the client
// gets a code for p.
func (a *Authorizer) needsConsent(ctx context.Context, c *Client, userID string, p *pendingRequest) (bool, error) {
	if p.OIDC.ForceConsent() {
		return true, nil
	}
	switch c.Consent {
	case ConsentSkip:
		return false, nil
	case ConsentAlways:
		return true, nil
	}
	given, err := a.consentGiven(ctx, userID, c, p.RedirectURI, p.Scope)
	return !given, err
}
