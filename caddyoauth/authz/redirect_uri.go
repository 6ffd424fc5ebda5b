package authz

import "strings"

// MatchRedirectURI returns the registered redirect URI that uri matches:
// the same string, or, for a client with LoopbackAnyPort, a registered
// http loopback URI that differs from uri by its port alone (RFC 8252
// §7.3). Remembered consents are kept by the registered URI it returns.
func (c *Client) MatchRedirectURI(uri string) (string, bool) {
	for _, r := range c.RedirectURIs {
		if r == uri {
			return r, true
		}
	}
	if !c.LoopbackAnyPort {
		return "", false
	}
	for _, r := range c.RedirectURIs {
		if loopbackMatch(r, uri) {
			return r, true
		}
	}
	return "", false
}

// anyPortMark marks, in Client.GetDomain, a loopback redirect URI that
// matches any port. A URI starts with a letter, never with it.
const anyPortMark = "*"

// loopbackMatch reports whether uri is the loopback redirect URI
// registered with another port or none: the same host, written the same
// way, and the same path and query, byte for byte.
func loopbackMatch(registered, uri string) bool {
	rh, rrest, ok := splitLoopback(registered)
	if !ok {
		return false
	}
	uh, urest, ok := splitLoopback(uri)
	return ok && rh == uh && rrest == urest
}

// splitLoopback splits an http URI on a loopback host (127.0.0.1, [::1]
// or localhost, as written, with an optional decimal port) into its host
// and what follows the authority. It reads the string as it is, with no
// decoding, so no spelling of another host can pass for a loopback one.
func splitLoopback(raw string) (host, rest string, ok bool) {
	const scheme = "http://"
	if !strings.HasPrefix(raw, scheme) {
		return "", "", false
	}
	s := raw[len(scheme):]
	end := strings.IndexAny(s, "/?#")
	if end < 0 {
		end = len(s)
	}
	authority, rest := s[:end], s[end:]
	if strings.Contains(rest, "#") {
		return "", "", false
	}
	for _, h := range []string{"127.0.0.1", "[::1]", "localhost"} {
		if port, found := strings.CutPrefix(authority, h); found && validPort(port) {
			return h, rest, true
		}
	}
	return "", "", false
}

// validPort accepts an empty port or ':' and one to five digits.
func validPort(p string) bool {
	if p == "" {
		return true
	}
	if p[0] != ':' || len(p) < 2 || len(p) > 6 {
		return false
	}
	for i := 1; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}
