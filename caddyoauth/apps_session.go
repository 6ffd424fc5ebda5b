package caddyoauth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// appsAuth is what the self-service pages need from the sign-in: who is
// signed in, sending someone to sign in, and CSRF tokens bound to the
// session. The consent screen's login (branch authorize) is to provide it;
// until it lands, appsLogin below is a minimal one of its own.
type appsAuth interface {
	// user returns the signed-in user's id, if any.
	user(r *http.Request) (userID string, ok bool)
	// signIn answers a request from someone not signed in.
	signIn(w http.ResponseWriter, r *http.Request) error
	// csrfToken returns the token forms of this session carry.
	csrfToken(r *http.Request) string
	// checkCSRF reports whether token belongs to the request's session.
	checkCSRF(r *http.Request, token string) bool
	// serve handles the sign-in's own paths below /oauth/apps/, reporting
	// whether it did.
	serve(w http.ResponseWriter, r *http.Request) (bool, error)
}

// Cookie names and lifetimes of the minimal sign-in.
const (
	appsSessionCookie = "oauth_apps_session"
	appsLoginCookie   = "oauth_apps_login"
	appsSessionTTL    = time.Hour
	prefixAppsSession = "appsession:"
)

// appsLogin signs people in with the oauth block's users. A session is a
// random 256-bit id in an HttpOnly, SameSite=Lax cookie; the store keeps
// it under its digest only. CSRF tokens are a digest of the session id,
// so they are as unguessable as the cookie and need no storage.
type appsLogin struct {
	users  authz.Authenticator
	store  store.Store
	logger *zap.Logger
}

func (l *appsLogin) session(r *http.Request) string {
	c, err := r.Cookie(appsSessionCookie)
	if err != nil || len(c.Value) != 43 {
		return ""
	}
	return c.Value
}

func (l *appsLogin) user(r *http.Request) (string, bool) {
	sid := l.session(r)
	if sid == "" {
		return "", false
	}
	b, err := l.store.Get(r.Context(), prefixAppsSession+digestB64(sid))
	if err != nil {
		return "", false
	}
	return string(b), true
}

func (l *appsLogin) csrfToken(r *http.Request) string {
	sid := l.session(r)
	if sid == "" {
		return ""
	}
	return digestB64("csrf:" + sid)
}

func (l *appsLogin) checkCSRF(r *http.Request, token string) bool {
	want := l.csrfToken(r)
	return want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(token)) == 1
}

func (l *appsLogin) signIn(w http.ResponseWriter, r *http.Request) error {
	next := r.URL.Path
	if r.Method != http.MethodGet {
		next = AppsPath
	}
	http.Redirect(w, r, AppsPath+"/login?next="+url.QueryEscape(next), http.StatusSeeOther)
	return nil
}

func (l *appsLogin) serve(w http.ResponseWriter, r *http.Request) (bool, error) {
	switch r.URL.Path {
	case AppsPath + "/login":
		return true, l.serveLogin(w, r)
	case AppsPath + "/logout":
		return true, l.serveLogout(w, r)
	}
	return false, nil
}

func (l *appsLogin) serveLogin(w http.ResponseWriter, r *http.Request) error {
	next := r.URL.Query().Get("next")
	if !strings.HasPrefix(next, AppsPath) || strings.HasPrefix(next, "//") {
		next = AppsPath // only ever back to these pages: no open redirect
	}
	switch r.Method {
	case http.MethodGet:
		// A double-submit token against login CSRF.
		tok := randomB64()
		setCookie(w, r, appsLoginCookie, tok, 10*time.Minute)
		return renderPage(w, http.StatusOK, "login", map[string]any{"CSRF": tok, "Next": next})
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, POST")
		return renderError(w, http.StatusMethodNotAllowed, "Method not allowed.")
	}
	if err := parsePageForm(w, r); err != nil {
		return renderError(w, http.StatusBadRequest, "The form could not be read.")
	}
	c, err := r.Cookie(appsLoginCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostForm.Get("csrf_token"))) != 1 {
		return renderError(w, http.StatusForbidden, "The form expired. Go back, reload and try again.")
	}
	if l.users == nil {
		return renderError(w, http.StatusForbidden, "No users are configured.")
	}
	uid, err := l.users.Authenticate(r.Context(), r.PostForm.Get("username"), r.PostForm.Get("password"))
	if errors.Is(err, authz.ErrBadCredentials) {
		tok := randomB64()
		setCookie(w, r, appsLoginCookie, tok, 10*time.Minute)
		return renderPage(w, http.StatusUnauthorized, "login", map[string]any{"CSRF": tok, "Next": next, "Error": "Wrong username or password."})
	} else if err != nil {
		return renderError(w, http.StatusServiceUnavailable, "Signing in is not possible right now.")
	}
	sid := randomB64()
	if err := l.store.Put(r.Context(), prefixAppsSession+digestB64(sid), []byte(uid), appsSessionTTL); err != nil {
		return renderError(w, http.StatusServiceUnavailable, "Signing in is not possible right now.")
	}
	setCookie(w, r, appsSessionCookie, sid, appsSessionTTL)
	setCookie(w, r, appsLoginCookie, "", -1)
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

func (l *appsLogin) serveLogout(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return renderError(w, http.StatusMethodNotAllowed, "Method not allowed.")
	}
	if err := parsePageForm(w, r); err != nil || !l.checkCSRF(r, r.PostForm.Get("csrf_token")) {
		return renderError(w, http.StatusForbidden, "The form expired. Go back, reload and try again.")
	}
	_ = l.store.Delete(r.Context(), prefixAppsSession+digestB64(l.session(r)))
	setCookie(w, r, appsSessionCookie, "", -1)
	http.Redirect(w, r, AppsPath+"/login", http.StatusSeeOther)
	return nil
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, ttl time.Duration) {
	c := &http.Cookie{
		Name: name, Value: value, Path: AppsPath,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode,
		MaxAge: int(ttl / time.Second),
	}
	if ttl < 0 {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

func digestB64(s string) string {
	d := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(d[:])
}

func randomB64() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// Interface guards
var _ appsAuth = (*appsLogin)(nil)
