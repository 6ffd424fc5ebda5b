// Package oidc holds what the gateway knows of OpenID Connect, with no
// Caddy and no store in it: the claims of a user and which of them each
// scope releases, ID tokens and logout tokens as claim sets, the
// parameters of an authentication request and the decisions they call for
// (prompt, max_age), the discovery document's OpenID fields, and the
// OpenID metadata of a client. Signing and storage stay in authz.
package oidc

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"unicode/utf8"
)

// ScopeOpenID marks an authorization request as an OpenID Connect one.
const ScopeOpenID = "openid"

// ScopeClaims are the claims each scope value releases (OIDC Core §5.4).
var ScopeClaims = map[string][]string{
	"profile": {"name", "family_name", "given_name", "middle_name", "nickname", "preferred_username",
		"profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at"},
	"email":   {"email", "email_verified"},
	"address": {"address"},
	"phone":   {"phone_number", "phone_number_verified"},
}

// AddressFields are the members of the address claim (OIDC Core §5.1.1).
var AddressFields = []string{"formatted", "street_address", "locality", "region", "postal_code", "country"}

// booleanClaims and numberClaims have those JSON types; every other
// standard claim is a string, except address, an object of strings.
var (
	booleanClaims = []string{"email_verified", "phone_number_verified"}
	numberClaims  = []string{"updated_at"}
)

// MaxClaimValue bounds one string claim, in bytes.
const MaxClaimValue = 2048

// StandardClaims lists every claim a user may carry, sorted: the claims of
// the scopes of ScopeClaims (OIDC Core §5.1, less sub, which is the user
// ID).
func StandardClaims() []string {
	var out []string
	for _, cs := range ScopeClaims {
		out = append(out, cs...)
	}
	sort.Strings(out)
	return out
}

// IsStandardClaim reports whether name is a claim a user may carry.
func IsStandardClaim(name string) bool {
	for _, cs := range ScopeClaims {
		if slices.Contains(cs, name) {
			return true
		}
	}
	return false
}

// IsBooleanClaim reports whether a claim is a JSON boolean.
func IsBooleanClaim(name string) bool { return slices.Contains(booleanClaims, name) }

// IsNumberClaim reports whether a claim is a JSON number.
func IsNumberClaim(name string) bool { return slices.Contains(numberClaims, name) }

// Claims are the claims of a user, as JSON values: strings, booleans,
// numbers (int64 or float64) and, for address, a map of strings.
type Claims map[string]any

// Check refuses claims that are not standard or not of their type, so a
// typo in a config is an error at load, not a claim silently missing.
func (c Claims) Check() error {
	for _, name := range slices.Sorted(maps.Keys(c)) {
		v := c[name]
		if !IsStandardClaim(name) {
			return fmt.Errorf("claim %q is not a standard OpenID Connect claim (known: %v)", name, StandardClaims())
		}
		switch {
		case IsBooleanClaim(name):
			if _, ok := v.(bool); !ok {
				return fmt.Errorf("claim %s must be true or false", name)
			}
		case IsNumberClaim(name):
			switch n := v.(type) {
			case int64:
			case int:
			case float64:
				if n != float64(int64(n)) {
					return fmt.Errorf("claim %s must be a whole number of seconds", name)
				}
			default:
				return fmt.Errorf("claim %s must be a number (seconds since 1970)", name)
			}
		case name == "address":
			m, ok := v.(map[string]any)
			if !ok {
				return errors.New("claim address must be an object of " + fmt.Sprint(AddressFields))
			}
			for k, f := range m {
				s, ok := f.(string)
				if !slices.Contains(AddressFields, k) || !ok || !validString(s) {
					return fmt.Errorf("claim address: member %q must be one of %v, a string", k, AddressFields)
				}
			}
		default:
			s, ok := v.(string)
			if !ok || !validString(s) {
				return fmt.Errorf("claim %s must be a string of at most %d bytes of UTF-8", name, MaxClaimValue)
			}
		}
	}
	return nil
}

func validString(s string) bool { return len(s) <= MaxClaimValue && utf8.ValidString(s) }

// Covered reports whether one of the granted scopes releases claim.
func Covered(claim string, scopes []string) bool {
	for _, s := range scopes {
		if slices.Contains(ScopeClaims[s], claim) {
			return true
		}
	}
	return false
}

// ForUserInfo is what the UserInfo endpoint answers beside sub: the
// user's claims that the granted scopes release (OIDC Core §5.4).
// Consent is given per scope, so a claim no granted scope covers is never
// released, whatever the claims request parameter asks.
func ForUserInfo(user Claims, scopes []string) Claims {
	out := Claims{}
	for name, v := range user {
		if Covered(name, scopes) {
			out[name] = v
		}
	}
	return out
}

// ForIDToken is what the ID token carries of the user's claims: the ones
// the claims request parameter asks for in the ID token (OIDC Core
// §5.5) that the granted scopes release. Without such a request the
// scope claims go to the UserInfo endpoint only, as an access token is
// always issued (§5.4).
func ForIDToken(user Claims, scopes []string, req *ClaimsRequest) Claims {
	out := Claims{}
	if req == nil {
		return out
	}
	for name := range req.IDToken {
		if v, ok := user[name]; ok && Covered(name, scopes) {
			out[name] = v
		}
	}
	return out
}
