package caddyoauth

import (
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("oauth", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("oauth_server", parseServerDirective)
	httpcaddyfile.RegisterHandlerDirective("oauth_protect", parseProtectDirective)
	// oauth_server answers its endpoints before other auth runs;
	// oauth_protect runs after forward_auth so request_header and the
	// proxy see {http.auth.user.id}.
	httpcaddyfile.RegisterDirectiveOrder("oauth_server", httpcaddyfile.Before, "basic_auth")
	httpcaddyfile.RegisterDirectiveOrder("oauth_protect", httpcaddyfile.After, "forward_auth")
}

// appOptions parses the subdirectives of the oauth global option. Features
// add theirs in init, from the file that implements them.
var appOptions = map[string]func(d *caddyfile.Dispenser, a *App) error{
	"store": parseStore,
	"access_token_ttl": func(d *caddyfile.Dispenser, a *App) error {
		return parseDurationArg(d, (*time.Duration)(&a.AccessTokenTTL))
	},
	"code_ttl":               func(d *caddyfile.Dispenser, a *App) error { return parseDurationArg(d, (*time.Duration)(&a.CodeTTL)) },
	"refresh_token_ttl":      func(d *caddyfile.Dispenser, a *App) error { return parseDurationPtr(d, &a.RefreshTokenTTL) },
	"refresh_token_grace":    func(d *caddyfile.Dispenser, a *App) error { return parseDurationPtr(d, &a.RefreshTokenGrace) },
	"refresh_token_rotation": func(d *caddyfile.Dispenser, a *App) error { return parseOnOff(d, &a.RefreshTokenRotation) },
	"issuer":                 func(d *caddyfile.Dispenser, a *App) error { return parseStringArg(d, &a.Issuer) },
	"client":                 parseClient,
	"user":                   parseUser,
}

// clientOptions parses the subdirectives of a client block.
var clientOptions = map[string]func(d *caddyfile.Dispenser, c *ClientConfig) error{
	"name":          func(d *caddyfile.Dispenser, c *ClientConfig) error { return parseStringArg(d, &c.Name) },
	"secret":        func(d *caddyfile.Dispenser, c *ClientConfig) error { return parseStringArg(d, &c.Secret) },
	"secret_hash":   func(d *caddyfile.Dispenser, c *ClientConfig) error { return parseStringArg(d, &c.SecretHash) },
	"user":          func(d *caddyfile.Dispenser, c *ClientConfig) error { return parseStringArg(d, &c.User) },
	"redirect_uri":  func(d *caddyfile.Dispenser, c *ClientConfig) error { return parseList(d, &c.RedirectURIs) },
	"grants":        func(d *caddyfile.Dispenser, c *ClientConfig) error { return parseList(d, &c.Grants) },
	"scopes":        func(d *caddyfile.Dispenser, c *ClientConfig) error { return parseList(d, &c.Scopes) },
	"default_scope": func(d *caddyfile.Dispenser, c *ClientConfig) error { return parseList(d, &c.DefaultScope) },
	"public": func(d *caddyfile.Dispenser, c *ClientConfig) error {
		if d.NextArg() {
			return d.ArgErr()
		}
		c.Public = true
		return nil
	},
}

// parseGlobalOption parses the oauth global option:
//
//	oauth {
//		store file [<path>] | memory | redis <url> {...}
//		access_token_ttl  <duration>
//		refresh_token_ttl <duration>   # 0: never expires
//		code_ttl          <duration>
//		refresh_token_rotation on|off
//		refresh_token_grace <duration>
//		issuer <url>
//		client <client_id> {
//			name <display name>
//			secret <secret>            # or secret_hash <bcrypt>, or public
//			redirect_uri <uri> ...
//			grants <grant> ...
//			scopes <scope> ...
//			default_scope <scope> ...
//			user <user_id>
//			consent remember|always|skip
//		}
//		user <username> <bcrypt-hash> [<user_id>]
//		rate_limit off | { token|login|introspect <events>/<period> [burst <n>] | off }   # caddyfile_limits.go
//		lockout off | { window, slow_after, lock_after, lock_for, address_lock_after }
//		users_file <path>
//		login_upstream <url> { format json|form; id_field <name>; timeout <duration> }
//		session_ttl <duration>
//		pkce required|optional [allow_plain]
//		templates <dir>
//	}
//
// The authorization code options are parsed in authorize_config.go.
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		// A second block would silently replace the first one's clients.
		d.Next()
		return nil, d.Errf("the oauth option is given twice; put all its settings in one oauth block")
	}
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "oauth", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile sets up the app from Caddyfile tokens; see
// parseGlobalOption for the syntax.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume option name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	lines := map[string]int{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		lines[name] = d.Line()
		parse, ok := appOptions[name]
		if !ok {
			return d.Errf("unrecognized oauth option '%s'", name)
		}
		if name != "client" && name != "user" && seen[name] {
			return d.Errf("oauth option '%s' is given twice", name)
		}
		seen[name] = true
		if err := parse(d, a); err != nil {
			return err
		}
	}
	for _, check := range appChecks {
		if err := check(d, a, lines); err != nil {
			return err
		}
	}
	return nil
}

// appChecks validate combinations of oauth options once the block is read,
// given the line of each option for their errors; features add theirs in
// init, like appOptions.
var appChecks []func(d *caddyfile.Dispenser, a *App, lines map[string]int) error

func parseStore(d *caddyfile.Dispenser, a *App) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	name := d.Val()
	unm, err := caddyfile.UnmarshalModule(d, "oauth.stores."+name)
	if err != nil {
		return err
	}
	a.StoreRaw = caddyconfig.JSONModuleObject(unm, "module", name, nil)
	return nil
}

func parseClient(d *caddyfile.Dispenser, a *App) error {
	if !d.NextArg() {
		return d.Errf("client needs a client_id")
	}
	c := &ClientConfig{ID: d.Val()}
	if d.NextArg() {
		return d.ArgErr()
	}
	for _, other := range a.Clients {
		if other.ID == c.ID {
			return d.Errf("client '%s' is defined twice", c.ID)
		}
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		parse, ok := clientOptions[name]
		if !ok {
			return d.Errf("unrecognized client option '%s'", name)
		}
		if seen[name] && name != "redirect_uri" {
			return d.Errf("client option '%s' is given twice", name)
		}
		seen[name] = true
		if err := parse(d, c); err != nil {
			return err
		}
	}
	if err := c.check(); err != nil {
		return d.Errf("%v", err)
	}
	a.Clients = append(a.Clients, c)
	return nil
}

func parseUser(d *caddyfile.Dispenser, a *App) error {
	args := d.RemainingArgs()
	if len(args) < 2 || len(args) > 3 {
		return d.Errf("user takes <username> <bcrypt-hash> [<user_id>]")
	}
	u := &UserConfig{Username: args[0], PasswordHash: args[1]}
	if len(args) == 3 {
		u.UserID = args[2]
	}
	if !authz.IsBcrypt(u.PasswordHash) {
		return d.Errf("user '%s': the password hash is not a bcrypt hash (make one with `caddy hash-password`)", u.Username)
	}
	for _, id := range []string{u.Username, u.UserID} {
		if err := authz.CheckUserID(id); err != nil {
			return d.Errf("user '%s': %v", u.Username, err)
		}
	}
	for _, other := range a.Users {
		if other.Username == u.Username {
			return d.Errf("user '%s' is defined twice", u.Username)
		}
	}
	a.Users = append(a.Users, u)
	return nil
}

func parseStringArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func parseList(d *caddyfile.Dispenser, dst *[]string) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	for _, a := range args {
		if !slices.Contains(*dst, a) {
			*dst = append(*dst, a)
		}
	}
	return nil
}

func parseDurationArg(d *caddyfile.Dispenser, dst *time.Duration) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	dur, err := caddy.ParseDuration(d.Val())
	if err != nil {
		return d.Errf("bad duration '%s': %v", d.Val(), err)
	}
	if dur < 0 {
		return d.Errf("duration '%s' is negative", d.Val())
	}
	*dst = dur
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func parseDurationPtr(d *caddyfile.Dispenser, dst **caddy.Duration) error {
	var dur time.Duration
	if err := parseDurationArg(d, &dur); err != nil {
		return err
	}
	cd := caddy.Duration(dur)
	*dst = &cd
	return nil
}

func parseOnOff(d *caddyfile.Dispenser, dst **bool) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	var v bool
	switch d.Val() {
	case "on":
		v = true
	case "off":
	default:
		return d.Errf("expected on or off, got '%s'", d.Val())
	}
	*dst = &v
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// parseServerDirective parses the oauth_server directive, which takes no
// arguments:
//
//	oauth_server
func parseServerDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	s := new(Server)
	if err := s.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	if h.Option("oauth") == nil {
		return nil, h.Errf("oauth_server needs the oauth global option: add an oauth block with your clients to the global options")
	}
	return s, nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens.
func (s *Server) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(d.Nesting()) {
		return d.Errf("oauth_server takes no block; its settings live in the oauth global option")
	}
	return nil
}

func parseProtectDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	p := new(Protect)
	if err := p.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	// Caught here rather than in Provision, so the error names the line.
	if h.Option("oauth") == nil {
		return nil, h.Errf("oauth_protect needs the oauth global option: add an oauth block with your clients to the global options")
	}
	return p, nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	oauth_protect [<matcher>] {
//		scope <scope> ...
//		user_header   <name>
//		client_header <name>
//		scope_header  <name>
//		realm <realm>
//		optional
//		forward_token
//	}
func (p *Protect) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return d.Errf("oauth_protect option '%s' is given twice", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "scope":
			if err = parseList(d, &p.Scopes); err == nil {
				for _, s := range p.Scopes {
					if _, ok := authz.ParseScope(s); !ok || strings.Contains(s, " ") {
						return d.Errf("'%s' is not a valid scope", s)
					}
				}
			}
		case "user_header":
			err = parseHeaderName(d, &p.UserHeader)
		case "client_header":
			err = parseHeaderName(d, &p.ClientHeader)
		case "scope_header":
			err = parseHeaderName(d, &p.ScopeHeader)
		case "realm":
			if err = parseStringArg(d, &p.Realm); err == nil && strings.ContainsAny(p.Realm, "\"\\\r\n") {
				return d.Errf("realm may not contain quotes, backslashes or line breaks")
			}
		case "optional":
			if d.NextArg() {
				return d.ArgErr()
			}
			p.Optional = true
		case "forward_token":
			if d.NextArg() {
				return d.ArgErr()
			}
			p.ForwardToken = true
		default:
			return d.Errf("unrecognized oauth_protect option '%s'", name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func parseHeaderName(d *caddyfile.Dispenser, dst *string) error {
	if err := parseStringArg(d, dst); err != nil {
		return err
	}
	if !validHeaderName(*dst) {
		return d.Errf("'%s' is not a valid header name", *dst)
	}
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*Server)(nil)
	_ caddyfile.Unmarshaler = (*Protect)(nil)
)
