package authz

import (
	"slices"
	"strings"
)

// ParseScope splits a scope parameter (RFC 6749 §3.3) into its tokens,
// dropping repeats and keeping order. It reports false when the string is
// malformed: characters outside %x21 / %x23-5B / %x5D-7E, or empty tokens
// between single spaces.
func ParseScope(s string) ([]string, bool) {
	if s == "" {
		return nil, true
	}
	parts := strings.Split(s, " ")
	out := make([]string, 0, len(parts))
	// A set once the list is long, so that a parameter of many scopes
	// costs linear time.
	var seen map[string]bool
	if len(parts) > smallScopeList {
		seen = make(map[string]bool, len(parts))
	}
	for _, p := range parts {
		if !validScopeToken(p) {
			return nil, false
		}
		if seen != nil {
			if seen[p] {
				continue
			}
			seen[p] = true
		} else if slices.Contains(out, p) {
			continue
		}
		out = append(out, p)
	}
	return out, true
}

// smallScopeList is the length up to which scope lists are searched
// rather than hashed.
const smallScopeList = 16

func validScopeToken(t string) bool {
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}

// JoinScope is the inverse of ParseScope.
func JoinScope(s []string) string { return strings.Join(s, " ") }

// subset reports whether every element of a is in b, in time linear in
// their lengths.
func subset(a, b []string) bool {
	if len(a) <= smallScopeList || len(b) <= smallScopeList {
		for _, x := range a {
			if !slices.Contains(b, x) {
				return false
			}
		}
		return true
	}
	set := make(map[string]bool, len(b))
	for _, x := range b {
		set[x] = true
	}
	for _, x := range a {
		if !set[x] {
			return false
		}
	}
	return true
}

// HasScopes reports whether the space-separated granted scope contains
// every one of required.
func HasScopes(granted string, required []string) bool {
	for _, r := range required {
		found := false
		for g := range strings.SplitSeq(granted, " ") {
			if g == r {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// grantScope decides the scope of a new grant for client: the requested
// scopes when all are within the client's, the client's default when none
// was asked. It reports false for a malformed or too wide request.
func (c *Client) grantScope(requested string) (string, bool) {
	req, ok := ParseScope(requested)
	if !ok {
		return "", false
	}
	if len(req) == 0 {
		if len(c.DefaultScope) > 0 {
			return JoinScope(c.DefaultScope), true
		}
		return JoinScope(c.Scopes), true
	}
	if !subset(req, c.Scopes) {
		return "", false
	}
	return JoinScope(req), true
}
