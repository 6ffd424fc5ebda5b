package oidc

import (
	"crypto/sha256"
	"encoding/base64"
	"slices"
)

// Signing algorithms of ID tokens. RS256 is the default, as every OP must
// support it (OIDC Core §15.1).
const (
	RS256 = "RS256"
	ES256 = "ES256"
)

// SigningAlgs are the ID token signing algorithms the gateway offers.
var SigningAlgs = []string{RS256, ES256}

// AMRPassword is the amr value of a sign-in with a password (RFC 8176).
const AMRPassword = "pwd"

// IDToken is an ID token's content (OIDC Core §2) before it is signed.
type IDToken struct {
	Issuer  string
	Subject string
	// ClientID is the client the token is issued to: its audience, and
	// its azp when more audiences are named.
	ClientID string
	// Audiences are audiences beyond the client.
	Audiences []string
	IssuedAt  int64 // unix seconds
	Expiry    int64
	// AuthTime is when the person signed in, in unix seconds; 0: unknown.
	AuthTime int64
	Nonce    string
	ACR      string
	AMR      []string
	// AccessTokenHash is at_hash, for the access token issued with it.
	AccessTokenHash string
	// SID names the sign-in session, for back-channel logout.
	SID string
	// Claims are the user's claims the token carries.
	Claims Claims
}

// JSON returns the claim set. The registered claims win over any user
// claim of the same name.
func (t *IDToken) JSON() map[string]any {
	m := map[string]any{}
	for k, v := range t.Claims {
		m[k] = v
	}
	m["iss"] = t.Issuer
	m["sub"] = t.Subject
	m["iat"] = t.IssuedAt
	m["exp"] = t.Expiry
	if len(t.Audiences) == 0 {
		m["aud"] = t.ClientID
	} else {
		// Several audiences: azp names the one it was issued to (§2).
		aud := append([]string{t.ClientID}, t.Audiences...)
		m["aud"] = slices.Compact(aud)
		m["azp"] = t.ClientID
	}
	if t.AuthTime != 0 {
		m["auth_time"] = t.AuthTime
	}
	if t.Nonce != "" {
		m["nonce"] = t.Nonce
	}
	if t.ACR != "" {
		m["acr"] = t.ACR
	}
	if len(t.AMR) > 0 {
		m["amr"] = t.AMR
	}
	if t.AccessTokenHash != "" {
		m["at_hash"] = t.AccessTokenHash
	}
	if t.SID != "" {
		m["sid"] = t.SID
	}
	return m
}

// AccessTokenHash is at_hash of an access token (OIDC Core §3.1.3.6):
// the base64url left half of its hash under the ID token's algorithm,
// SHA-256 for RS256 and ES256.
func AccessTokenHash(accessToken string) string {
	d := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(d[:len(d)/2])
}
