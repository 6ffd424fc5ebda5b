package authz

import (
	"context"
	"errors"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// Identity is who a valid access token stands for.
type Identity struct {
	UserID    string // empty for a client's own token
	ClientID  string
	Scope     string // space-separated
	ExpiresAt time.Time
	IssuedAt  time.Time
	// Audience is what the token is for (RFC 8707): resource identifiers
	// separated by spaces (HasAudience); empty for every resource.
	Audience string
	// Cnf is what the token is bound to (CheckSender); nil for a bearer
	// token.
	Cnf *Confirmation
}

// Reasons a bearer token is refused; the protect handler answers all of
// them with RFC 6750's invalid_token.
var (
	ErrTokenInvalid = errors.New("access token unknown or revoked")
	ErrTokenExpired = errors.New("access token expired")
)

// MaxTokenLength bounds a bearer token; ours are 43 characters and JWT
// access tokens stay well under it.
const MaxTokenLength = 4096

// Validate checks an access token on the request path. It returns
// ErrTokenInvalid or ErrTokenExpired for a token to refuse, and another
// error when the store cannot answer, which must not let the request pass.
func (s *Service) Validate(ctx context.Context, token string) (*Identity, error) {
	if token == "" || len(token) > MaxTokenLength {
		return nil, ErrTokenInvalid
	}
	// The record, keyed by the digest of the whole token, is the proof: only
	// a token this gateway issued has one, byte for byte, and revocation
	// deletes it on every instance. A JWT needs no signature check here
	// (that is for resource servers without the store): checkIssuedJWT.
	b, err := s.store.Lookup(ctx, accessKey(token))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrTokenInvalid
	} else if err != nil {
		return nil, err
	}
	r, err := decodeRecord(b)
	if err != nil {
		return nil, err
	}
	if r.expired(time.Now()) {
		return nil, ErrTokenExpired
	}
	if err := s.checkIssuedJWT(ctx, token, r); err != nil {
		return nil, err
	}
	// A client removed from the config takes its tokens with it and does
	// not get them back if it returns; one changed in it changes what they
	// carry (token_current.go).
	c, err := s.clients.Client(ctx, r.ClientID)
	if errors.Is(err, ErrUnknownClient) {
		return nil, ErrTokenInvalid
	} else if err != nil {
		return nil, err
	}
	if c.predates(r.IssuedAt) || !c.stillGrants(r) {
		return nil, ErrTokenInvalid
	}
	id := &Identity{UserID: r.UserID, ClientID: r.ClientID, Scope: c.allowedScope(r.Scope), IssuedAt: time.Unix(0, r.IssuedAt),
		Audience: r.Resource, Cnf: r.Cnf}
	if r.ExpiresAt != 0 {
		id.ExpiresAt = time.Unix(0, r.ExpiresAt)
	}
	return id, nil
}
