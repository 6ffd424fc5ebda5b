package oidc

import "slices"

// BackchannelLogoutEvent is the event a logout token carries (OIDC
// Back-Channel Logout §2.4).
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutTokenType is the typ header of a logout token (§2.4).
const LogoutTokenType = "logout+jwt"

// LogoutToken is a logout token's content before it is signed: it names
// the user (sub), the sign-in session (sid), or both; never a nonce.
type LogoutToken struct {
	Issuer, ClientID, Subject, SID, JTI string
	IssuedAt, Expiry                    int64
}

// JSON returns the claim set.
func (t *LogoutToken) JSON() map[string]any {
	m := map[string]any{
		"iss":    t.Issuer,
		"aud":    t.ClientID,
		"iat":    t.IssuedAt,
		"exp":    t.Expiry,
		"jti":    t.JTI,
		"events": map[string]any{BackchannelLogoutEvent: map[string]any{}},
	}
	if t.Subject != "" {
		m["sub"] = t.Subject
	}
	if t.SID != "" {
		m["sid"] = t.SID
	}
	return m
}

// PostLogoutRedirect reports whether uri may be redirected to after an
// RP-initiated logout: it must equal one of the client's registered
// post_logout_redirect_uris (RP-Initiated Logout §3).
func PostLogoutRedirect(registered []string, uri string) bool {
	return uri != "" && slices.Contains(registered, uri)
}
