package caddyoauth

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/dpop"
)

func init() {
	caddy.RegisterModule(Protect{})
}

// Protect lets a request through only with a valid bearer token, and hands
// the caller's identity to the next handlers: it deletes every copy of the
// identity headers the caller sent, every Connection option and trailer
// naming one (and Authorization trailers), then sets them from the token.
//
// It sets these placeholders:
//
//	{http.auth.user.id}  the token's user; empty for a token with none
//	{oauth.client_id}    the client the token was issued to
//	{oauth.scope}        the token's scopes, space-separated
type Protect struct {
	// Scopes the token must all hold; a token without them gets 403
	// insufficient_scope. Default: none.
	Scopes []string `json:"scopes,omitempty"`

	// Header carrying the user ID to the upstream. Default: X-User-ID.
	UserHeader string `json:"user_header,omitempty"`

	// Header carrying the client_id. Default: X-OAuth-Client-ID.
	ClientHeader string `json:"client_header,omitempty"`

	// Header carrying the granted scopes. Default: X-OAuth-Scope.
	ScopeHeader string `json:"scope_header,omitempty"`

	// When true, a request with no token passes on with no identity
	// headers; a bad token is still refused. Default: false.
	Optional bool `json:"optional,omitempty"`

	// Realm named in the WWW-Authenticate challenge. Default: api.
	Realm string `json:"realm,omitempty"`

	// When true, the Authorization header with the bearer token goes on to
	// the next handlers and the upstream. Default: false: the gateway
	// consumes the token and deletes the header, so an upstream that knows
	// nothing of OAuth (and its logs) never holds a live credential.
	ForwardToken bool `json:"forward_token,omitempty"`

	// The resource identifier (RFC 8707, RFC 9728) of what the block
	// guards: an http or https URL with no query or fragment. A token
	// requested for other resources is refused with 401 invalid_token.
	// Default: the issuer in a site that serves oauth_server, else the
	// one origin of the site address, else none (only tokens requested
	// for no resource pass).
	Resource string `json:"resource,omitempty"`

	// When true, only a token requested for this block's resource passes;
	// one requested with no resource is refused. Default: false.
	AudienceRequired bool `json:"audience_required,omitempty"`

	// Which tokens pass: allowed (bearer tokens and DPoP-bound tokens
	// with their proofs, RFC 9449) or required (DPoP-bound tokens only).
	// A DPoP-bound token is refused as a bearer token everywhere.
	// Default: allowed.
	DPoP string `json:"dpop,omitempty"`

	app        *App
	svc        *authz.Service
	strip      []string
	challenge  string
	resourceID string // Resource in canonical form
	// target gives the block's resource and challenge, derived once.
	target    func() (*protectTarget, error)
	logger    *zap.Logger
	accessLog *accessLog // redact.go
	// Canonical forms of the three header names, so setting them on each
	// request skips net/http's canonicalisation.
	userKey, clientKey, scopeKey string
}

// CaddyModule returns the Caddy module information.
func (Protect) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.oauth_protect",
		New: func() caddy.Module { return new(Protect) },
	}
}

// Provision finds the oauth app and sets defaults.
func (p *Protect) Provision(ctx caddy.Context) error {
	p.logger = ctx.Logger()
	app, err := oauthApp(ctx)
	if err != nil {
		return err
	}
	p.app, p.svc = app, app.Service()
	p.accessLog = newAccessLog(ctx)
	if p.UserHeader == "" {
		p.UserHeader = DefaultUserHeader
	}
	if p.ClientHeader == "" {
		p.ClientHeader = DefaultClientHeader
	}
	if p.ScopeHeader == "" {
		p.ScopeHeader = DefaultScopeHeader
	}
	if p.Realm == "" {
		p.Realm = "api"
	}
	for _, s := range p.Scopes {
		if _, ok := authz.ParseScope(s); !ok || strings.Contains(s, " ") {
			return fmt.Errorf("oauth_protect: %q is not a valid scope", s)
		}
	}
	for _, h := range []string{p.UserHeader, p.ClientHeader, p.ScopeHeader} {
		if err := checkIdentityHeader(h); err != nil {
			return fmt.Errorf("oauth_protect: %v", err)
		}
	}
	if strings.ContainsAny(p.Realm, "\"\\\r\n") {
		return fmt.Errorf("oauth_protect: realm may not contain quotes, backslashes or line breaks")
	}
	if p.DPoP != "" && p.DPoP != DPoPRequired && p.DPoP != DPoPAllowed {
		return fmt.Errorf("oauth_protect: dpop must be required or allowed, not %q", p.DPoP)
	}
	if p.Resource != "" {
		if p.resourceID, err = authz.ParseProtectedResource(p.Resource); err != nil {
			return fmt.Errorf("oauth_protect: resource %q: %v", p.Resource, err)
		}
	}
	app.RegisterIdentityHeaders(p.UserHeader, p.ClientHeader, p.ScopeHeader)
	p.prepareHeaders()
	p.challenge = `Bearer realm="` + p.Realm + `"`
	// The resource is derived from the sites with the issuer, so the http
	// app is needed as oauth_server needs it (Server.Provision).
	if app.httpApp == nil {
		if h, err := ctx.AppIfConfigured("http"); err == nil {
			app.httpApp, _ = h.(*caddyhttp.App)
		}
	}
	app.registerProtect(p)
	p.target = sync.OnceValues(func() (*protectTarget, error) {
		t, err := app.resources()
		if err != nil {
			return nil, err
		}
		if tg, ok := t.targets[p]; ok {
			return tg, nil
		}
		return &protectTarget{resource: p.resourceID, challenge: p.challenge}, nil
	})
	return nil
}

// prepareHeaders derives the folded names to strip and the canonical keys
// to set from the configured header names.
func (p *Protect) prepareHeaders() {
	p.strip = nil
	for _, h := range []string{p.UserHeader, p.ClientHeader, p.ScopeHeader} {
		p.strip = append(p.strip, normHeader(h))
	}
	p.userKey = textproto.CanonicalMIMEHeaderKey(p.UserHeader)
	p.clientKey = textproto.CanonicalMIMEHeaderKey(p.ClientHeader)
	p.scopeKey = textproto.CanonicalMIMEHeaderKey(p.ScopeHeader)
}

// oauthApp returns the oauth app, refusing a config that lacks one.
func oauthApp(ctx caddy.Context) (*App, error) {
	v, err := ctx.AppIfConfigured("oauth")
	if errors.Is(err, caddy.ErrNotConfigured) {
		return nil, fmt.Errorf("the oauth global option is not configured: add an oauth block with your clients to the Caddyfile's global options")
	} else if err != nil {
		return nil, err // the app is configured but failed to load: say why
	}
	return v.(*App), nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (p *Protect) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if lw, logged := p.accessLog.takeOver(w, r); logged != nil {
		return logged(p.serve(lw, r, next))
	}
	return p.serve(w, r, next)
}

func (p *Protect) serve(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// The app's identity headers include this block's own and those of
	// every other oauth_protect block, so a site without oauth_server never
	// forwards a forged one either: one pass over the request's headers.
	names := p.strip
	if p.app != nil {
		names = p.app.identityHeaders()
	}
	stripIdentity(r, names, true)

	tg := protectTarget{resource: p.resourceID, challenge: p.challenge}
	if p.target != nil {
		t, err := p.target()
		if err != nil {
			// A config being refused: nothing passes.
			w.Header().Set("Retry-After", "1")
			return caddyhttp.Error(http.StatusServiceUnavailable, err)
		}
		tg = *t
	}

	token, dpopScheme, found, ok := authz.AccessToken(r.Header)
	if !ok {
		observeValidation(validationInvalid)
		p.setChallenge(w, tg, dpopScheme, `, error="invalid_request", error_description="send one Authorization header with one bearer token"`)
		return caddyhttp.Error(http.StatusBadRequest, errors.New("malformed bearer credentials"))
	}
	if !found {
		observeValidation(validationMissing)
		if p.Optional {
			delete(r.Header, "Dpop")
			return next.ServeHTTP(w, r)
		}
		if p.DPoP != DPoPRequired {
			w.Header().Set("WWW-Authenticate", tg.challenge)
		}
		w.Header().Add("WWW-Authenticate", p.dpopChallenge(tg, ""))
		return caddyhttp.Error(http.StatusUnauthorized, errors.New("no bearer token"))
	}
	if p.DPoP == DPoPRequired && !dpopScheme {
		observeValidation(validationInvalid)
		p.setChallenge(w, tg, true, `, error="invalid_token", error_description="this resource takes DPoP-bound access tokens only"`)
		return caddyhttp.Error(http.StatusUnauthorized, errors.New("a bearer token where DPoP is required"))
	}

	id, err := p.svc.Validate(r.Context(), token)
	if err != nil {
		if errors.Is(err, authz.ErrTokenInvalid) || errors.Is(err, authz.ErrTokenExpired) {
			desc, result := "the access token is invalid or revoked", validationInvalid
			if errors.Is(err, authz.ErrTokenExpired) {
				desc, result = "the access token expired", validationExpired
			}
			observeValidation(result)
			p.setChallenge(w, tg, dpopScheme, `, error="invalid_token", error_description="`+desc+`"`)
			return caddyhttp.Error(http.StatusUnauthorized, err)
		}
		// The store could not answer: never let the request through.
		observeValidation(validationStoreError)
		if c := p.logger.Check(zapcore.ErrorLevel, "cannot validate token: store unavailable"); c != nil {
			c.Write(zap.Error(err))
		}
		w.Header().Set("Retry-After", "1")
		return caddyhttp.Error(http.StatusServiceUnavailable, errors.New("token store unavailable"))
	}
	// A bound token, or one in the DPoP scheme, must come from its holder;
	// a bearer token costs this one comparison.
	if id.Cnf != nil || dpopScheme {
		if err := p.checkSender(w, r, tg, token, dpopScheme, id); err != nil {
			return err
		}
	}
	// RFC 8707: a token requested for resources passes only where one of
	// them is guarded; one requested for none, unless the block requires
	// an audience. A comparison with what the token's record holds.
	if (id.Audience != "" || p.AudienceRequired) && !authz.HasAudience(id.Audience, tg.resource) {
		observeValidation(validationInvalid)
		desc := "the access token is for another resource"
		if id.Audience == "" {
			desc = "the access token must be requested for this resource"
		}
		p.setChallenge(w, tg, dpopScheme, `, error="invalid_token", error_description="`+desc+`"`)
		return caddyhttp.Error(http.StatusUnauthorized, errors.New("access token for another resource"))
	}
	if !authz.HasScopes(id.Scope, p.Scopes) {
		observeValidation(validationInsufficientScope)
		p.setChallenge(w, tg, dpopScheme, `, error="insufficient_scope", scope="`+strings.Join(p.Scopes, " ")+`"`)
		return caddyhttp.Error(http.StatusForbidden, errors.New("insufficient scope"))
	}

	observeValidation(validationOK)
	if !p.ForwardToken {
		delete(r.Header, "Authorization")
		delete(r.Header, "Dpop") // the proof goes with the token
	}
	if id.UserID != "" {
		r.Header[p.userKey] = []string{id.UserID}
	}
	r.Header[p.clientKey] = []string{id.ClientID}
	r.Header[p.scopeKey] = []string{id.Scope}
	// The placeholders are answered from id when something asks for them
	// (request_header, the access log...), rather than copied into the
	// replacer's map on every request. Empty values are answered too, so a
	// template never sends the literal placeholder for a token with no user.
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl.Map(identityPlaceholders{id}.get)
	return next.ServeHTTP(w, r)
}

// Values of Protect.DPoP, and of a client's dpop in the Caddyfile.
const (
	DPoPRequired = "required"
	DPoPAllowed  = "allowed"
)

// setChallenge sets the block's WWW-Authenticate challenge with params
// (each starting with ", "), in the scheme the request used.
func (p *Protect) setChallenge(w http.ResponseWriter, tg protectTarget, dpopScheme bool, params string) {
	if dpopScheme {
		w.Header().Set("WWW-Authenticate", p.dpopChallenge(tg, params))
		return
	}
	w.Header().Set("WWW-Authenticate", tg.challenge+params)
}

// dpopChallenge is the block's challenge in the DPoP scheme (RFC 9449
// §7.1): realm and resource_metadata as in its Bearer challenge, params,
// and the algorithms proofs may use.
func (p *Protect) dpopChallenge(tg protectTarget, params string) string {
	c := dpop.Scheme + strings.TrimPrefix(tg.challenge, "Bearer") + params
	if v := p.svc.DPoP(); v != nil {
		c += `, algs="` + strings.Join(v.Algorithms(), " ") + `"`
	}
	return c
}

// checkSender refuses a request whose token is bound to a sender it does
// not come from (authz.CheckSender), answering RFC 9449 §7.1 or RFC 6750
// errors in the request's scheme; a DPoP-bound token sent as a bearer
// token is told of the DPoP scheme too. A nonce to move on to is set in
// DPoP-Nonce.
func (p *Protect) checkSender(w http.ResponseWriter, r *http.Request, tg protectTarget, token string, dpopScheme bool, id *authz.Identity) error {
	method := r.Method
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.Method != "" {
		method = orig.Method
	}
	nonce, err := p.svc.CheckSender(r.Context(), authz.SenderRequest{Method: method, URL: dpopTarget(r, tg.resource),
		Header: r.Header, TLS: r.TLS, Token: token, DPoP: dpopScheme}, id)
	if err == nil {
		if nonce != "" {
			w.Header().Set(dpop.NonceHeader, nonce)
		}
		return nil
	}
	var de *dpop.Error
	switch {
	case errors.As(err, &de):
		observeValidation(validationInvalid)
		if de.Nonce != "" {
			w.Header().Set(dpop.NonceHeader, de.Nonce)
		}
		p.setChallenge(w, tg, true, `, error="`+de.Code+`", error_description="`+de.Description+`"`)
		return caddyhttp.Error(http.StatusUnauthorized, err)
	case errors.Is(err, authz.ErrDPoPBoundAsBearer):
		observeValidation(validationInvalid)
		p.setChallenge(w, tg, false, `, error="invalid_token", error_description="`+err.Error()+`"`)
		w.Header().Add("WWW-Authenticate", p.dpopChallenge(tg, ""))
		return caddyhttp.Error(http.StatusUnauthorized, err)
	case errors.Is(err, authz.ErrNotDPoPBound), errors.Is(err, authz.ErrCertificateBound), errors.Is(err, authz.ErrDPoPUnavailable):
		observeValidation(validationInvalid)
		p.setChallenge(w, tg, dpopScheme, `, error="invalid_token", error_description="`+err.Error()+`"`)
		return caddyhttp.Error(http.StatusUnauthorized, err)
	}
	// The replay records or the nonces' key could not be read.
	observeValidation(validationStoreError)
	if c := p.logger.Check(zapcore.ErrorLevel, "cannot check a DPoP proof: store unavailable"); c != nil {
		c.Write(zap.Error(err))
	}
	w.Header().Set("Retry-After", "1")
	return caddyhttp.Error(http.StatusServiceUnavailable, errors.New("token store unavailable"))
}

// dpopTarget is the URI a DPoP proof must name for r (htu, RFC 9449 §4.3):
// the scheme and host of the block's resource, which come from the config
// (the issuer's, behind a proxy or a load balancer), and the path the
// client sent, before any rewrite or handle_path took part of it. A block
// guarding no resource takes the scheme of the connection and the Host
// header.
func dpopTarget(r *http.Request, resource string) string {
	origin := ""
	if i := strings.Index(resource, "://"); i >= 0 {
		origin = resource
		if j := strings.IndexByte(resource[i+3:], '/'); j >= 0 {
			origin = resource[:i+3+j]
		}
	}
	if origin == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		origin = scheme + "://" + r.Host
	}
	path := r.URL.EscapedPath()
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		path = orig.URL.EscapedPath()
	}
	return origin + path
}

// identityPlaceholders answers the placeholders of a validated token.
type identityPlaceholders struct{ id *authz.Identity }

func (p identityPlaceholders) get(key string) (any, bool) {
	switch key {
	case "http.auth.user.id":
		return p.id.UserID, true
	case "oauth.client_id":
		return p.id.ClientID, true
	case "oauth.scope":
		return p.id.Scope, true
	}
	return nil, false
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Protect)(nil)
	_ caddyhttp.MiddlewareHandler = (*Protect)(nil)
)
