package caddyoauth

import (
	"cmp"
	"encoding/json"
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
	if a.httpApp == nil || !a.servesOAuth {
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
		walkServer(srv, func(h caddyhttp.MiddlewareHandler, hosts []string) {
			if _, ok := h.(*Server); !ok {
				return
			}
			if hosts == nil {
				noHost = append(noHost, srv.Listen...)
				return
			}
			addOrigins(srv, hosts, httpPort, origins, &patterns, &portless)
		})
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

// addOrigins adds to origins those a route for hosts reaches on srv, and
// to patterns and portless the hosts and listeners that name none.
func addOrigins(srv *caddyhttp.Server, hosts []string, httpPort uint, origins map[string]bool, patterns, portless *[]string) {
	for _, h := range hosts {
		h = strings.ToLower(caddy.NewReplacer().ReplaceKnown(h, ""))
		if h == "" || strings.ContainsAny(h, "*{}") {
			*patterns = append(*patterns, h)
			continue
		}
		for _, l := range srv.Listen {
			na, err := caddy.ParseNetworkAddress(l)
			if err != nil || na.IsUnixNetwork() || na.IsFdNetwork() || na.StartPort == 0 {
				*portless = append(*portless, l)
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

// walkServer calls visit with every handler of srv's routes, error routes
// and named routes, and the hosts of each (walkRoutes).
func walkServer(srv *caddyhttp.Server, visit func(caddyhttp.MiddlewareHandler, []string)) {
	walkRoutes(srv.Routes, nil, visit)
	if srv.Errors != nil {
		walkRoutes(srv.Errors.Routes, nil, visit)
	}
	for _, r := range srv.NamedRoutes {
		walkRoutes(caddyhttp.RouteList{*r}, nil, visit)
	}
}

// walkRoutes calls visit with every handler in routes, walking subroutes,
// and the hosts of its route's host matcher, or else of the nearest
// enclosing route's (hosts), nil when none has one. The nearest matcher
// may be wider than the route's true set of hosts, never narrower, so a
// single host found is the only one.
func walkRoutes(routes caddyhttp.RouteList, hosts []string, visit func(caddyhttp.MiddlewareHandler, []string)) {
	for _, r := range routes {
		h := routeHosts(r)
		if h == nil {
			h = hosts
		}
		for _, handler := range r.Handlers {
			visit(handler, h)
			if v, ok := handler.(*caddyhttp.Subroute); ok {
				walkRoutes(v.Routes, h, visit)
				if v.Errors != nil {
					walkRoutes(v.Errors.Routes, h, visit)
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

// resourceTable is what the gateway derives from its config for resource
// indicators (RFC 8707) and protected resource metadata (RFC 9728), once,
// as the issuer: never from a request.
type resourceTable struct {
	// known are the resources a token may be requested for.
	known map[string]bool
	// targets is each oauth_protect block's resource and challenge.
	targets map[*Protect]*protectTarget
	// docs are the metadata documents each oauth_server serves, by path.
	docs map[*Server]map[string][]byte
}

// protectTarget is the resource an oauth_protect block guards ("" for
// none) and its WWW-Authenticate challenge, which names the resource's
// metadata when a site serves it.
type protectTarget struct {
	resource  string
	challenge string
}

// resolveResources derives each oauth_protect block's resource: its
// resource option, or else the issuer for a block in a site that serves
// oauth_server, or else the one origin of its site address, or none. A
// site's oauth_server serves the metadata of the resources of its blocks
// (the handlers of one server under the same host matcher), each at the
// well-known path followed by its own path.
func (a *App) resolveResources() (*resourceTable, error) {
	iss, err := a.issuer()
	if err != nil {
		return nil, err
	}
	t := &resourceTable{known: map[string]bool{}, targets: map[*Protect]*protectTarget{}, docs: map[*Server]map[string][]byte{}}
	for _, r := range a.resourceIDs {
		t.known[r] = true
	}
	type site struct {
		srv      *caddyhttp.Server
		hosts    []string
		servers  []*Server
		resource map[string]string // metadata path → resource
	}
	in := map[*Protect]*site{}
	var sites []*site
	if a.httpApp != nil {
		for _, name := range slices.Sorted(maps.Keys(a.httpApp.Servers)) {
			srv := a.httpApp.Servers[name]
			byHosts := map[string]*site{}
			walkServer(srv, func(h caddyhttp.MiddlewareHandler, hosts []string) {
				key := "*"
				if hosts != nil {
					key = strings.Join(slices.Sorted(slices.Values(hosts)), ",")
				}
				st := byHosts[key]
				if st == nil {
					st = &site{srv: srv, hosts: hosts, resource: map[string]string{}}
					byHosts[key] = st
					sites = append(sites, st)
				}
				switch v := h.(type) {
				case *Server:
					st.servers = append(st.servers, v)
				case *Protect:
					in[v] = st
				}
			})
		}
	}
	httpPort := uint(caddyhttp.DefaultHTTPPort)
	if a.httpApp != nil && a.httpApp.HTTPPort != 0 {
		httpPort = uint(a.httpApp.HTTPPort)
	}
	scopes := map[string][]string{}
	dpopOnly := map[string]bool{} // every block guarding the resource requires DPoP
	for _, p := range a.protectBlocks() {
		tg := &protectTarget{resource: p.resourceID, challenge: p.challenge}
		st := in[p]
		if tg.resource == "" && st != nil {
			if len(st.servers) > 0 && iss != "" {
				tg.resource, _ = authz.ParseProtectedResource(iss)
			} else if st.hosts != nil {
				origins := map[string]bool{}
				var none []string
				addOrigins(st.srv, st.hosts, httpPort, origins, &none, &none)
				if len(origins) == 1 && len(none) == 0 {
					tg.resource = slices.Collect(maps.Keys(origins))[0]
				}
			}
		}
		if p.AudienceRequired && tg.resource == "" {
			return nil, fmt.Errorf("oauth_protect: audience required needs the block's resource, and its site address names no single origin: set resource")
		}
		t.targets[p] = tg
		if tg.resource == "" {
			continue
		}
		only, seen := dpopOnly[tg.resource]
		dpopOnly[tg.resource] = p.DPoP == DPoPRequired && (only || !seen)
		t.known[tg.resource] = true
		scopes[tg.resource] = sortedUnion(scopes[tg.resource], p.Scopes)
		if st == nil || len(st.servers) == 0 {
			continue // no oauth_server of its site serves its metadata
		}
		mdURL, path := authz.ResourceMetadataURL(tg.resource)
		if other, ok := st.resource[path]; ok && other != tg.resource {
			return nil, fmt.Errorf("oauth_protect: the resources %s and %s of one site have the same metadata path %s: give one another path", other, tg.resource, path)
		}
		st.resource[path] = tg.resource
		tg.challenge += `, resource_metadata="` + mdURL + `"`
	}
	for _, st := range sites {
		if len(st.servers) == 0 || len(st.resource) == 0 {
			continue
		}
		docs := map[string][]byte{}
		for path, res := range st.resource {
			md := authz.ResourceMetadata{
				Resource: res, AuthorizationServers: []string{iss}, ScopesSupported: scopes[res],
				BearerMethodsSupported:                []string{"header"},
				DPoPBoundAccessTokensRequired:         dpopOnly[res],
				TLSClientCertificateBoundAccessTokens: strings.HasPrefix(res, "https://"),
			}
			if a.service != nil && a.service.DPoP() != nil {
				md.DPoPSigningAlgValuesSupported = a.service.DPoP().Algorithms()
			}
			docs[path], _ = json.Marshal(md)
		}
		for _, s := range st.servers {
			t.docs[s] = docs
		}
	}
	return t, nil
}
