package caddyoauth

import (
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

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

// stripIdentity makes sure that nothing the caller sent can add to, replace
// or remove the identity headers (names, normalized) that the gateway
// asserts. It deletes from r:
//   - every header whose name folds to an identity name;
//   - every Connection option naming one: a proxy deletes the fields that
//     Connection names (RFC 9110 §7.6.1), and would delete the gateway's
//     own. The other options stay, so keep-alive, close and the caller's
//     own hop-by-hop fields work as before;
//   - every trailer naming one, from r.Trailer and the Trailer header now,
//     and from r.Trailer again when the body reaches EOF, where net/http
//     adds every trailer the caller sent to the declared ones.
//
// With authz, Authorization and DPoP are dropped from trailers and
// Connection too: the gateway checked those headers and nothing else.
//
// The common request (no Trailer, Connection: keep-alive) costs a pass
// over the header names and allocates nothing.
func stripIdentity(r *http.Request, names []string, authz bool) {
	h := r.Header
	for key, vv := range h {
		switch {
		case isIdentity(key, names):
			delete(h, key)
		case foldsTo(key, "connection"), foldsTo(key, "trailer"):
			if kept, changed := dropListed(vv, names, authz); changed && len(kept) == 0 {
				delete(h, key)
			} else if changed {
				h[key] = kept
			}
		}
	}
	// A request declaring no trailer has r.Trailer nil, and every server
	// keeps undeclared trailers off it: net/http (HTTP/1.1) sets them on
	// its own copy of the request, HTTP/2 drops them, and quic-go (HTTP/3)
	// replaces the map on its own copy.
	if r.Trailer == nil {
		return
	}
	stripTrailer(r.Trailer, names, authz)
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	if g, ok := r.Body.(*trailerGuard); ok && slices.Equal(g.names, names) {
		// oauth_server guarded the body already; oauth_protect adds authz.
		g.authz = g.authz || authz
		return
	}
	r.Body = &trailerGuard{ReadCloser: r.Body, trailer: r.Trailer, names: names, authz: authz}
}

// trailerGuard drops the identity trailers that arrive with the end of
// the body, before reverse_proxy copies the trailers it forwards: both
// happen in the Read that returns io.EOF.
type trailerGuard struct {
	io.ReadCloser
	trailer http.Header
	names   []string
	authz   bool
}

func (g *trailerGuard) Read(p []byte) (int, error) {
	n, err := g.ReadCloser.Read(p)
	if err == io.EOF {
		stripTrailer(g.trailer, g.names, g.authz)
	}
	return n, err
}

// stripTrailer deletes the trailers that dropped names.
// Keys are trimmed as list elements are: a server that takes a name with
// stray spaces would forward it under the trimmed name.
func stripTrailer(t http.Header, names []string, authz bool) {
	for key := range t {
		if dropped(textproto.TrimString(key), names, authz) {
			delete(t, key)
		}
	}
}

// dropListed returns the values of a Connection or Trailer field without
// the elements naming a dropped field, and whether it removed any; vv is
// returned as is, without allocating, when nothing is dropped.
func dropListed(vv []string, names []string, authz bool) ([]string, bool) {
	i := 0
	for i < len(vv) && !listsDropped(vv[i], names, authz) {
		i++
	}
	if i == len(vv) {
		return vv, false
	}
	kept := append(make([]string, 0, len(vv)), vv[:i]...)
	for _, v := range vv[i:] {
		var b strings.Builder
		for rest := v; rest != ""; {
			var elem string
			elem, rest, _ = strings.Cut(rest, ",")
			if elem = textproto.TrimString(elem); elem == "" || dropped(elem, names, authz) {
				continue
			}
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString(elem)
		}
		if b.Len() > 0 {
			kept = append(kept, b.String())
		}
	}
	return kept, true
}

// listsDropped reports whether the comma-separated list v names a dropped
// field. Elements are trimmed as reverse_proxy and net/http trim them.
func listsDropped(v string, names []string, authz bool) bool {
	switch v {
	case "keep-alive", "Keep-Alive", "close", "Close": // what clients send
		return false
	}
	for v != "" {
		var elem string
		elem, v, _ = strings.Cut(v, ",")
		if dropped(textproto.TrimString(elem), names, authz) {
			return true
		}
	}
	return false
}

// dropped reports whether name folds to an identity name or, with authz,
// to Authorization or DPoP.
func dropped(name string, names []string, authz bool) bool {
	return isIdentity(name, names) || authz && (foldsTo(name, "authorization") || foldsTo(name, "dpop"))
}

// isIdentity reports whether key folds to one of names.
func isIdentity(key string, names []string) bool {
	for _, want := range names {
		if foldsTo(key, want) {
			return true
		}
	}
	return false
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

// reservedHeaders are the fields that cannot carry an identity: those a
// proxy deletes on the way (hop-by-hop, RFC 9110 §7.6.1, and the rest of
// reverse_proxy's list), those that frame or route the message, and the
// credential oauth_protect consumes.
var reservedHeaders = []string{"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
	"te", "trailer", "proxy-authenticate", "proxy-authorization", "alt-svc", "content-length", "host", "authorization", "dpop"}

// checkIdentityHeader refuses a name that cannot carry an identity header.
func checkIdentityHeader(name string) error {
	if !validHeaderName(name) {
		return fmt.Errorf("'%s' is not a valid header name", name)
	}
	if slices.Contains(reservedHeaders, normHeader(name)) {
		return fmt.Errorf("'%s' cannot carry an identity: HTTP or a proxy would remove or rewrite it", name)
	}
	return nil
}

// secureRequest reports whether a browser reached the gateway over HTTPS,
// for the session cookie (Secure, __Host-): over TLS; whenever the issuer
// is https, as browsers then come by https whatever terminates it; or
// through a proxy in the server's trusted_proxies that says
// X-Forwarded-Proto: https. An untrusted peer's X-Forwarded-Proto counts
// for nothing.
func (a *App) secureRequest(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if iss, err := a.issuer(); err == nil && strings.HasPrefix(iss, "https://") {
		return true
	}
	if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); trusted {
		// The proxy nearest the browser wrote the first value.
		proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
		return strings.EqualFold(strings.TrimSpace(proto), "https")
	}
	return false
}

// stripSessionCookie removes the authorization server's session cookie
// from a request oauth_server passes on. Over HTTPS the cookie has Path=/
// (the __Host- prefix requires it), so browsers send it with every
// request to the site; an upstream has no use for it and could leak it
// into its logs. Other cookies are kept, in order.
func stripSessionCookie(r *http.Request) {
	lines := r.Header.Values("Cookie")
	found := false
	for _, l := range lines {
		found = found || strings.Contains(l, authz.SessionCookie) // both names contain it
	}
	if !found {
		return
	}
	var kept []string
	for _, l := range lines {
		for part := range strings.SplitSeq(l, ";") {
			part = strings.TrimSpace(part)
			name, _, _ := strings.Cut(part, "=")
			if part == "" || name == authz.SessionCookie || name == authz.SecureSessionCookie {
				continue
			}
			kept = append(kept, part)
		}
	}
	if len(kept) == 0 {
		r.Header.Del("Cookie")
		return
	}
	r.Header.Set("Cookie", strings.Join(kept, "; "))
}
