package authz

import (
	"errors"
	"net/http"

	"go.uber.org/zap"
)

// The session of the authorization screens, for other pages of the
// authorization server (the self-service app pages): the same cookie, the
// same sign-in and the same CSRF tokens, without an authorization request.

// SessionUser returns the user signed in on the request's session ("" when
// nobody is) and the session's CSRF token ("" when there is no session).
func (a *Authorizer) SessionUser(r *http.Request) (userID, csrf string, err error) {
	sid, sess, err := a.loadSession(r)
	if err != nil || sess == nil {
		return "", "", err
	}
	return sess.UserID, csrfToken(sid), nil
}

// EnsureSession returns the CSRF token of the request's session, starting
// an anonymous one when there is none, so that a sign-in form is bound to
// the browser that fetched it (no login CSRF).
func (a *Authorizer) EnsureSession(w http.ResponseWriter, r *http.Request) (csrf string, err error) {
	sid, sess, err := a.loadSession(r)
	if err == nil && sess == nil {
		sid, _, err = a.newSession(r.Context(), w, r, "", "")
	}
	if err != nil {
		return "", err
	}
	return csrfToken(sid), nil
}

// ValidCSRF reports whether token is the CSRF token of the request's
// session.
func (a *Authorizer) ValidCSRF(r *http.Request, token string) (bool, error) {
	sid, sess, err := a.loadSession(r)
	if err != nil || sess == nil {
		return false, err
	}
	return validCSRF(sid, token), nil
}

// SignIn checks a username and password under the lockout (Service.Login)
// and replaces the request's session with a new, signed-in one. It returns
// ErrBadCredentials for a failed sign-in, and a 429 *Error with RetryAfter
// for a locked one.
func (a *Authorizer) SignIn(w http.ResponseWriter, r *http.Request, username, password string) (string, error) {
	if username == "" || password == "" {
		return "", ErrBadCredentials
	}
	userID, err := a.svc.Login(r, LoginForm, "", username, password)
	if errors.Is(err, ErrBadCredentials) {
		a.log.Info("sign-in failed")
		return "", err
	} else if err != nil {
		return "", err
	}
	if sid, _, err := a.loadSession(r); err == nil && sid != "" {
		_ = a.svc.store.Delete(r.Context(), sessionKey(sid)) // the old id dies
	}
	if _, _, err := a.newSession(r.Context(), w, r, userID, username); err != nil {
		return "", err
	}
	a.log.Info("signed in", zap.String("user_id", userID))
	return userID, nil
}

// SignOut ends the request's session.
func (a *Authorizer) SignOut(w http.ResponseWriter, r *http.Request) error {
	sid, _, err := a.loadSession(r)
	if err != nil {
		return err
	}
	return a.endSession(r.Context(), w, r, sid)
}
