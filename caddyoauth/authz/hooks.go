package authz

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/oidc"
)

// Hooks connect the token endpoint to the gateway's abuse protection and
// metrics, which live outside this package. Every field is optional.
type Hooks struct {
	// AllowClient is asked once per request to an endpoint (EndpointToken,
	// EndpointIntrospect, EndpointRevoke) whose client has authenticated; ok=false refuses
	// it with 429 and Retry-After. Counting only authenticated requests
	// keeps an attacker who knows a client_id from spending that client's
	// budget.
	AllowClient func(ctx context.Context, endpoint, clientID string) (retryAfter time.Duration, ok bool)

	// ClientBudgetLeft is asked, without spending anything, whether a
	// public client, which proves only its client_id, still has room at
	// EndpointToken; ok=false refuses the request with 429 before its
	// grant runs. ChargeClient spends one request of that budget once the
	// grant succeeded, so that only the client's real users spend it.
	ClientBudgetLeft func(ctx context.Context, endpoint, clientID string) (retryAfter time.Duration, ok bool)
	ChargeClient     func(ctx context.Context, endpoint, clientID string)

	// LoginLocked is asked before a password is checked; a positive wait
	// refuses the attempt with 429 and Retry-After, without checking the
	// password. method is LoginPasswordGrant or LoginForm.
	LoginLocked func(r *http.Request, method, username string) (wait time.Duration)

	// LoginResult is told the outcome of every checked password.
	LoginResult func(r *http.Request, method, username string, ok bool)

	// ClientLocked is asked before a client's secret_hash (bcrypt) is
	// checked, which happens only for a secret not verified recently; a
	// positive wait refuses the attempt with invalid_client and
	// Retry-After, without checking the secret.
	ClientLocked func(r *http.Request, clientID string) (wait time.Duration)

	// ClientAuthResult is told the outcome of every checked secret_hash.
	ClientAuthResult func(r *http.Request, clientID string, ok bool)

	// TokenIssued is told of every token response, by grant type.
	TokenIssued func(grant, clientID string)

	// TokenRefused is told of every error response: the grant type as the
	// request gave it (unchecked, possibly empty), the client when it
	// authenticated, and the RFC 6749 error code.
	TokenRefused func(grant, clientID, code string)
}

// Endpoints that Hooks.AllowClient is asked about.
const (
	EndpointToken      = "token"
	EndpointIntrospect = "introspect"
	EndpointRevoke     = "revoke"
)

// clientLimit asks Hooks.AllowClient about a request of an authenticated
// client to endpoint, and returns the 429 error for a refused one ("too
// many <what> requests from this client"), or nil.
func (s *Service) clientLimit(ctx context.Context, endpoint, clientID, what string) error {
	if s.hooks.AllowClient == nil {
		return nil
	}
	if wait, ok := s.hooks.AllowClient(ctx, endpoint, clientID); !ok {
		return TooManyRequests(wait, "too many "+what+" requests from this client; retry later")
	}
	return nil
}

// SetHooks installs hooks. Call it before the service serves requests.
func (s *Service) SetHooks(h Hooks) { s.hooks = h }

// TooManyRequests refuses a request until retryAfter has passed. RFC 6749
// has no error code for rate limiting; temporarily_unavailable says "try
// again later", and the status and Retry-After are RFC 6585 §4's.
func TooManyRequests(retryAfter time.Duration, desc string) *Error {
	e := oauthErr("temporarily_unavailable", http.StatusTooManyRequests, desc)
	e.RetryAfter = retryAfter
	return e
}

// setRetryAfter writes a Retry-After header in whole seconds, at least 1.
func setRetryAfter(h http.Header, d time.Duration) {
	s := int64((d + time.Second - 1) / time.Second)
	h.Set("Retry-After", strconv.FormatInt(max(s, 1), 10))
}

// UsernameDigest is what logs show of a username that failed to sign in:
// people type passwords into the username field, so the name itself is
// never logged, yet an operator can match attempts on one account (the
// first 16 hex digits of SHA-256 of the name).
func UsernameDigest(username string) string {
	sum := sha256.Sum256([]byte(username))
	return hex.EncodeToString(sum[:8])
}

// Sign-in methods, as logs and metrics name them.
const (
	LoginPasswordGrant = "password_grant"
	LoginForm          = "form"
)

// Login checks a person's username and password under the lockout, for the
// password grant and the login form alike (method is LoginPasswordGrant or
// LoginForm; clientID is the client the sign-in is for, if known). A locked
// attempt is refused before the password is looked at, with a 429 *Error
// carrying RetryAfter; a wrong username or password returns
// ErrBadCredentials; any other error means the user source could not
// decide. Unknown usernames go through exactly the same steps as known
// ones. Every outcome is logged without the username or password, and
// reported to the hooks.
func (s *Service) Login(r *http.Request, method, clientID, username, password string) (string, error) {
	if s.hooks.LoginLocked != nil {
		if wait := s.hooks.LoginLocked(r, method, username); wait > 0 {
			s.log.Info("login refused: too many failures",
				zap.String("method", method), zap.String("client_id", clientID),
				zap.String("username_digest", UsernameDigest(username)))
			return "", TooManyRequests(wait, "too many failed sign-ins; retry later")
		}
	}
	uid, err := "", ErrBadCredentials
	var claims oidc.Claims
	if s.users != nil {
		uid, err = s.users.Authenticate(withClaimsSink(r.Context(), &claims), username, password)
	}
	if err == nil {
		if err := s.saveLoginClaims(r.Context(), uid, claims); err != nil {
			return "", err
		}
	}
	switch {
	case err == nil:
		s.log.Info("login", zap.String("method", method),
			zap.String("client_id", clientID), zap.String("user_id", uid))
	case errors.Is(err, ErrBadCredentials):
		s.log.Info("login failed", zap.String("method", method),
			zap.String("client_id", clientID), zap.String("username_digest", UsernameDigest(username)))
	default:
		return "", err
	}
	if s.hooks.LoginResult != nil {
		s.hooks.LoginResult(r, method, username, err == nil)
	}
	return uid, err
}

// passwordLogin is Login for the password grant, with its errors.
func (s *Service) passwordLogin(r *http.Request, c *Client, username, password string) (string, error) {
	uid, err := s.Login(r, LoginPasswordGrant, c.ID, username, password)
	if errors.Is(err, ErrBadCredentials) {
		return "", errInvalidGrant("invalid username or password")
	}
	return uid, err
}
