package authz

import (
	"context"
	"errors"
	"time"
)

// A client_id can change hands: an operator removes a client from the
// config and later writes one with the same ID, or gives a static client
// the ID of a deleted dynamic one. What users granted the earlier client
// must not pass to the later one, so each client says since when it holds
// its ID (Client.Since), and tokens and consents from before are refused.

// predates reports whether something issued at issuedAt (unix nanoseconds)
// belongs to an earlier client of c's client_id.
func (c *Client) predates(issuedAt int64) bool {
	return !c.Since.IsZero() && issuedAt < c.Since.UnixNano()
}

// consentPredatesClient reports whether a consent was given to an earlier
// client of clientID. A record of an earlier version, dated to the second,
// counts from the start of its second.
func (a *Authorizer) consentPredatesClient(ctx context.Context, clientID string, rec consentRecord) (bool, error) {
	c, err := a.svc.clients.Client(ctx, clientID)
	if errors.Is(err, ErrUnknownClient) {
		return true, nil
	} else if err != nil {
		return false, err
	}
	at := rec.AtNano
	if at == 0 {
		at = time.Unix(rec.At, 0).UnixNano()
	}
	return c.predates(at), nil
}
