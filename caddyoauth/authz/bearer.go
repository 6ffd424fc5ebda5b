package authz

import (
	"net/http"
	"strings"
)

// BearerToken extracts the token of an `Authorization: Bearer` header
// (RFC 6750 §2.1), the scheme name in any case. It reports found=false when
// no bearer credentials were sent, and ok=false when the request is
// malformed: several Authorization headers, or a token that is not a
// b64token.
func BearerToken(h http.Header) (token string, found, ok bool) {
	vals := h.Values("Authorization")
	if len(vals) == 0 {
		return "", false, true
	}
	if len(vals) > 1 {
		return "", true, false
	}
	v := vals[0]
	scheme, rest, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false, true
	}
	token = strings.TrimLeft(rest, " ")
	if !isB64Token(token) {
		return "", true, false
	}
	return token, true, true
}

// isB64Token checks RFC 6750's b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}
