package authz

import (
	"context"
	"errors"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/caddyoauth/gateway/caddyoauth/oidc"
)

// ErrBadCredentials is returned by an Authenticator for a wrong username or
// password, without saying which.
var ErrBadCredentials = errors.New("invalid username or password")

// Authenticator checks a person's username and password and returns the
// user ID they stand for. It returns ErrBadCredentials for a failed login
// and any other error when it could not decide (a source that is down).
type Authenticator interface {
	Authenticate(ctx context.Context, username, password string) (userID string, err error)
}

// User is a configured account.
type User struct {
	Username     string
	PasswordHash []byte // bcrypt
	UserID       string
	Claims       oidc.Claims // OpenID Connect claims; nil: none
}

// ClaimsByUserID indexes the claims of users by user ID, for
// Config.UserClaims: every user is there, with empty claims when none are
// configured. Users sharing an ID share the first claims found.
func (s StaticUsers) ClaimsByUserID() map[string]oidc.Claims {
	out := make(map[string]oidc.Claims, len(s))
	for _, u := range s {
		if c := out[u.UserID]; len(c) == 0 {
			if u.Claims != nil {
				out[u.UserID] = u.Claims
			} else {
				out[u.UserID] = oidc.Claims{}
			}
		}
	}
	return out
}

// IsBcrypt reports whether s looks like a bcrypt hash.
func IsBcrypt(s string) bool {
	return len(s) == 60 && (strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$"))
}

// StaticUsers authenticates against a fixed set of users with bcrypt
// password hashes.
type StaticUsers map[string]*User

var (
	fakeMu     sync.Mutex
	fakeHashes = map[int][]byte{}
)

// fakeHash returns a hash of the given bcrypt cost to compare against when
// the username is unknown, so a failed login takes as long whether or not
// the user exists. It is made once per cost, on first need.
func fakeHash(cost int) []byte {
	fakeMu.Lock()
	defer fakeMu.Unlock()
	h, ok := fakeHashes[cost]
	if !ok {
		h, _ = bcrypt.GenerateFromPassword([]byte("not a real password"), cost)
		fakeHashes[cost] = h
	}
	return h
}

// Authenticate implements Authenticator.
func (s StaticUsers) Authenticate(_ context.Context, username, password string) (string, error) {
	u, ok := s[username]
	var hash []byte
	if ok {
		hash = u.PasswordHash
	} else {
		cost := bcrypt.DefaultCost
		for _, other := range s {
			if c, err := bcrypt.Cost(other.PasswordHash); err == nil {
				cost = c
				break
			}
		}
		hash = fakeHash(cost)
	}
	if err := bcrypt.CompareHashAndPassword(hash, []byte(password)); err != nil || !ok {
		return "", ErrBadCredentials
	}
	return u.UserID, nil
}
