package authz

import (
	"errors"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/clientauth"
)

// Clients without a shared secret (Client.Auth) authenticate at the
// token, introspection and revocation endpoints by the method they
// registered, and by no other: a private_key_jwt client with a
// client_assertion (RFC 7523 §2.2), a tls_client_auth or
// self_signed_tls_client_auth client with the client certificate of the
// TLS connection and its client_id in the form (RFC 8705 §2). The checks
// themselves are clientauth's.

// SetClientKeyOptions replaces the options of the checks of client
// assertions and certificates. Replay defaults to the service's store and
// Logger to its logger. Call it before the service serves.
func (s *Service) SetClientKeyOptions(o clientauth.Options) {
	if o.Replay == nil {
		o.Replay = s.store
	}
	if o.Logger == nil {
		o.Logger = s.log
	}
	s.clientKeys = clientauth.New(o)
}

// hasAssertion reports whether a form carries a client assertion.
func hasAssertion(form url.Values) bool {
	return form.Has("client_assertion") || form.Has("client_assertion_type")
}

// authenticateAssertion authenticates the client of a form carrying a
// client assertion: the client its client_id names, or else the
// assertion's sub (RFC 7521 §4.2), registered for private_key_jwt.
func (s *Service) authenticateAssertion(r *http.Request, form url.Values) (*Client, error) {
	assertion := form.Get("client_assertion")
	switch {
	case form.Has("client_secret"):
		return nil, errInvalidRequest("use one client authentication method, not both")
	case assertion == "" || !form.Has("client_assertion_type"):
		return nil, errInvalidRequest("client_assertion and client_assertion_type go together")
	case form.Get("client_assertion_type") != clientauth.AssertionType:
		return nil, errInvalidClient("client_assertion_type must be " + clientauth.AssertionType)
	}
	id := form.Get("client_id")
	if id == "" {
		sub, err := clientauth.Subject(assertion)
		if err != nil {
			return nil, s.refusedKeyClient("", err)
		}
		id = sub
	}
	c, err := s.clients.Client(r.Context(), id)
	if errors.Is(err, ErrUnknownClient) {
		return nil, errInvalidClient("client authentication failed")
	} else if err != nil {
		return nil, err
	}
	if c.Auth == nil || c.Auth.Name != clientauth.PrivateKeyJWT {
		return nil, s.refusedKeyClient(c.ID, &clientauth.Error{Description: "the client does not authenticate with private_key_jwt"})
	}
	iss, err := s.Issuer()
	if err != nil {
		return nil, err
	}
	if err := s.clientKeys.VerifyAssertion(r.Context(), keyClient(c), assertion, iss); err != nil {
		return nil, s.refusedKeyClient(c.ID, err)
	}
	return c, nil
}

// authenticateWithoutSecret authenticates a client of Client.Auth that
// named itself by client_id (or HTTP Basic, which it may not use): by the
// TLS client certificate for the TLS methods; a private_key_jwt client
// must send an assertion.
func (s *Service) authenticateWithoutSecret(r *http.Request, c *Client, secret string, basic bool) error {
	switch {
	case c.Auth.Name == clientauth.PrivateKeyJWT:
		return s.refusedKeyClient(c.ID, &clientauth.Error{Description: "the client authenticates with private_key_jwt: send client_assertion and client_assertion_type"})
	case basic || secret != "":
		return s.refusedKeyClient(c.ID, &clientauth.Error{Description: "the client authenticates with its TLS client certificate, not a secret: send client_id in the form"})
	}
	return s.refusedKeyClient(c.ID, s.clientKeys.VerifyCertificate(r.Context(), keyClient(c), r.TLS))
}

// keyClient is c as clientauth checks it.
func keyClient(c *Client) clientauth.Client {
	return clientauth.Client{ID: c.ID, Method: c.Auth, Vetted: !c.Unvetted}
}

// refusedKeyClient turns a refusal of clientauth into invalid_client,
// logged with its reason (which names no key or claim); other errors,
// of the store, pass.
func (s *Service) refusedKeyClient(clientID string, err error) error {
	var e *clientauth.Error
	if !errors.As(err, &e) {
		return err
	}
	s.log.Info("client authentication failed", zap.String("client_id", clientID), zap.String("reason", e.Description))
	return errInvalidClient(e.Description)
}
