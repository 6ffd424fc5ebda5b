package authz

// PKCE (RFC 7636) rules shared by the authorize and token endpoints.

// PKCE challenge methods.
const (
	PKCES256  = "S256"
	PKCEPlain = "plain"
)

// ValidVerifier reports whether v is a well-formed code_verifier (RFC 7636
// §4.1): 43 to 128 characters from the unreserved set.
func ValidVerifier(v string) bool { return validPKCEString(v) }

// validChallenge reports whether a code_challenge is well formed for its
// method: an S256 challenge is the base64url SHA-256 of a verifier, 43
// characters with no padding (§4.2); a plain one is a verifier.
func validChallenge(c, method string) bool {
	if method == PKCES256 && len(c) != 43 {
		return false
	}
	return validPKCEString(c)
}

func validPKCEString(s string) bool {
	if len(s) < 43 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}
