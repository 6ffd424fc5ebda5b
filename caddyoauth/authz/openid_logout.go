package authz

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/oidc"
	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// Logout of OpenID Connect: RP-initiated logout ends the gateway's sign-in
// session; back-channel logout tells the clients given ID tokens in it.

// logoutTokenTTL is how long a logout token is valid.
const logoutTokenTTL = 2 * time.Minute

// backchannelTimeout bounds one delivery of a logout token.
const backchannelTimeout = 5 * time.Second

var backchannelClient = &http.Client{
	Timeout:       backchannelTimeout,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// ServeEndSession is the end_session_endpoint (OpenID Connect RP-Initiated
// Logout 1.0), GET or POST: id_token_hint, client_id,
// post_logout_redirect_uri, state. The browser is sent back only to a
// post_logout_redirect_uri the client registered, matched exactly. A
// valid id_token_hint ends the session it names at once; without one a
// signed-in person is asked to confirm, so no other site can sign them out
// with a link.
func (a *Authorizer) ServeEndSession(w http.ResponseWriter, r *http.Request) {
	var params url.Values
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil || len(r.URL.RawQuery) > MaxAuthorizeQuery {
			a.errorPage(w, r, http.StatusBadRequest, "invalid_request", "end_session_invalid")
			return
		}
		params = q
	case http.MethodPost:
		form, err := ReadForm(w, r, maxFormBody)
		if err != nil {
			a.errorPage(w, r, http.StatusBadRequest, "invalid_request", "end_session_unreadable")
			return
		}
		params = form
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		a.errorPage(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "end_session_method")
		return
	}
	for name, vals := range params {
		if len(vals) > 1 {
			a.errorPage(w, r, http.StatusBadRequest, "invalid_request", "end_session_repeated", "name", safeName(name))
			return
		}
	}
	ctx := r.Context()
	hint, clientID := params.Get("id_token_hint"), params.Get("client_id")
	redirect, state := params.Get("post_logout_redirect_uri"), params.Get("state")
	var hintSub, hintSID string
	if hint != "" {
		claims, err := a.svc.verifyOwnToken(ctx, hint)
		if errors.Is(err, errNotOurs) {
			a.errorPage(w, r, http.StatusBadRequest, "invalid_logout", "id_token_hint_foreign")
			return
		} else if err != nil {
			a.unavailable(w, r, "checking an id_token_hint", err)
			return
		}
		aud := audienceOf(claims)
		if clientID != "" && clientID != aud {
			a.errorPage(w, r, http.StatusBadRequest, "invalid_logout", "id_token_hint_client")
			return
		}
		clientID = aud
		hintSub, _ = claims["sub"].(string)
		hintSID, _ = claims["sid"].(string)
	}
	var c *Client
	if clientID != "" {
		var err error
		c, err = a.svc.clients.Client(ctx, clientID)
		if errors.Is(err, ErrUnknownClient) {
			a.errorPage(w, r, http.StatusBadRequest, "unknown_client", "client_unknown")
			return
		} else if err != nil {
			a.unavailable(w, r, "looking up a client", err)
			return
		}
	}
	if redirect != "" && (c == nil || !oidc.PostLogoutRedirect(c.OpenID.PostLogoutRedirectURIs, redirect)) {
		a.log.Info("sign-out refused: unregistered post_logout_redirect_uri", zap.String("client_id", clientID))
		a.errorPage(w, r, http.StatusBadRequest, "invalid_redirect_uri", "post_logout_unregistered")
		return
	}
	sid, sess, err := a.loadSession(r)
	if err != nil {
		a.unavailable(w, r, "loading a session", err)
		return
	}
	signedIn := sess != nil && sess.UserID != ""
	confirmed := r.Method == http.MethodPost && params.Get("confirm") == "yes" && sess != nil && validCSRF(sid, params.Get("csrf_token"))
	if signedIn && hint == "" && !confirmed {
		a.confirmEndSession(w, r, c, sid, sess, params)
		return
	}
	if hintSID != "" {
		if err := a.svc.endSessionBySID(ctx, hintSID, hintSub); err != nil {
			a.unavailable(w, r, "ending a session", err)
			return
		}
	}
	if signedIn && (hint == "" || sess.UserID == hintSub) {
		if err := a.endSession(ctx, w, r, sid); err != nil {
			a.unavailable(w, r, "ending a session", err)
			return
		}
		a.svc.sessionEnded(ctx, sessionKey(sid), sess.UserID)
	}
	a.log.Info("signed out by the client", zap.String("client_id", clientID), zap.String("user_id", hintSub))
	if redirect != "" {
		a.redirect(w, r, withParams(redirect, "state", state))
		return
	}
	a.render(w, r, http.StatusOK, "signed_out.html", &PageData{})
}

// confirmEndSession asks a signed-in person whether to sign out.
func (a *Authorizer) confirmEndSession(w http.ResponseWriter, r *http.Request, c *Client, sid string, sess *session, params url.Values) {
	d := &PageData{CSRFToken: csrfToken(sid), Username: sess.Username, EndSessionURL: a.cfg.BasePath + "end_session"}
	if c != nil {
		d.AppName, d.ClientID = c.Name, c.ID
		if d.AppName == "" {
			d.AppName = c.ID
		}
	}
	for _, name := range []string{"client_id", "post_logout_redirect_uri", "state"} {
		if v := params.Get(name); v != "" {
			d.FormFields = append(d.FormFields, FormField{Name: name, Value: v})
		}
	}
	if c != nil && params.Get("client_id") == "" {
		d.FormFields = append(d.FormFields, FormField{Name: "client_id", Value: c.ID})
	}
	a.render(w, r, http.StatusOK, "end_session.html", d)
}

// endSessionBySID ends the session an ID token's sid names, wherever its
// browser is.
func (s *Service) endSessionBySID(ctx context.Context, sid, userID string) error {
	key, err := s.store.Get(ctx, prefixSID+sid)
	if errors.Is(err, store.ErrNotFound) {
		return nil // ended or expired already
	} else if err != nil {
		return err
	}
	if !strings.HasPrefix(string(key), prefixSession) {
		return nil
	}
	if err := s.store.Delete(ctx, string(key)); err != nil {
		return err
	}
	s.sessionEnded(ctx, string(key), userID)
	return nil
}

// sessionEnded tells the clients given ID tokens in the session stored
// under key that it ended (Back-Channel Logout §2.5).
func (s *Service) sessionEnded(ctx context.Context, key, userID string) {
	if !s.OpenID() {
		return
	}
	set := setSessionRPs + key
	clients, err := s.store.Members(ctx, set)
	if err != nil {
		s.log.Error("back-channel logout: listing the session's clients", zap.Error(err))
		return
	}
	if len(clients) == 0 {
		return
	}
	if err := s.store.DeleteSet(ctx, set); err != nil {
		s.log.Error("back-channel logout: forgetting the session's clients", zap.Error(err))
	}
	_ = s.store.Delete(ctx, prefixSID+oidcSID(key))
	s.sendLogoutTokens(ctx, userID, oidcSID(key), clients)
}

// logoutUser tells the clients given ID tokens for a revoked user that
// the user's sessions are over, and forgets the claims a login upstream
// gave.
func (s *Service) logoutUser(ctx context.Context, userID string) error {
	if !s.OpenID() {
		return nil
	}
	clients, err := s.store.Members(ctx, setUserRPs+userID)
	if err != nil {
		return err
	}
	if err := s.store.DeleteSet(ctx, setUserRPs+userID); err != nil {
		return err
	}
	if err := s.store.Delete(ctx, prefixUserClaims+digest(userID)); err != nil {
		return err
	}
	s.sendLogoutTokens(ctx, userID, "", clients)
	return nil
}

// sendLogoutTokens posts a logout token to each client's
// backchannel_logout_uri, in the background: a client that is slow or
// down delays no sign-out.
func (s *Service) sendLogoutTokens(ctx context.Context, userID, sid string, clientIDs []string) {
	iss, err := s.Issuer()
	if err != nil {
		s.log.Error("back-channel logout: no issuer", zap.Error(err))
		return
	}
	for _, id := range clientIDs {
		c, err := s.clients.Client(ctx, id)
		if err != nil || c.OpenID.BackchannelLogoutURI == "" {
			continue
		}
		k, err := s.idKeys[s.idTokenAlg(c)].current(ctx)
		if err != nil {
			s.log.Error("back-channel logout: no signing key", zap.String("client_id", id), zap.Error(err))
			continue
		}
		now := time.Now()
		lt := oidc.LogoutToken{Issuer: iss, ClientID: c.ID, Subject: userID, SID: sid, JTI: randomToken(),
			IssuedAt: now.Unix(), Expiry: now.Add(logoutTokenTTL).Unix()}
		tok, err := signJWS(k, oidc.LogoutTokenType, lt.JSON())
		if err != nil {
			continue
		}
		go s.postLogoutToken(c.ID, c.OpenID.BackchannelLogoutURI, tok)
	}
}

func (s *Service) postLogoutToken(clientID, uri, token string) {
	ctx, cancel := context.WithTimeout(context.Background(), backchannelTimeout)
	defer cancel()
	body := url.Values{"logout_token": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, strings.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := backchannelClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL
		}
		s.log.Warn("back-channel logout not delivered", zap.String("client_id", clientID), zap.Error(err))
		return
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		s.log.Warn("back-channel logout refused by the client", zap.String("client_id", clientID), zap.Int("status", resp.StatusCode))
		return
	}
	s.log.Info("back-channel logout delivered", zap.String("client_id", clientID))
}
