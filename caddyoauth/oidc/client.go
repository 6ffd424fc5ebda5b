package oidc

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
)

// SubjectPublic is the one subject type the gateway offers: sub is the
// user ID, the same for every client (OIDC Core §8).
const SubjectPublic = "public"

// Client is the OpenID Connect metadata of a client (OIDC Dynamic Client
// Registration §2, RP-Initiated Logout §3.1, Back-Channel Logout §2.2).
type Client struct {
	// PostLogoutRedirectURIs are where an RP-initiated logout may send
	// the browser back to, matched exactly.
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	// IDTokenSignedResponseAlg is RS256 or ES256. Default: the gateway's
	// id_token_signing_alg.
	IDTokenSignedResponseAlg string `json:"id_token_signed_response_alg,omitempty"`
	// BackchannelLogoutURI receives logout tokens. Default: none.
	BackchannelLogoutURI string `json:"backchannel_logout_uri,omitempty"`
	// DefaultMaxAge is max_age, in seconds, for requests that give none;
	// 0: none.
	DefaultMaxAge int64 `json:"default_max_age,omitempty"`
	// RequireAuthTime puts auth_time in every ID token. The gateway
	// always does; the field is kept so the client's metadata reads back.
	RequireAuthTime bool `json:"require_auth_time,omitempty"`
	// SubjectType is public (the only type); empty means public.
	SubjectType string `json:"subject_type,omitempty"`
}

// Check refuses metadata the gateway cannot honour.
func (c *Client) Check() error {
	for _, u := range c.PostLogoutRedirectURIs {
		if err := checkURI(u, false); err != nil {
			return fmt.Errorf("post_logout_redirect_uri %q: %v", u, err)
		}
	}
	if c.IDTokenSignedResponseAlg != "" && !slices.Contains(SigningAlgs, c.IDTokenSignedResponseAlg) {
		return fmt.Errorf("id_token_signed_response_alg must be one of %v", SigningAlgs)
	}
	if c.BackchannelLogoutURI != "" {
		if err := checkURI(c.BackchannelLogoutURI, true); err != nil {
			return fmt.Errorf("backchannel_logout_uri %q: %v", c.BackchannelLogoutURI, err)
		}
	}
	if c.DefaultMaxAge < 0 {
		return errors.New("default_max_age must not be negative")
	}
	if c.SubjectType != "" && c.SubjectType != SubjectPublic {
		return errors.New("subject_type must be public")
	}
	return nil
}

// checkURI accepts an absolute URI without a fragment; a back-channel URI
// must be http or https (Back-Channel Logout §2.2).
func checkURI(raw string, web bool) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs():
		return errors.New("not an absolute URI")
	case u.Fragment != "" || u.RawFragment != "":
		return errors.New("it has a fragment")
	case web && (u.Scheme != "http" && u.Scheme != "https" || u.Host == ""):
		return errors.New("not an http or https URL")
	}
	return nil
}

// MaxAgeDefault is the client's default max_age for ParseRequest: -1 when
// it has none.
func (c *Client) MaxAgeDefault() int64 {
	if c == nil || c.DefaultMaxAge <= 0 {
		return -1
	}
	return c.DefaultMaxAge
}
