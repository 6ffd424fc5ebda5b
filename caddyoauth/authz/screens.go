package authz

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"go.uber.org/zap"
)

// The screens of the authorization code flow. Every form carries the
// session's CSRF token and the pending request's id; the request itself
// stays in the store.

// ServeLogin shows the sign-in form (GET) and checks a submitted one
// (POST: username, password, csrf_token, request_id).
func (a *Authorizer) ServeLogin(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		sid, sess, rid, p, c := a.loadScreen(w, r)
		if c == nil {
			return
		}
		if signedIn(sess, p) {
			a.redirect(w, r, a.consentURL(rid))
			return
		}
		a.render(w, r, http.StatusOK, "login.html", a.pageData(c, p, sid, rid, sess))
	case http.MethodPost:
		form, sid, sess, ok := a.readPost(w, r)
		if !ok {
			return
		}
		rid := form.Get("request_id")
		p, c := a.loadPending(w, r, rid, sid)
		if c == nil {
			return
		}
		username, password := form.Get("username"), form.Get("password")
		data := a.pageData(c, p, sid, rid, sess)
		data.Username = username
		if username == "" || password == "" {
			data.Error = a.text(r, "login.missing")
			a.render(w, r, http.StatusOK, "login.html", data)
			return
		}
		// Login applies the lockout: a locked attempt is refused before
		// the password is looked at.
		userID, err := a.svc.Login(r, LoginForm, c.ID, username, password)
		var tooMany *Error
		if errors.As(err, &tooMany) && tooMany.Status == http.StatusTooManyRequests {
			setRetryAfter(w.Header(), tooMany.RetryAfter)
			data.Error = a.text(r, "login.too_many")
			a.render(w, r, http.StatusTooManyRequests, "login.html", data)
			return
		} else if errors.Is(err, ErrBadCredentials) {
			a.log.Info("sign-in failed", zap.String("client_id", c.ID))
			data.Error = a.text(r, "login.bad_credentials")
			a.render(w, r, http.StatusOK, "login.html", data)
			return
		} else if err != nil {
			a.log.Error("sign-in source unavailable", zap.Error(err))
			a.errorPage(w, r, http.StatusServiceUnavailable, "signin_unavailable", "signin_unavailable")
			return
		}
		// A new session for the signed-in person; the old id dies.
		_ = a.svc.store.Delete(r.Context(), sessionKey(sid))
		newID, _, err := a.newSession(r.Context(), w, r, userID, username)
		if err != nil {
			a.unavailable(w, r, "saving a session", err)
			return
		}
		p.Session = sessionKey(newID)
		if err := a.savePending(r.Context(), rid, p); err != nil {
			a.unavailable(w, r, "saving an authorization request", err)
			return
		}
		a.log.Info("signed in", zap.String("user_id", userID), zap.String("client_id", c.ID))
		a.redirect(w, r, a.consentURL(rid))
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		a.errorPage(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "page_method")
	}
}

// ServeConsent shows the consent screen (GET), or skips it when the person
// already approved, and takes the decision (POST: consent=allow|deny,
// csrf_token, request_id).
func (a *Authorizer) ServeConsent(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		sid, sess, rid, p, c := a.loadScreen(w, r)
		if c == nil {
			return
		}
		if !signedIn(sess, p) {
			a.redirect(w, r, a.cfg.BasePath+"login?request_id="+url.QueryEscape(rid))
			return
		}
		ask, err := a.needsConsent(r.Context(), c, sess.UserID, p)
		if err != nil {
			a.unavailable(w, r, "loading a consent", err)
			return
		}
		if !ask {
			if r.Method == http.MethodHead {
				setPageHeaders(w) // a HEAD must not use up the request
				return
			}
			if a.takePending(w, r, rid) {
				a.issueCode(w, r, p, sess)
			}
			return
		}
		a.render(w, r, http.StatusOK, "consent.html", a.pageData(c, p, sid, rid, sess))
	case http.MethodPost:
		form, sid, sess, ok := a.readPost(w, r)
		if !ok {
			return
		}
		rid := form.Get("request_id")
		p, c := a.loadPending(w, r, rid, sid)
		if c == nil {
			return
		}
		if !signedIn(sess, p) {
			a.redirect(w, r, a.cfg.BasePath+"login?request_id="+url.QueryEscape(rid))
			return
		}
		switch form.Get("consent") {
		case "allow":
			if c.Consent != ConsentAlways {
				if err := a.rememberConsent(r.Context(), sess.UserID, c, p.RedirectURI, p.Scope); err != nil {
					a.unavailable(w, r, "saving a consent", err)
					return
				}
			}
			if a.takePending(w, r, rid) {
				a.issueCode(w, r, p, sess)
			}
		case "deny":
			if a.takePending(w, r, rid) {
				a.redirectError(w, r, p, "access_denied", "the resource owner denied the request")
			}
		default:
			a.errorPage(w, r, http.StatusBadRequest, "invalid_request", "consent_answer")
		}
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		a.errorPage(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "page_method")
	}
}

// ServeLogout ends the session (POST: csrf_token, and request_id to go back
// to the sign-in form of a pending request).
func (a *Authorizer) ServeLogout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		a.errorPage(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "logout_method")
		return
	}
	form, sid, sess, ok := a.readPost(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	// Read the pending request before the session that owns it ends.
	var p *pendingRequest
	rid := form.Get("request_id")
	if rid != "" {
		if b, err := a.svc.store.Get(ctx, pendingKey(rid)); err == nil {
			p = new(pendingRequest)
			if json.Unmarshal(b, p) != nil || p.Session != sessionKey(sid) {
				p = nil
			}
		}
	}
	if err := a.endSession(ctx, w, r, sid); err != nil {
		a.unavailable(w, r, "ending a session", err)
		return
	}
	a.svc.sessionEnded(ctx, sessionKey(sid), sess.UserID)
	a.log.Info("signed out", zap.String("user_id", sess.UserID))
	if p != nil {
		newID, _, err := a.newSession(ctx, w, r, "", "")
		if err == nil {
			p.Session = sessionKey(newID)
			err = a.savePending(ctx, rid, p)
		}
		if err != nil {
			a.unavailable(w, r, "saving a session", err)
			return
		}
		a.redirect(w, r, a.cfg.BasePath+"login?request_id="+url.QueryEscape(rid))
		return
	}
	a.render(w, r, http.StatusOK, "signed_out.html", &PageData{})
}

// readPost reads a form post strictly and checks its CSRF token against
// the browser's session. It writes the error page and reports false when
// the post is refused: a missing session or token, or another session's
// token, is 403.
func (a *Authorizer) readPost(w http.ResponseWriter, r *http.Request) (url.Values, string, *session, bool) {
	form, err := ReadForm(w, r, maxFormBody)
	if err != nil {
		a.errorPage(w, r, http.StatusBadRequest, "invalid_request", "form_unreadable")
		return nil, "", nil, false
	}
	sid, sess, err := a.loadSession(r)
	if err != nil {
		a.unavailable(w, r, "loading a session", err)
		return nil, "", nil, false
	}
	if sess == nil || !validCSRF(sid, form.Get("csrf_token")) {
		a.log.Info("form post refused: missing or wrong CSRF token", zap.String("path", r.URL.Path))
		a.errorPage(w, r, http.StatusForbidden, "refused", "form_refused")
		return nil, "", nil, false
	}
	return form, sid, sess, true
}

func (a *Authorizer) consentURL(rid string) string {
	return a.cfg.BasePath + "consent?request_id=" + url.QueryEscape(rid)
}

func (a *Authorizer) pageData(c *Client, p *pendingRequest, sid, rid string, sess *session) *PageData {
	d := &PageData{
		AppName:        c.Name,
		ClientID:       c.ID,
		RedirectTo:     redirectTarget(p.RedirectURI),
		UserRegistered: c.UserRegistered,
		Unvetted:       c.Unvetted,
		ClientHost:     c.Host,
		RequestID:      rid,
		CSRFToken:      csrfToken(sid),
		LoginURL:       a.cfg.BasePath + "login",
		ConsentURL:     a.cfg.BasePath + "consent",
		LogoutURL:      a.cfg.BasePath + "logout",
	}
	d.Scopes, _ = ParseScope(p.Scope)
	if d.AppName == "" {
		d.AppName = c.ID
	}
	if sess != nil {
		d.Username = sess.Username
	}
	if d.Username == "" && p.OIDC != nil {
		d.Username = p.OIDC.LoginHint
	}
	return d
}

// redirectTarget names where a redirect URI leads, for a person to judge:
// its host and port, or its scheme when it has no host (an app's own
// scheme, RFC 8252 §7.1).
func redirectTarget(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return ""
	}
	if u.Host != "" {
		return u.Host
	}
	return u.Scheme + ":"
}

func (a *Authorizer) expiredPage(w http.ResponseWriter, r *http.Request) {
	a.errorPage(w, r, http.StatusBadRequest, "expired", "expired")
}

func (a *Authorizer) unavailable(w http.ResponseWriter, r *http.Request, doing string, err error) {
	a.log.Error("authorize: store unavailable", zap.String("while", doing), zap.Error(err))
	a.errorPage(w, r, http.StatusServiceUnavailable, "unavailable", "store_unavailable")
}

// loadScreen loads what showing a screen needs: the browser's session and
// the pending authorization request named by request_id. When either
// cannot be had it answers the request itself and returns a nil client.
func (a *Authorizer) loadScreen(w http.ResponseWriter, r *http.Request) (sid string, sess *session, rid string, p *pendingRequest, c *Client) {
	sid, sess, err := a.loadSession(r)
	if err != nil {
		a.unavailable(w, r, "loading a session", err)
		return "", nil, "", nil, nil
	}
	rid = r.URL.Query().Get("request_id")
	p, c = a.loadPending(w, r, rid, sid)
	return sid, sess, rid, p, c
}
