package selfservice

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/pages"
)

// signIn is what the self-service pages need from the sign-in: who is
// signed in, sending someone to sign in, and CSRF tokens bound to the
// session.
type signIn interface {
	// user returns the signed-in user's id and the session's CSRF token;
	// ok is false when nobody is signed in.
	user(r *http.Request) (userID, csrf string, ok bool, err error)
	// signIn answers a request from someone not signed in.
	signIn(w http.ResponseWriter, r *http.Request) error
	// checkCSRF reports whether token belongs to the request's session.
	checkCSRF(r *http.Request, token string) (bool, error)
	// serve handles the sign-in's own paths below /oauth/apps/, reporting
	// whether it did.
	serve(w http.ResponseWriter, r *http.Request) (bool, error)
}

// sessionSignIn is the consent screen's session (the oauth_session cookie
// on /oauth/), so signing in on either signs in on both, with a sign-in
// form of its own that returns to the self-service pages instead of an
// authorization request.
type sessionSignIn struct {
	h      *Handler
	az     *authz.Authorizer
	logger *zap.Logger
}

func (l *sessionSignIn) user(r *http.Request) (string, string, bool, error) {
	uid, csrf, err := l.az.SessionUser(r)
	return uid, csrf, err == nil && uid != "", err
}

func (l *sessionSignIn) checkCSRF(r *http.Request, token string) (bool, error) {
	return l.az.ValidCSRF(r, token)
}

func (l *sessionSignIn) signIn(w http.ResponseWriter, r *http.Request) error {
	next := r.URL.Path
	if r.Method != http.MethodGet {
		next = Path
	}
	http.Redirect(w, r, Path+"/login?next="+url.QueryEscape(next), http.StatusSeeOther)
	return nil
}

func (l *sessionSignIn) serve(w http.ResponseWriter, r *http.Request) (bool, error) {
	switch r.URL.Path {
	case Path + "/login":
		return true, l.serveLogin(w, r)
	case Path + "/logout":
		return true, l.serveLogout(w, r)
	}
	return false, nil
}

// safeNext keeps the return path on these pages: no open redirect. The
// path is cleaned first, so dot segments cannot climb out of Path; one
// with anything but printable ASCII (the pages' paths have nothing else),
// a backslash, a query or a fragment is refused.
func safeNext(next string) string {
	if next == "" || next[0] != '/' || strings.ContainsAny(next, "\\?#") || strings.IndexFunc(next, notPrintableASCII) >= 0 {
		return Path
	}
	clean := path.Clean(next)
	if clean != Path && !strings.HasPrefix(clean, Path+"/") {
		return Path
	}
	return clean
}

func notPrintableASCII(r rune) bool { return r <= ' ' || r > '~' }

// loginPage is the consent screen's sign-in form, posting back here.
func (l *sessionSignIn) loginPage(w http.ResponseWriter, r *http.Request, status int, csrf, next, msg string) error {
	return l.h.pages().Render(w, r, status, "login.html", &pages.Data{CSRFToken: csrf, Error: msg,
		LoginURL: Path + "/login?next=" + url.QueryEscape(next)}, pages.FormActionSelf)
}

func (l *sessionSignIn) serveLogin(w http.ResponseWriter, r *http.Request) error {
	next := safeNext(r.URL.Query().Get("next"))
	switch r.Method {
	case http.MethodGet:
		csrf, err := l.az.EnsureSession(w, r)
		if err != nil {
			return l.unavailable(w, r, err)
		}
		return l.loginPage(w, r, http.StatusOK, csrf, next, "")
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, POST")
		return l.h.renderError(w, r, http.StatusMethodNotAllowed, "page_method")
	}
	if err := parsePageForm(w, r); err != nil {
		return l.h.renderError(w, r, http.StatusBadRequest, "form_unreadable")
	}
	if ok, err := l.az.ValidCSRF(r, r.PostForm.Get("csrf_token")); err != nil {
		return l.unavailable(w, r, err)
	} else if !ok {
		return l.h.renderError(w, r, http.StatusForbidden, "form_expired")
	}
	_, err := l.az.SignIn(w, r, r.PostForm.Get("username"), r.PostForm.Get("password"))
	var tooMany *authz.Error
	if errors.As(err, &tooMany) && tooMany.Status == http.StatusTooManyRequests {
		csrf, err := l.az.EnsureSession(w, r)
		if err != nil {
			return l.unavailable(w, r, err)
		}
		w.Header().Set("Retry-After", strconv.Itoa(int((tooMany.RetryAfter+time.Second-1)/time.Second)))
		return l.loginPage(w, r, http.StatusTooManyRequests, csrf, next, l.h.pages().Text(r, "login.too_many"))
	} else if errors.Is(err, authz.ErrBadCredentials) {
		csrf, err := l.az.EnsureSession(w, r)
		if err != nil {
			return l.unavailable(w, r, err)
		}
		return l.loginPage(w, r, http.StatusUnauthorized, csrf, next, l.h.pages().Text(r, "login.bad_credentials"))
	} else if err != nil {
		return l.unavailable(w, r, err)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

func (l *sessionSignIn) serveLogout(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return l.h.renderError(w, r, http.StatusMethodNotAllowed, "logout_method")
	}
	if err := parsePageForm(w, r); err != nil {
		return l.h.renderError(w, r, http.StatusBadRequest, "form_unreadable")
	}
	if ok, err := l.az.ValidCSRF(r, r.PostForm.Get("csrf_token")); err != nil {
		return l.unavailable(w, r, err)
	} else if !ok {
		return l.h.renderError(w, r, http.StatusForbidden, "form_expired")
	}
	if err := l.az.SignOut(w, r); err != nil {
		return l.unavailable(w, r, err)
	}
	http.Redirect(w, r, Path+"/login", http.StatusSeeOther)
	return nil
}

func (l *sessionSignIn) unavailable(w http.ResponseWriter, r *http.Request, err error) error {
	l.logger.Error("self-service sign-in: session store unavailable", zap.Error(err))
	w.Header().Set("Retry-After", "1")
	return l.h.renderError(w, r, http.StatusServiceUnavailable, "apps_signin_unavailable")
}

// Interface guards
var _ signIn = (*sessionSignIn)(nil)
