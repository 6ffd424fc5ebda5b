package authz

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// SessionCookie names the cookie holding a person's session id at the
// authorization server.
const SessionCookie = "oauth_session"

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

// session is what the store keeps for a browser: nothing before sign-in,
// the person after it.
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

// loadSession returns the session named by the request's cookie, or an
// empty id and nil when there is none or it has expired.
func (a *Authorizer) loadSession(r *http.Request) (string, *session, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return "", nil, nil
	}
	b, err := a.svc.store.Get(r.Context(), sessionKey(c.Value))
	if errors.Is(err, store.ErrNotFound) {
		return "", nil, nil
	} else if err != nil {
		return "", nil, err
	}
	s := new(session)
	if err := json.Unmarshal(b, s); err != nil || time.Now().UnixNano() >= s.ExpiresAt {
		return "", nil, nil
	}
	// A session of a user revoked since it began is over.
	if revoked, err := a.svc.revokedSince(r.Context(), s.UserID, s.IssuedAt); err != nil {
		return "", nil, err
	} else if revoked {
		return "", nil, a.svc.store.Delete(r.Context(), sessionKey(c.Value))
	}
	return c.Value, s, nil
}

// newSession stores a fresh session under a new random id and sets its
// cookie. A session is never upgraded in place: signing in makes a new one,
// so an id planted before sign-in is worth nothing after it.
func (a *Authorizer) newSession(ctx context.Context, w http.ResponseWriter, r *http.Request, userID, username string) (string, *session, error) {
	id := randomToken()
	now := time.Now()
	s := &session{UserID: userID, Username: username, IssuedAt: now.UnixNano(), ExpiresAt: now.Add(a.svc.cfg.SessionTTL).UnixNano()}
	b, _ := json.Marshal(s)
	if err := a.svc.store.Put(ctx, sessionKey(id), b, a.svc.cfg.SessionTTL); err != nil {
		return "", nil, err
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

func (a *Authorizer) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     SessionCookie,
		Value:    value,
		Path:     a.cfg.BasePath,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	}
}

// consentGiven reports whether the user already approved the client for
// every scope in scope.
func (a *Authorizer) consentGiven(ctx context.Context, userID, clientID, scope string) (bool, error) {
	b, err := a.svc.store.Get(ctx, consentKey(userID, clientID))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	var rec consentRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return false, nil
	}
	if gone, err := a.consentPredatesClient(ctx, clientID, rec); gone || err != nil {
		return false, err
	}
	granted, _ := ParseScope(rec.Scope)
	want, _ := ParseScope(scope)
	return subset(want, granted), nil
}

// rememberConsent records that the user approved the client for scope,
// adding to what was approved before.
func (a *Authorizer) rememberConsent(ctx context.Context, userID, clientID, scope string) error {
	key := consentKey(userID, clientID)
	prev, err := a.svc.store.Get(ctx, key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	var rec consentRecord
	_ = json.Unmarshal(prev, &rec) // a missing or bad record starts afresh
	if gone, err := a.consentPredatesClient(ctx, clientID, rec); err != nil {
		return err
	} else if gone {
		rec = consentRecord{} // given to an earlier client of this ID
	}
	old, _ := ParseScope(rec.Scope)
	add, _ := ParseScope(scope)
	for _, s := range add {
		if !subset([]string{s}, old) {
			old = append(old, s)
		}
	}
	now := time.Now()
	b, _ := json.Marshal(consentRecord{Scope: JoinScope(old), At: now.Unix(), AtNano: now.UnixNano()})
	if err := a.svc.store.Put(ctx, key, b, 0); err != nil {
		return err
	}
	// Indexed per user, for the "apps you authorized" page and revocation.
	return a.svc.store.AddMember(ctx, consentSet(userID), clientID, 0)
}

// consentRecord is what a person approved for one client.
type consentRecord struct {
	Scope string `json:"scp"`
	At    int64  `json:"at"` // unix seconds of the last approval
	// AtNano is At in unix nanoseconds; 0 in records of earlier versions.
	AtNano int64 `json:"atn,omitempty"`
}
