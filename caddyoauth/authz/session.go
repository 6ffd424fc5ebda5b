package authz

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// SessionCookie names the cookie holding a person's session id at the
// authorization server, on plain HTTP. Over HTTPS the cookie is
// SecureSessionCookie.
const SessionCookie = "oauth_session"

// SecureSessionCookie names the session cookie over HTTPS. Browsers take a
// __Host- cookie only when it is Secure, has Path=/ and no Domain, so no
// other site (a sibling subdomain, a plain-HTTP page of this host) can set
// or overwrite it.
const SecureSessionCookie = "__Host-oauth_session"

// Store key prefixes of the authorization code flow. Session and request
// ids appear only as digests.
const (
	prefixSession = "sess:"
	prefixPending = "authreq:"
	prefixConsent = "consent:"
)

// pendingTTL is how long an authorization request waits for the person to
// sign in and decide.
const pendingTTL = 15 * time.Minute

// session is what the store keeps for a browser once a person signed in.
// Before that a browser's session is its cookie alone: an anonymous
// session binds forms and pending requests to the browser through its id
// and the CSRF token derived from it, and needs no record, so a visitor
// who never signs in costs the store nothing but a pending request.
type session struct {
	UserID    string `json:"uid,omitempty"`
	Username  string `json:"un,omitempty"`
	IssuedAt  int64  `json:"iat,omitempty"` // unix nanoseconds; 0 in sessions of earlier versions
	ExpiresAt int64  `json:"exp"`           // unix nanoseconds
}

func sessionKey(id string) string { return prefixSession + digest(id) }
func pendingKey(id string) string { return prefixPending + digest(id) }
func consentKey(userID, clientID string) string {
	return prefixConsent + digest(userID+"\x00"+clientID)
}

// csrfToken is the anti-forgery token of a session: a digest of the
// session id under its own label, so it needs no storage, reveals nothing
// of the id, and no other session's token matches.
func csrfToken(sessionID string) string {
	d := sha256.Sum256([]byte("oauth-csrf\x00" + sessionID))
	return base64.RawURLEncoding.EncodeToString(d[:])
}

func validCSRF(sessionID, presented string) bool {
	want := csrfToken(sessionID)
	return presented != "" && subtle.ConstantTimeCompare([]byte(want), []byte(presented)) == 1
}

// loadSession returns the session named by the request's cookie: the
// stored one of a signed-in person, or an anonymous one (an empty session
// with the cookie's id) when the store has none under that id, or it has
// expired or its user was revoked. With no usable cookie it returns an
// empty id and nil.
func (a *Authorizer) loadSession(r *http.Request) (string, *session, error) {
	id, ok := a.sessionID(r)
	if !ok {
		return "", nil, nil
	}
	b, err := a.svc.store.Get(r.Context(), sessionKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return id, new(session), nil
	} else if err != nil {
		return "", nil, err
	}
	s := new(session)
	if err := json.Unmarshal(b, s); err != nil || time.Now().UnixNano() >= s.ExpiresAt {
		return id, new(session), nil
	}
	// A session of a user revoked since it began is over.
	if revoked, err := a.svc.revokedSince(r.Context(), s.UserID, s.IssuedAt); err != nil {
		return "", nil, err
	} else if revoked {
		return id, new(session), a.svc.store.Delete(r.Context(), sessionKey(id))
	}
	return id, s, nil
}

// sessionID returns the session id of the request's cookie. A request
// carrying the cookie more than once (one set by another site for a wider
// path or domain, say) has none: which copy is whose cannot be told, so
// it is treated as signed out. An id must look like one the gateway made.
func (a *Authorizer) sessionID(r *http.Request) (string, bool) {
	name := a.cookieName(r)
	var id string
	n := 0
	for _, c := range r.Cookies() {
		if c.Name == name {
			id = c.Value
			n++
		}
	}
	if n != 1 || !wellFormedID(id) {
		return "", false
	}
	return id, true
}

// wellFormedID reports whether id has the form of randomToken's output:
// 43 characters of unpadded base64url.
func wellFormedID(id string) bool {
	if len(id) != 43 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// newSession starts a session under a new random id and sets its cookie;
// only a signed-in person's session is stored. A session is never
// upgraded in place: signing in makes a new one, so an id planted before
// sign-in is worth nothing after it.
func (a *Authorizer) newSession(ctx context.Context, w http.ResponseWriter, r *http.Request, userID, username string) (string, *session, error) {
	id := randomToken()
	now := time.Now()
	s := new(session)
	if userID != "" {
		s = &session{UserID: userID, Username: username, IssuedAt: now.UnixNano(), ExpiresAt: now.Add(a.svc.cfg.SessionTTL).UnixNano()}
		b, _ := json.Marshal(s)
		if err := a.svc.store.Put(ctx, sessionKey(id), b, a.svc.cfg.SessionTTL); err != nil {
			return "", nil, err
		}
	}
	http.SetCookie(w, a.cookie(r, id, int(a.svc.cfg.SessionTTL/time.Second)))
	return id, s, nil
}

// endSession deletes a session and its cookie.
func (a *Authorizer) endSession(ctx context.Context, w http.ResponseWriter, r *http.Request, id string) error {
	http.SetCookie(w, a.cookie(r, "", -1))
	if id == "" {
		return nil
	}
	return a.svc.store.Delete(ctx, sessionKey(id))
}

// secure reports whether the browser reached the gateway over HTTPS
// (AuthorizeConfig.SecureRequest).
func (a *Authorizer) secure(r *http.Request) bool {
	if a.cfg.SecureRequest != nil {
		return a.cfg.SecureRequest(r)
	}
	return r.TLS != nil
}

func (a *Authorizer) cookieName(r *http.Request) string {
	if a.secure(r) {
		return SecureSessionCookie
	}
	return SessionCookie
}

func (a *Authorizer) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	c := &http.Cookie{
		Name:     SessionCookie,
		Value:    value,
		Path:     a.cfg.BasePath,
		MaxAge:   maxAge,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
	if a.secure(r) {
		// The __Host- prefix requires Secure, Path=/ and no Domain.
		c.Name, c.Path, c.Secure = SecureSessionCookie, "/", true
	}
	return c
}

// consentGiven reports whether the user already approved the client for
// every scope in scope, for the registered redirect URI that redirectURI
// matches: a consent given for one redirect URI never applies to another.
// A record of an earlier version, which does not say for which redirect
// URI it was given, holds only for a client the operator vetted.
func (a *Authorizer) consentGiven(ctx context.Context, userID string, c *Client, redirectURI, scope string) (bool, error) {
	b, err := a.svc.store.Get(ctx, consentKey(userID, c.ID))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	var rec consentRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return false, nil
	}
	if gone, err := a.consentPredatesClient(ctx, c.ID, rec); gone || err != nil {
		return false, err
	}
	var approved string
	switch registered, ok := c.MatchRedirectURI(redirectURI); {
	case !ok:
		return false, nil
	case rec.Redirects != nil:
		approved = rec.Redirects[registered]
	case c.Unvetted || c.UserRegistered:
		return false, nil
	default:
		approved = rec.Scope
	}
	granted, _ := ParseScope(approved)
	want, _ := ParseScope(scope)
	return subset(want, granted), nil
}

// rememberConsent records that the user approved the client for scope at
// the registered redirect URI that redirectURI matches, adding to what
// was approved there before. Approvals for redirect URIs the client no
// longer has are dropped.
func (a *Authorizer) rememberConsent(ctx context.Context, userID string, c *Client, redirectURI, scope string) error {
	registered, ok := c.MatchRedirectURI(redirectURI)
	if !ok {
		return nil // loadPending checked it; a client changed meanwhile is asked again
	}
	key := consentKey(userID, c.ID)
	prev, err := a.svc.store.Get(ctx, key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	var rec consentRecord
	_ = json.Unmarshal(prev, &rec) // a missing or bad record starts afresh
	if gone, err := a.consentPredatesClient(ctx, c.ID, rec); err != nil {
		return err
	} else if gone {
		rec = consentRecord{} // given to an earlier client of this ID
	}
	redirects := map[string]string{}
	for uri, sc := range rec.Redirects {
		if slices.Contains(c.RedirectURIs, uri) {
			redirects[uri] = sc
		}
	}
	redirects[registered] = addScopes(redirects[registered], scope)
	now := time.Now()
	b, _ := json.Marshal(consentRecord{Scope: addScopes(rec.Scope, scope), Redirects: redirects, At: now.Unix(), AtNano: now.UnixNano()})
	if err := a.svc.store.Put(ctx, key, b, 0); err != nil {
		return err
	}
	// Indexed per user, for the "apps you authorized" page and revocation.
	return a.svc.store.AddMember(ctx, consentSet(userID), c.ID, 0)
}

// addScopes returns the scope list have with the scopes of add appended.
func addScopes(have, add string) string {
	old, _ := ParseScope(have)
	more, _ := ParseScope(add)
	for _, s := range more {
		if !subset([]string{s}, old) {
			old = append(old, s)
		}
	}
	return JoinScope(old)
}

// consentRecord is what a person approved for one client.
type consentRecord struct {
	Scope string `json:"scp"` // every scope approved, at any redirect URI
	At    int64  `json:"at"`  // unix seconds of the last approval
	// AtNano is At in unix nanoseconds; 0 in records of earlier versions.
	AtNano int64 `json:"atn,omitempty"`
	// Redirects holds the scopes approved at each registered redirect URI;
	// nil in records of earlier versions.
	Redirects map[string]string `json:"ru,omitempty"`
}
