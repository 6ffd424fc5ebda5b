package caddyoauth

import (
	"net/http"
	"strings"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
)

// Default names of the identity headers oauth_protect sets.
const (
	DefaultUserHeader   = "X-User-ID"
	DefaultClientHeader = "X-OAuth-Client-ID"
	DefaultScopeHeader  = "X-OAuth-Scope"
)

// normHeader folds a header name so that every spelling an upstream might
// read as the same header compares equal: any case, and underscores for
// dashes (CGI and FastCGI map both X-User-ID and X_User_ID to
// HTTP_X_USER_ID).
func normHeader(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// stripHeaders deletes every inbound copy of the given (normalized) header
// names from h.
func stripHeaders(h http.Header, names []string) {
	for key := range h {
		if len(key) < 2 {
			continue
		}
		for _, want := range names {
			if foldsTo(key, want) {
				delete(h, key)
				break
			}
		}
	}
}

// foldsTo reports whether normHeader(key) == folded without allocating:
// this runs for every header of every request. Header names are ASCII
// tokens (net/http refuses others), so byte-wise folding is normHeader's.
func foldsTo(key, folded string) bool {
	if len(key) != len(folded) {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		} else if c == '_' {
			c = '-'
		}
		if c != folded[i] {
			return false
		}
	}
	return true
}

// validHeaderName reports whether s is an HTTP token (RFC 9110 §5.1).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// checkUserID applies authz.CheckUserID to a user ID that is given; an
// empty one (no client user, no owner) is the caller's to refuse.
func checkUserID(id string) error {
	if id == "" {
		return nil
	}
	return authz.CheckUserID(id)
}
