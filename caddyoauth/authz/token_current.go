package authz

import (
	"slices"
	"strings"
)

// A token is checked against its client as the config is now, at every
// use (Validate, Introspect, refresh): it carries only the scopes of its
// grant that the client still has, and works only while the client still
// has the grant type it came from. Records keep what was granted; an
// operator who gives a scope back gives it back to the tokens too.

// allowedScope is scope without the scopes c no longer has. It returns
// scope itself, allocating nothing, when all of them remain.
func (c *Client) allowedScope(scope string) string {
	for rest := scope; rest != ""; {
		tok, next, _ := strings.Cut(rest, " ")
		if !slices.Contains(c.Scopes, tok) {
			return c.filterScope(scope)
		}
		rest = next
	}
	return scope
}

func (c *Client) filterScope(scope string) string {
	var b strings.Builder
	for tok := range strings.SplitSeq(scope, " ") {
		if tok == "" || !slices.Contains(c.Scopes, tok) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// stillGrants reports whether c may still use what the token of record r
// came from: the grant type of its family and, for a client_credentials
// token, the user it acts as.
func (c *Client) stillGrants(r *record) bool {
	if r.Grant == grantNone {
		return true // a record from before grants were kept
	}
	if !c.AllowsGrant(r.Grant.String()) {
		return false
	}
	return r.Grant != grantClientCredentials || r.UserID == c.UserID
}
