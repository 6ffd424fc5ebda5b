package caddyoauth

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
)

// resolveIssuer is the issuer the gateway names in its metadata, JWT access
// tokens and authorization responses: the issuer option, or else the one
// origin of the sites that serve oauth_server. It never comes from a
// request, so a Host header cannot choose it. It needs the provisioned
// http app, so it runs once, at the oauth app's Start or at the first
// request that needs it, whichever comes first (Caddy starts the apps in
// no fixed order, and the http app may already serve).
func (a *App) resolveIssuer() (string, error) {
	if a.Issuer != "" {
		return strings.TrimSuffix(a.Issuer, "/"), nil
	}
	if a.httpApp == nil {
		// No oauth_server: no metadata or authorization response names the
		// issuer here, only JWT access tokens.
		if a.TokenFormat == authz.FormatJWT {
			return "", issuerError("no site serves oauth_server, and JWT access tokens name their issuer")
		}
		return "", nil
	}
	iss, err := deriveIssuer(a.httpApp)
	if err != nil {
		return "", err
	}
	a.logger.Info("issuer derived from the site address; set issuer in the oauth global option to name another",
		zap.String("issuer", iss))
	return iss, nil
}

// issuerError refuses a config whose issuer cannot be derived.
func issuerError(format string, args ...any) error {
	return fmt.Errorf("oauth: set issuer in the oauth global option: "+format, args...)
}

// deriveIssuer returns the origin (scheme://host[:port]) of the routes of
// app that hold oauth_server, when they have exactly one: each route's
// host matcher (or the nearest enclosing route's), with the scheme and
// port of its server's listeners (TLS as the http app's Start decides it).
// A route without a host matcher, which any Host header reaches, a host
// pattern, a listener with no fixed port, or several origins is an error.
func deriveIssuer(app *caddyhttp.App) (string, error) {
	httpPort := uint(cmp.Or(app.HTTPPort, caddyhttp.DefaultHTTPPort))
	origins := map[string]bool{}
	var noHost, patterns, portless []string
	for _, name := range slices.Sorted(maps.Keys(app.Servers)) {
		srv := app.Servers[name]
		var found [][]string // the hosts of each oauth_server; nil: any host
		note := func(hosts []string) { found = append(found, hosts) }
		findOAuthServers(srv.Routes, nil, note)
		if srv.Errors != nil {
			findOAuthServers(srv.Errors.Routes, nil, note)
		}
		for _, r := range srv.NamedRoutes {
			findOAuthServers(caddyhttp.RouteList{*r}, nil, note)
		}
		for _, hosts := range found {
			if hosts == nil {
				noHost = append(noHost, srv.Listen...)
				continue
			}
			for _, h := range hosts {
				h = strings.ToLower(caddy.NewReplacer().ReplaceKnown(h, ""))
				if h == "" || strings.ContainsAny(h, "*{}") {
					patterns = append(patterns, h)
					continue
				}
				for _, l := range srv.Listen {
					na, err := caddy.ParseNetworkAddress(l)
					if err != nil || na.IsUnixNetwork() || na.IsFdNetwork() || na.StartPort == 0 {
						portless = append(portless, l)
						continue
					}
					for off := range na.PortRangeSize() {
						port := na.StartPort + off
						scheme := "http"
						if len(srv.TLSConnPolicies) > 0 && port != httpPort {
							scheme = "https"
						}
						origins[origin(scheme, h, port)] = true
					}
				}
			}
		}
	}
	list := func(s []string) string {
		slices.Sort(s)
		return strings.Join(slices.Compact(s), ", ")
	}
	switch {
	case len(noHost) > 0:
		return "", issuerError("oauth_server is served on a site address with no host (%s)", list(noHost))
	case len(patterns) > 0:
		return "", issuerError("oauth_server is served on a host pattern (%s)", list(patterns))
	case len(portless) > 0:
		return "", issuerError("oauth_server is served on an address with no fixed port (%s)", list(portless))
	case len(origins) == 0:
		return "", issuerError("no site address is found for oauth_server")
	case len(origins) > 1:
		return "", issuerError("oauth_server is served on several origins (%s)", list(slices.Collect(maps.Keys(origins))))
	}
	return slices.Collect(maps.Keys(origins))[0], nil
}

// findOAuthServers calls found with the hosts of every oauth_server in
// routes, walking subroutes: those of its route's host matcher, or else of
// the nearest enclosing route's (hosts), nil when none has one. The
// nearest matcher may be wider than the route's true set of hosts, never
// narrower, so a single host found is the only one.
func findOAuthServers(routes caddyhttp.RouteList, hosts []string, found func([]string)) {
	for _, r := range routes {
		h := routeHosts(r)
		if h == nil {
			h = hosts
		}
		for _, handler := range r.Handlers {
			switch v := handler.(type) {
			case *Server:
				found(h)
			case *caddyhttp.Subroute:
				findOAuthServers(v.Routes, h, found)
				if v.Errors != nil {
					findOAuthServers(v.Errors.Routes, h, found)
				}
			}
		}
	}
}

// routeHosts returns the hosts a route's provisioned matchers allow, or nil
// when a request for any host may match it: no matcher sets, or one
// without a host matcher (the sets are alternatives).
func routeHosts(r caddyhttp.Route) []string {
	if len(r.MatcherSets) == 0 {
		return nil
	}
	var out []string
	for _, set := range r.MatcherSets {
		var hosts []string
		for _, m := range set {
			switch hm := m.(type) {
			case *caddyhttp.MatchHost:
				hosts = *hm
			case caddyhttp.MatchHost:
				hosts = hm
			}
		}
		if hosts == nil {
			return nil
		}
		out = append(out, hosts...)
	}
	return out
}

// origin is an RFC 6454 origin as an issuer writes it: the default port
// of the scheme left out, an IPv6 host in brackets.
func origin(scheme, host string, port uint) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if (scheme == "http" && port == 80) || (scheme == "https" && port == 443) {
		return scheme + "://" + host
	}
	return scheme + "://" + host + ":" + strconv.FormatUint(uint64(port), 10)
}
