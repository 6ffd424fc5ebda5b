package clients

import "slices"

// OpenIDMetadata is the OpenID Connect client metadata a registration or
// update may carry (OIDC Dynamic Client Registration §2, RP-Initiated
// Logout §3.1, Back-Channel Logout §2.2). Only operators may set it: a
// backchannel_logout_uri has the gateway POST to any address.
type OpenIDMetadata struct {
	PostLogoutRedirectURIs   *[]string `json:"post_logout_redirect_uris,omitempty"`
	IDTokenSignedResponseAlg *string   `json:"id_token_signed_response_alg,omitempty"`
	BackchannelLogoutURI     *string   `json:"backchannel_logout_uri,omitempty"`
	DefaultMaxAge            *int64    `json:"default_max_age,omitempty"`
	RequireAuthTime          *bool     `json:"require_auth_time,omitempty"`
	SubjectType              *string   `json:"subject_type,omitempty"`
}

func (m *OpenIDMetadata) set() bool {
	return m.PostLogoutRedirectURIs != nil || m.IDTokenSignedResponseAlg != nil || m.BackchannelLogoutURI != nil ||
		m.DefaultMaxAge != nil || m.RequireAuthTime != nil || m.SubjectType != nil
}

// applyOpenID sets the OpenID Connect metadata of m onto c.
func (m *OpenIDMetadata) applyOpenID(c *Client, rules Rules) error {
	if !m.set() {
		return nil
	}
	if !rules.Operator {
		return BadMetadata("OpenID Connect client metadata cannot be set here")
	}
	o := c.OpenID
	if m.PostLogoutRedirectURIs != nil {
		o.PostLogoutRedirectURIs = slices.Compact(slices.Clone(*m.PostLogoutRedirectURIs))
		if len(o.PostLogoutRedirectURIs) > maxRedirectURIs {
			return badRedirect("at most %d post_logout_redirect_uris", maxRedirectURIs)
		}
		for _, u := range o.PostLogoutRedirectURIs {
			if len(u) > maxURILength {
				return badRedirect("a post_logout_redirect_uri is longer than %d characters", maxURILength)
			}
		}
	}
	if m.IDTokenSignedResponseAlg != nil {
		o.IDTokenSignedResponseAlg = *m.IDTokenSignedResponseAlg
	}
	if m.BackchannelLogoutURI != nil {
		if len(*m.BackchannelLogoutURI) > maxURILength {
			return BadMetadata("backchannel_logout_uri is longer than %d characters", maxURILength)
		}
		o.BackchannelLogoutURI = *m.BackchannelLogoutURI
	}
	if m.DefaultMaxAge != nil {
		o.DefaultMaxAge = *m.DefaultMaxAge
	}
	if m.RequireAuthTime != nil {
		o.RequireAuthTime = *m.RequireAuthTime
	}
	if m.SubjectType != nil {
		o.SubjectType = *m.SubjectType
	}
	if err := o.Check(); err != nil {
		return BadMetadata("%s", safeText(err.Error()))
	}
	c.OpenID = o
	return nil
}
