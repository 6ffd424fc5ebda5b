package authz

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Introspection is the RFC 7662 §2.2 answer. An inactive token answers
// only {"active": false}.
type Introspection struct {
	Active    bool         `json:"active"`
	Scope     string       `json:"scope,omitempty"`
	ClientID  string       `json:"client_id,omitempty"`
	Username  string       `json:"username,omitempty"`
	TokenType string       `json:"token_type,omitempty"`
	Exp       int64        `json:"exp,omitempty"`
	Iat       int64        `json:"iat,omitempty"`
	Sub       string       `json:"sub,omitempty"`
	Aud       AudienceList `json:"aud,omitempty"`
	Iss       string       `json:"iss,omitempty"`
	JTI       string       `json:"jti,omitempty"`
	// Cnf is what a bound token is bound to (RFC 9449 §6.2, RFC 8705 §3.2).
	Cnf *Confirmation `json:"cnf,omitempty"`
}

// UsernameSource is implemented by an Authenticator that can name the user
// behind a user ID, for the username field of introspection.
type UsernameSource interface {
	Username(ctx context.Context, userID string) (string, bool)
}

// Username implements UsernameSource.
func (s StaticUsers) Username(_ context.Context, userID string) (string, bool) {
	for _, u := range s {
		if u.UserID == userID {
			return u.Username, true
		}
	}
	return "", false
}

// ServeIntrospect is the introspection endpoint (RFC 7662). Only a
// confidential client may call it (a public one is answered invalid_client,
// 401). A client with the introspect option, such as a resource server's
// own client entry, may introspect every token; any other confidential
// client only the tokens issued to itself, others answering
// {"active": false}, so the endpoint cannot be used to probe for tokens.
func (s *Service) ServeIntrospect(w http.ResponseWriter, r *http.Request) {
	c, form, basic, err := s.clientRequest(w, r)
	if err == nil && c.Public {
		err = errInvalidClient("a public client may not introspect tokens")
	}
	if err == nil {
		err = s.clientLimit(r.Context(), EndpointIntrospect, c.ID, "introspection")
	}
	if err != nil {
		s.endpointError(w, "introspection", c, basic, err)
		return
	}
	token := form.Get("token")
	if token == "" {
		s.endpointError(w, "introspection", c, basic, errInvalidRequest("token is missing"))
		return
	}
	resp, err := s.Introspect(r.Context(), c, token, form.Get("token_type_hint"))
	if err != nil {
		w.Header().Set("Retry-After", "1")
		s.endpointError(w, "introspection", c, basic, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// Introspect describes token to client c (RFC 7662 §2.2). An unknown,
// expired, revoked, rotated or foreign token, one of a client no longer
// configured, or one its client could no longer use (token_current.go),
// is inactive; the scope is what the client still has of the token's.
// Only a store that cannot answer is an error.
func (s *Service) Introspect(ctx context.Context, c *Client, token, hint string) (*Introspection, error) {
	inactive := &Introspection{}
	if token == "" || len(token) > MaxTokenLength {
		return inactive, nil
	}
	now := time.Now()
	kind, _, rec, err := s.findToken(ctx, token, hint)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return inactive, nil
	}
	if rec.expired(now) || (kind == HintRefreshToken && rec.RotatedAt != 0) {
		return inactive, nil
	}
	if kind == HintAccessToken {
		if err := s.checkIssuedJWT(ctx, token, rec); errors.Is(err, ErrTokenInvalid) {
			return inactive, nil
		} else if err != nil {
			return nil, err
		}
	}
	if !c.Introspect && rec.ClientID != c.ID {
		return inactive, nil
	}
	owner, err := s.clients.Client(ctx, rec.ClientID)
	if errors.Is(err, ErrUnknownClient) {
		return inactive, nil
	} else if err != nil {
		return nil, err
	} else if owner.predates(rec.IssuedAt) {
		return inactive, nil
	}
	if !owner.stillGrants(rec) || (kind == HintRefreshToken && !owner.AllowsGrant(GrantRefreshToken)) {
		return inactive, nil
	}
	out := &Introspection{Active: true, Scope: owner.allowedScope(rec.Scope), ClientID: rec.ClientID, Sub: rec.UserID,
		Iat: time.Unix(0, rec.IssuedAt).Unix(), JTI: rec.JTI, Iss: rec.Issuer}
	// A token for resources has them as its audience (RFC 8707); a JWT
	// for none, its aud claim.
	switch {
	case rec.Resource != "":
		out.Aud = Audiences(rec.Resource)
	case rec.Audience != "":
		out.Aud = AudienceList{rec.Audience}
	}
	if out.Sub == "" {
		out.Sub = rec.ClientID
	}
	if rec.ExpiresAt != 0 {
		out.Exp = time.Unix(0, rec.ExpiresAt).Unix()
	}
	if kind == HintAccessToken {
		out.TokenType = TokenTypeBearer
		if rec.Cnf != nil && rec.Cnf.JKT != "" {
			out.TokenType = TokenTypeDPoP
		}
	}
	out.Cnf = rec.Cnf
	if us, ok := s.users.(UsernameSource); ok && rec.UserID != "" {
		out.Username, _ = us.Username(ctx, rec.UserID)
	}
	return out, nil
}
