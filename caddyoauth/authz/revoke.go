package authz

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// Token type hints of RFC 7009 §2.1 and RFC 7662 §2.1.
const (
	HintAccessToken  = "access_token"
	HintRefreshToken = "refresh_token"
)

// ServeRevoke is the revocation endpoint (RFC 7009). The client
// authenticates as at the token endpoint; a public client identifies with
// its client_id. The answer is 200 with an empty body once the token is
// revoked or when it is unknown or expired (RFC 7009 §2.2), and 400
// unauthorized_client, revoking nothing, for a live token issued to another
// client (§2.1: "the request is refused and the client is informed of the
// error").
func (s *Service) ServeRevoke(w http.ResponseWriter, r *http.Request) {
	c, form, basic, err := s.clientRequest(w, r)
	// A public client proves nothing but its client_id, which anyone may
	// present, so only a confidential client has a budget of its own; the
	// per-address limit covers both.
	if err == nil && !c.Public {
		err = s.clientLimit(r.Context(), EndpointRevoke, c.ID, "revocation")
	}
	if err != nil {
		s.endpointError(w, "revocation", c, basic, err)
		return
	}
	token := form.Get("token")
	if token == "" {
		s.endpointError(w, "revocation", c, basic, errInvalidRequest("token is missing"))
		return
	}
	if err := s.Revoke(r.Context(), c, token, form.Get("token_type_hint")); err != nil {
		if asOAuthError(err) == ErrUnavailable {
			// RFC 7009 §2.2.1: 503 tells the client to retry.
			w.Header().Set("Retry-After", "1")
		}
		s.endpointError(w, "revocation", c, basic, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
}

// clientRequest reads a POSTed form and authenticates its client, for the
// revocation and introspection endpoints.
func (s *Service) clientRequest(w http.ResponseWriter, r *http.Request) (*Client, url.Values, bool, error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, nil, false, oauthErr("invalid_request", http.StatusMethodNotAllowed, "this endpoint takes POST only")
	}
	form, err := ReadForm(w, r, MaxTokenRequestBody)
	if err != nil {
		return nil, nil, false, err
	}
	for _, p := range append([]string{"token"}, secretParams...) {
		if r.URL.Query().Has(p) {
			return nil, nil, false, errInvalidRequest("parameter " + p + " must be sent in the request body, not the URL")
		}
	}
	c, basic, err := s.AuthenticateClient(r.Context(), r, form)
	return c, form, basic, err
}

// endpointError answers and logs an error of the revocation or
// introspection endpoint.
func (s *Service) endpointError(w http.ResponseWriter, endpoint string, c *Client, basic bool, err error) {
	e := asOAuthError(err)
	fields := []zap.Field{zap.String("endpoint", endpoint), zap.String("error", e.Code)}
	if c != nil {
		fields = append(fields, zap.String("client_id", c.ID))
	}
	if e == ErrUnavailable {
		s.log.Error("cannot reach the token store", append(fields, zap.Error(err))...)
	} else {
		s.log.Info("request refused", fields...)
	}
	WriteError(w, e, basic)
}

// errForeignToken refuses the revocation of another client's token.
var errForeignToken = oauthErr("unauthorized_client", 400, "the token was not issued to this client")

// Revoke revokes token on behalf of client c (RFC 7009 §2.1). hint names
// the kind to look for first; an unknown hint is ignored, since the search
// extends to every kind anyway (§2.1), so unsupported_token_type is never
// answered: the gateway can revoke both kinds. A refresh token takes its
// whole family with it, the access tokens issued with it included; an
// access token goes alone. An unknown or expired token revokes nothing and
// is no error (§2.2). A live token of another client revokes nothing and
// is refused with errForeignToken (§2.1). Otherwise only a store that
// cannot answer is an error.
func (s *Service) Revoke(ctx context.Context, c *Client, token, hint string) error {
	if len(token) > MaxTokenLength {
		return nil
	}
	kind, key, rec, err := s.findToken(ctx, token, hint)
	if err != nil || rec == nil {
		return err // an unknown token: nothing to do (§2.2)
	}
	if rec.expired(time.Now()) {
		return nil // an invalid token: nothing to do (§2.2)
	}
	if rec.ClientID != c.ID {
		s.log.Warn("a client tried to revoke another client's token; nothing revoked",
			zap.String("client_id", c.ID), zap.String("token_client_id", rec.ClientID))
		return errForeignToken
	}
	if kind == HintAccessToken {
		s.log.Info("access token revoked", zap.String("client_id", c.ID), zap.String("user_id", rec.UserID))
		return s.store.Delete(ctx, key)
	}
	s.log.Info("refresh token revoked with its family", zap.String("client_id", c.ID), zap.String("user_id", rec.UserID))
	if err := s.RevokeFamily(ctx, rec.UserID, rec.Family); err != nil {
		return err
	}
	// The family's revocation reaches both through the grant's set; a
	// token without a family (or not indexed in it) goes here.
	return s.store.Delete(ctx, withPair(key, rec)...)
}

// findToken looks a presented token up as an access token and as a refresh
// token, the hinted kind first (RFC 7009 §2.1, RFC 7662 §2.1: a hint only
// orders the search). It returns a nil record for a token of neither kind.
func (s *Service) findToken(ctx context.Context, token, hint string) (kind, key string, rec *record, err error) {
	kinds := []string{HintAccessToken, HintRefreshToken}
	if hint == HintRefreshToken {
		kinds[0], kinds[1] = kinds[1], kinds[0]
	}
	for _, kind := range kinds {
		key := accessKey(token)
		if kind == HintRefreshToken {
			key = refreshKey(token)
		}
		rec, err := s.load(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return "", "", nil, err
		}
		return kind, key, rec, nil
	}
	return "", "", nil, nil
}
