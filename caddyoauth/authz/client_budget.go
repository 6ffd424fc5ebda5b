package authz

import (
	"context"
)

// tokenClientLimit applies a client's own budget at the token endpoint. A
// confidential client has authenticated, so the request is counted at
// once. A public client is known by its client_id alone, which anyone may
// send: its budget is only looked at here and spent by chargePublicClient
// once the grant succeeded, so requests that fail (anyone's) spend only
// their addresses' budgets.
func (s *Service) tokenClientLimit(ctx context.Context, c *Client) error {
	if !c.Public {
		return s.clientLimit(ctx, EndpointToken, c.ID, "token")
	}
	if s.hooks.ClientBudgetLeft == nil {
		return nil
	}
	if wait, ok := s.hooks.ClientBudgetLeft(ctx, EndpointToken, c.ID); !ok {
		return TooManyRequests(wait, "too many token requests from this client; retry later")
	}
	return nil
}

// chargePublicClient spends one token request of a public client's budget
// after its grant succeeded.
func (s *Service) chargePublicClient(ctx context.Context, c *Client) {
	if c.Public && s.hooks.ChargeClient != nil {
		s.hooks.ChargeClient(ctx, EndpointToken, c.ID)
	}
}
