package authz

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-oauth2/oauth2/v4"
	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/oidc"
	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// OpenID Connect on the authorization code flow. An authorization request
// whose granted scope holds openid binds what its ID token needs (the
// nonce, the sign-in's time and session) to the code it issues; the token
// endpoint takes that binding with the code, so a nonce goes into exactly
// one ID token, and keeps the rest with the grant family for the ID
// tokens of later refreshes.

// DefaultIDTokenTTL is how long an ID token is valid when Config gives no
// IDTokenTTL.
const DefaultIDTokenTTL = time.Hour

// Store keys of OpenID Connect. Codes and session ids appear only as
// digests.
const (
	prefixOIDCCode   = "oidccode:"  // an openid code's binding, by the code's digest
	prefixOIDCGrant  = "oidcgrant:" // a grant family's binding, without the nonce
	prefixSID        = "oidcsid:"   // a sid: the store key of the session it names
	setSessionRPs    = "oidcrp:"    // the clients given ID tokens in a session
	setUserRPs       = "oidcrpu:"   // the clients given ID tokens for a user
	prefixUserClaims = "uclaims:"   // the claims a login upstream gave at a user's last sign-in
)

// idTokenType is the typ header of ID tokens.
const idTokenType = "JWT"

// setupOpenID makes the ID token key rings: the access tokens' ring for
// its algorithm, a ring of generated keys for the other.
func (s *Service) setupOpenID(static *signingKey) {
	if !s.cfg.OpenID {
		return
	}
	if s.cfg.IDTokenTTL <= 0 {
		s.cfg.IDTokenTTL = DefaultIDTokenTTL
	}
	if s.cfg.IDTokenAlg == "" {
		s.cfg.IDTokenAlg = oidc.RS256
	}
	s.idKeys = map[string]*keyRing{}
	for _, alg := range oidc.SigningAlgs {
		if s.keys != nil && s.keys.alg == alg {
			s.idKeys[alg] = s.keys
			continue
		}
		s.idKeys[alg] = s.newRing(alg, static)
	}
}

// OpenID reports whether the service is an OpenID provider.
func (s *Service) OpenID() bool { return s.idKeys != nil }

// idTokenAlg is the algorithm of c's ID tokens.
func (s *Service) idTokenAlg(c *Client) string {
	if alg := c.OpenID.IDTokenSignedResponseAlg; alg != "" {
		return alg
	}
	return s.cfg.IDTokenAlg
}

func hasOpenID(scope string) bool {
	scopes, _ := ParseScope(scope)
	return slices.Contains(scopes, oidc.ScopeOpenID)
}

// authBinding is what an openid code carries to its ID token.
type authBinding struct {
	Nonce    string              `json:"n,omitempty"`
	AuthTime int64               `json:"at,omitempty"` // unix nanoseconds; 0: unknown
	SID      string              `json:"sid,omitempty"`
	Claims   *oidc.ClaimsRequest `json:"cl,omitempty"`
}

// oidcSID is the sid of the session stored under key: a digest under its
// own label, so it names the session to clients without revealing its id
// or store key.
func oidcSID(key string) string {
	d := sha256.Sum256([]byte("oidc-sid\x00" + key))
	return base64.RawURLEncoding.EncodeToString(d[:])
}

// bindOpenID keeps what the ID token of an openid code needs, and notes
// the client as one to tell when the session or the user's access ends.
func (a *Authorizer) bindOpenID(ctx context.Context, code string, p *pendingRequest, sess *session) error {
	if !a.svc.OpenID() || p.OIDC == nil || !p.OIDC.OpenID || !hasOpenID(p.Scope) {
		return nil
	}
	b := authBinding{Nonce: p.OIDC.Nonce, AuthTime: sess.IssuedAt, SID: oidcSID(p.Session), Claims: p.OIDC.Claims}
	raw, _ := json.Marshal(b)
	codeTTL := a.svc.cfg.CodeTTL
	if codeTTL <= 0 {
		codeTTL = pendingTTL
	}
	sessTTL := max(time.Until(time.Unix(0, sess.ExpiresAt)), time.Second)
	return store.WriteBatch(ctx, a.svc.store, []store.Write{
		{Key: prefixOIDCCode + digest(code), Value: raw, TTL: codeTTL},
		{Key: prefixSID + b.SID, Value: []byte(p.Session), TTL: sessTTL},
		{Set: setSessionRPs + p.Session, Key: p.ClientID, TTL: sessTTL},
		{Set: setUserRPs + sess.UserID, Key: p.ClientID, TTL: a.svc.usedCodeTTL()},
	})
}

// idTokenForCode adds the ID token to the answer of a code issued for the
// openid scope, and keeps its binding for the refreshes of its family.
func (s *Service) idTokenForCode(ctx context.Context, c *Client, code string, ti oauth2.TokenInfo, resp *tokenResponse) error {
	if !s.OpenID() || !hasOpenID(resp.Scope) {
		return nil
	}
	raw, err := s.store.Take(ctx, prefixOIDCCode+digest(code))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	var b authBinding
	if json.Unmarshal(raw, &b) != nil {
		return nil
	}
	if resp.IDToken, err = s.idToken(ctx, c, ti.GetUserID(), resp, &b); err != nil {
		return err
	}
	fam := familyOf(ti)
	if fam == "" || resp.RefreshToken == "" {
		return nil
	}
	b.Nonce = "" // the nonce belongs to the first ID token only
	grant, _ := json.Marshal(b)
	return s.store.Put(ctx, prefixOIDCGrant+fam, grant, s.usedCodeTTL())
}

// idTokenForRefresh adds a fresh ID token to a refresh of a grant that
// began with an openid code: same sign-in time, no nonce (OIDC Core §12.2).
func (s *Service) idTokenForRefresh(ctx context.Context, c *Client, resp *tokenResponse) error {
	if !s.OpenID() || resp.family == "" || !hasOpenID(resp.Scope) {
		return nil
	}
	raw, err := s.store.Get(ctx, prefixOIDCGrant+resp.family)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	var b authBinding
	if json.Unmarshal(raw, &b) != nil {
		return nil
	}
	resp.IDToken, err = s.idToken(ctx, c, resp.userID, resp, &b)
	return err
}

// idToken signs the ID token of a token response.
func (s *Service) idToken(ctx context.Context, c *Client, userID string, resp *tokenResponse, b *authBinding) (string, error) {
	k, err := s.idKeys[s.idTokenAlg(c)].current(ctx)
	if err != nil {
		return "", err
	}
	iss, err := s.Issuer()
	if err != nil {
		return "", err
	}
	user, err := s.userClaims(ctx, userID)
	if err != nil {
		return "", err
	}
	scopes, _ := ParseScope(resp.Scope)
	now := time.Now()
	t := oidc.IDToken{
		Issuer: iss, Subject: userID, ClientID: c.ID,
		IssuedAt: now.Unix(), Expiry: now.Add(s.cfg.IDTokenTTL).Unix(),
		Nonce: b.Nonce, SID: b.SID, AMR: []string{oidc.AMRPassword},
		AccessTokenHash: oidc.AccessTokenHash(resp.AccessToken),
		Claims:          oidc.ForIDToken(user, scopes, b.Claims),
	}
	if b.AuthTime != 0 {
		t.AuthTime = time.Unix(0, b.AuthTime).Unix()
	}
	return signJWS(k, idTokenType, t.JSON())
}

// userClaims returns a user's claims: a configured user's from the
// config, others' as a login upstream gave them at their last sign-in.
func (s *Service) userClaims(ctx context.Context, userID string) (oidc.Claims, error) {
	if s.cfg.UserClaims != nil {
		if c := s.cfg.UserClaims(userID); c != nil {
			return c, nil
		}
	}
	raw, err := s.store.Get(ctx, prefixUserClaims+digest(userID))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var c oidc.Claims
	_ = json.Unmarshal(raw, &c) // an unreadable record is no claims
	return c, nil
}

type claimsSinkKey struct{}

// withClaimsSink lets a login source hand back the claims of the person it
// signed in (UpstreamLogin.ClaimsFrom).
func withClaimsSink(ctx context.Context, sink *oidc.Claims) context.Context {
	return context.WithValue(ctx, claimsSinkKey{}, sink)
}

func setLoginClaims(ctx context.Context, c oidc.Claims) {
	if p, ok := ctx.Value(claimsSinkKey{}).(*oidc.Claims); ok {
		*p = c
	}
}

// saveLoginClaims keeps the claims a login source gave, for the ID tokens
// and UserInfo answers of the user's grants.
func (s *Service) saveLoginClaims(ctx context.Context, userID string, c oidc.Claims) error {
	if !s.OpenID() || c == nil {
		return nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return s.store.Put(ctx, prefixUserClaims+digest(userID), b, s.usedCodeTTL())
}

// ServeUserInfo is the UserInfo endpoint (OIDC Core §5.3): for an access
// token whose scope holds openid, the user's sub and the claims its
// scopes release. The token comes in the Authorization header, or in a
// POST body's access_token (RFC 6750 §2.2); errors are RFC 6750's.
func (s *Service) ServeUserInfo(w http.ResponseWriter, r *http.Request) {
	var token string
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeBearer(w, http.StatusMethodNotAllowed, "", "")
		return
	}
	token, found, ok := BearerToken(r.Header)
	if !ok {
		writeBearer(w, http.StatusBadRequest, "invalid_request", "send one Authorization header with one bearer token")
		return
	}
	if !found && r.Method == http.MethodPost && r.Header.Get("Authorization") == "" {
		form, err := ReadForm(w, r, maxFormBody)
		if err == nil {
			token, found = form.Get("access_token"), form.Has("access_token")
		}
	}
	if !found {
		writeBearer(w, http.StatusUnauthorized, "", "")
		return
	}
	id, err := s.Validate(r.Context(), token)
	if errors.Is(err, ErrTokenInvalid) || errors.Is(err, ErrTokenExpired) {
		writeBearer(w, http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired or revoked")
		return
	} else if err != nil {
		s.log.Error("userinfo: store unavailable", zap.Error(err))
		w.Header().Set("Retry-After", "1")
		writeBearer(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the token store cannot be reached")
		return
	}
	if id.UserID == "" || !hasOpenID(id.Scope) {
		writeBearer(w, http.StatusForbidden, "insufficient_scope", "the access token was not issued for the openid scope")
		return
	}
	user, err := s.userClaims(r.Context(), id.UserID)
	if err != nil {
		s.log.Error("userinfo: store unavailable", zap.Error(err))
		w.Header().Set("Retry-After", "1")
		writeBearer(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the token store cannot be reached")
		return
	}
	scopes, _ := ParseScope(id.Scope)
	out := map[string]any{}
	for k, v := range oidc.ForUserInfo(user, scopes) {
		out[k] = v
	}
	out["sub"] = id.UserID
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

// writeBearer answers an RFC 6750 §3 error, with its challenge.
func writeBearer(w http.ResponseWriter, status int, code, desc string) {
	challenge := `Bearer realm="oauth"`
	if code != "" {
		challenge += `, error="` + code + `"`
	}
	if code == "insufficient_scope" {
		challenge += `, scope="openid"`
	}
	if status != http.StatusMethodNotAllowed {
		w.Header().Set("WWW-Authenticate", challenge)
	}
	w.Header().Set("Cache-Control", "no-store")
	body := map[string]string{}
	if code != "" {
		body["error"], body["error_description"] = code, desc
	}
	writeJSON(w, status, body)
}

// errNotOurs refuses a token this service did not sign.
var errNotOurs = errors.New("not a token of this issuer")

// verifyOwnToken checks that token is a JWS signed by one of the
// service's published keys and issued under its issuer, and returns its
// claims. Expiry is not checked: an id_token_hint may have expired (OIDC
// Core §3.1.2.1).
func (s *Service) verifyOwnToken(ctx context.Context, token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(token) > MaxTokenLength {
		return nil, errNotOurs
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	pb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, errNotOurs
	}
	var h jwtHeader
	if json.Unmarshal(hb, &h) != nil || h.Kid == "" {
		return nil, errNotOurs
	}
	var k *signingKey
	for _, r := range s.rings() {
		found, err := r.byKid(ctx, h.Kid)
		if err != nil {
			return nil, err
		}
		if found != nil {
			k = found
			break
		}
	}
	if k == nil || k.alg != h.Alg || !verifySignature(k.priv.Public(), parts[0]+"."+parts[1], sig) {
		return nil, errNotOurs
	}
	var claims map[string]any
	if json.Unmarshal(pb, &claims) != nil {
		return nil, errNotOurs
	}
	iss, err := s.Issuer()
	if err != nil {
		return nil, err
	}
	if claims["iss"] != iss {
		return nil, errNotOurs
	}
	return claims, nil
}

func verifySignature(pub crypto.PublicKey, input string, sig []byte) bool {
	d := sha256.Sum256([]byte(input))
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if len(sig) != 64 {
			return false
		}
		return ecdsa.Verify(p, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(p, crypto.SHA256, d[:], sig) == nil
	}
	return false
}

// audienceOf returns the client an ID token was issued to: its azp, or
// its one audience.
func audienceOf(claims map[string]any) string {
	if azp, ok := claims["azp"].(string); ok {
		return azp
	}
	switch aud := claims["aud"].(type) {
	case string:
		return aud
	case []any:
		if len(aud) == 1 {
			s, _ := aud[0].(string)
			return s
		}
	}
	return ""
}

// idTokenHint verifies an id_token_hint sent by client c and returns its
// sub and sid.
func (s *Service) idTokenHint(ctx context.Context, hint, clientID string) (sub, sid string, err error) {
	claims, err := s.verifyOwnToken(ctx, hint)
	if err != nil {
		return "", "", err
	}
	if clientID != "" && audienceOf(claims) != clientID {
		return "", "", errNotOurs
	}
	sub, _ = claims["sub"].(string)
	sid, _ = claims["sid"].(string)
	if sub == "" {
		return "", "", errNotOurs
	}
	return sub, sid, nil
}

// openIDRequest reads what OpenID Connect adds to an authorization request
// into p. It answers the request itself and reports false when it is
// refused.
func (a *Authorizer) openIDRequest(w http.ResponseWriter, r *http.Request, p *pendingRequest, c *Client, q url.Values) bool {
	openID := a.svc.OpenID() && hasOpenID(p.Scope)
	req, e := oidc.ParseRequest(q, openID, c.OpenID.MaxAgeDefault(), time.Now())
	p.OIDC = req
	if e != nil {
		a.refuseRequest(w, r, p, c, e.Code, e.Description)
		return false
	}
	if hint := q.Get("id_token_hint"); hint != "" && openID {
		sub, _, err := a.svc.idTokenHint(r.Context(), hint, c.ID)
		if errors.Is(err, errNotOurs) {
			a.refuseRequest(w, r, p, c, "invalid_request", "id_token_hint is not an ID token this server issued to the client")
			return false
		} else if err != nil {
			a.log.Error("authorize: checking an id_token_hint", zap.Error(err))
			a.redirectError(w, r, p, "temporarily_unavailable", "the authorization server cannot reach its store; retry later")
			return false
		}
		req.HintSubject = sub
	}
	return true
}

// signedIn reports whether the session's sign-in answers the request: a
// person signed in, recently enough for prompt=login and max_age, and as
// the user an id_token_hint names.
func signedIn(sess *session, p *pendingRequest) bool {
	if sess == nil || sess.UserID == "" || !p.OIDC.Fresh(sess.IssuedAt) {
		return false
	}
	return p.OIDC == nil || p.OIDC.HintSubject == "" || p.OIDC.HintSubject == sess.UserID
}

// authorizeSilently answers a request with prompt=none: a code when the
// person is signed in as asked and approved the client before, otherwise
// an error to the client, never a page (OIDC Core §3.1.2.6).
func (a *Authorizer) authorizeSilently(w http.ResponseWriter, r *http.Request, p *pendingRequest, c *Client, sess *session) {
	if r.Method == http.MethodHead {
		setPageHeaders(w) // a HEAD issues no code
		return
	}
	if !signedIn(sess, p) {
		a.redirectError(w, r, p, "login_required", "the person must sign in")
		return
	}
	ask, err := a.needsConsent(r.Context(), c, sess.UserID, p)
	if err != nil {
		a.log.Error("authorize: loading a consent", zap.Error(err))
		a.redirectError(w, r, p, "temporarily_unavailable", "the authorization server cannot reach its store; retry later")
		return
	}
	if ask {
		a.redirectError(w, r, p, "consent_required", "the person must approve the request")
		return
	}
	a.issueCode(w, r, p, sess)
}

// respond sends an authorization response back to the client: in the
// redirect's query, or in a form the browser posts (form_post).
func (a *Authorizer) respond(w http.ResponseWriter, r *http.Request, p *pendingRequest, params ...string) {
	if !p.OIDC.FormPost() {
		a.redirect(w, r, withParams(p.RedirectURI, params...))
		return
	}
	data := &PageData{AppName: p.ClientID, ScriptNonce: randomToken()}
	if c, err := a.svc.clients.Client(r.Context(), p.ClientID); err == nil && c.Name != "" {
		data.AppName = c.Name
	}
	// The redirect URI is one the client registered, matched exactly; the
	// template would otherwise blank an app's own scheme.
	if u, err := url.Parse(p.RedirectURI); err == nil && !slices.Contains([]string{"javascript", "data", "vbscript"}, strings.ToLower(u.Scheme)) {
		data.FormAction = safeURL(p.RedirectURI)
	}
	for i := 0; i+1 < len(params); i += 2 {
		if params[i+1] != "" {
			data.FormFields = append(data.FormFields, FormField{Name: params[i], Value: params[i+1]})
		}
	}
	a.render(w, r, http.StatusOK, "form_post.html", data)
}
