package caddyoauth

import (
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
)

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
