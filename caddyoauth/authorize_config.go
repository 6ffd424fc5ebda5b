package caddyoauth

import (
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
)

// LoginUpstreamConfig is the legacy system's login endpoint: the gateway
// POSTs {"username", "password"} (or a form) to it, and a 2xx answer with
// the user ID in a JSON field is a successful login.
type LoginUpstreamConfig struct {
	// The URL receiving the POST, http or https. Placeholders such as
	// {env.LOGIN_URL} are expanded at Provision.
	URL string `json:"url"`

	// How the credentials are sent: json or form. Default: json.
	Format string `json:"format,omitempty"`

	// The JSON field of the answer holding the user ID. Default: id.
	IDField string `json:"id_field,omitempty"`

	// How long to wait for the answer; past it the login fails with 503.
	// Default: 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
}

func init() {
	appOptions["session_ttl"] = func(d *caddyfile.Dispenser, a *App) error {
		return parseDurationArg(d, (*time.Duration)(&a.SessionTTL))
	}
	appOptions["pkce"] = parsePKCE
	appOptions["templates"] = func(d *caddyfile.Dispenser, a *App) error { return parseStringArg(d, &a.Templates) }
	appOptions["users_file"] = func(d *caddyfile.Dispenser, a *App) error { return parseStringArg(d, &a.UsersFile) }
	appOptions["login_upstream"] = parseLoginUpstream
	clientOptions["consent"] = func(d *caddyfile.Dispenser, c *ClientConfig) error {
		if err := parseStringArg(d, &c.Consent); err != nil {
			return err
		}
		if !validConsent(c.Consent) {
			return d.Errf("consent must be remember, always or skip, not '%s'", c.Consent)
		}
		return nil
	}
}

var consentModes = []string{"", authz.ConsentRemember, authz.ConsentAlways, authz.ConsentSkip}

func validConsent(m string) bool { return slices.Contains(consentModes, m) }

// parsePKCE parses
//
//	pkce required|optional [allow_plain]
//
// required: every client must send a code_challenge. optional (the
// default): confidential clients may leave it out; public clients must
// always send one. allow_plain accepts the plain method besides S256.
func parsePKCE(d *caddyfile.Dispenser, a *App) error {
	args := d.RemainingArgs()
	if len(args) < 1 || len(args) > 2 {
		return d.Errf("pkce takes required|optional [allow_plain]")
	}
	switch args[0] {
	case "required":
		a.PKCERequired = true
	case "optional":
	default:
		return d.Errf("pkce: expected required or optional, got '%s'", args[0])
	}
	if len(args) == 2 {
		if args[1] != "allow_plain" {
			return d.Errf("pkce: expected allow_plain, got '%s'", args[1])
		}
		a.PKCEAllowPlain = true
	}
	return nil
}

// parseLoginUpstream parses
//
//	login_upstream <url> {
//		format   json|form   # default json
//		id_field <name>      # default id
//		timeout  <duration>  # default 5s
//	}
func parseLoginUpstream(d *caddyfile.Dispenser, a *App) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	lu := &LoginUpstreamConfig{URL: d.Val()}
	if d.NextArg() {
		return d.ArgErr()
	}
	if err := checkLoginURL(lu.URL); err != nil {
		return d.Errf("login_upstream: %v", err)
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return d.Errf("login_upstream option '%s' is given twice", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "format":
			if err = parseStringArg(d, &lu.Format); err == nil && lu.Format != "json" && lu.Format != "form" {
				return d.Errf("login_upstream format must be json or form, not '%s'", lu.Format)
			}
		case "id_field":
			err = parseStringArg(d, &lu.IDField)
		case "timeout":
			err = parseDurationArg(d, (*time.Duration)(&lu.Timeout))
			if err == nil && lu.Timeout == 0 {
				return d.Errf("login_upstream timeout must be positive")
			}
		default:
			return d.Errf("unrecognized login_upstream option '%s'", name)
		}
		if err != nil {
			return err
		}
	}
	a.LoginUpstream = lu
	return nil
}

// checkLoginURL accepts an absolute http or https URL, or one made of a
// placeholder, which is expanded and checked at Provision.
func checkLoginURL(raw string) error {
	if len(raw) > 0 && raw[0] == '{' {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http or https URL", raw)
	}
	return nil
}

// buildAuthenticator chains the login sources in this order: the users
// of the config and the users file, then the login upstream.
func (a *App) buildAuthenticator(users authz.StaticUsers) (authz.Authenticator, error) {
	repl := caddy.NewReplacer()
	if a.UsersFile != "" {
		path := repl.ReplaceKnown(a.UsersFile, "")
		if err := authz.LoadUsersFile(path, users); err != nil {
			return nil, fmt.Errorf("oauth: %v", err)
		}
	}
	var chain authz.AuthenticatorChain
	if len(users) > 0 {
		chain = append(chain, users)
	}
	if lu := a.LoginUpstream; lu != nil {
		raw := repl.ReplaceKnown(lu.URL, "")
		if err := checkLoginURL(raw); err != nil || raw == "" || raw[0] == '{' {
			return nil, fmt.Errorf("oauth: login_upstream: the URL is not an absolute http or https URL")
		}
		if lu.Format != "" && lu.Format != "json" && lu.Format != "form" {
			return nil, fmt.Errorf("oauth: login_upstream: format must be json or form")
		}
		if lu.Timeout < 0 {
			return nil, fmt.Errorf("oauth: login_upstream: timeout must not be negative")
		}
		chain = append(chain, &authz.UpstreamLogin{
			URL: raw, Form: lu.Format == "form", IDField: lu.IDField,
			Timeout: time.Duration(lu.Timeout), Log: a.logger,
		})
	}
	if len(chain) == 0 {
		return nil, nil
	}
	if len(chain) == 1 {
		return chain[0], nil
	}
	return chain, nil
}

// provisionAuthorize builds the authorization code flow of the service.
func (a *App) provisionAuthorize() error {
	if a.SessionTTL < 0 {
		return fmt.Errorf("oauth: session_ttl must not be negative")
	}
	for _, c := range a.Clients {
		if !validConsent(c.Consent) {
			return fmt.Errorf("oauth: client %q: consent must be remember, always or skip", c.ID)
		}
	}
	if len(a.Users) == 0 && a.UsersFile == "" && a.LoginUpstream == nil {
		for _, c := range a.Clients {
			if slices.Contains(c.Grants, authz.GrantAuthorizationCode) {
				a.logger.Warn("a client uses authorization_code but no one can sign in: add user lines, users_file or login_upstream",
					zap.String("client_id", c.ID))
				break
			}
		}
	}
	pages := authz.DefaultPages()
	if a.Templates != "" {
		var err error
		pages, err = authz.LoadPages(caddy.NewReplacer().ReplaceKnown(a.Templates, ""))
		if err != nil {
			return fmt.Errorf("oauth: %v", err)
		}
	}
	a.authorizer = a.service.NewAuthorizer(authz.AuthorizeConfig{
		BasePath:       PathPrefix,
		SessionTTL:     time.Duration(a.SessionTTL),
		PKCERequired:   a.PKCERequired,
		PKCEAllowPlain: a.PKCEAllowPlain,
		Pages:          pages,
	})
	return nil
}
