package caddyoauth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/clientauth"
	"github.com/caddyoauth/gateway/caddyoauth/clients"
	"github.com/caddyoauth/gateway/caddyoauth/dpop"
	"github.com/caddyoauth/gateway/caddyoauth/limits"
	"github.com/caddyoauth/gateway/caddyoauth/oidc"
	"github.com/caddyoauth/gateway/caddyoauth/pages"
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

// parseGlobalOption parses the oauth global option; see
// App.UnmarshalCaddyfile for its syntax.
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

// UnmarshalCaddyfile sets up the app from the oauth global option:
//
//	oauth {
//		store file [<path>] | memory | redis [<url>] {...}   # default: file; see stores.go
//
//		# Tokens
//		access_token_ttl  <duration>         # default 1h
//		refresh_token_ttl <duration>         # default 720h; 0: never expires
//		code_ttl          <duration>         # default 60s
//		refresh_token_rotation on|off        # default on
//		refresh_token_grace <duration>       # default 10s
//		issuer <url>                         # default: the origin of the sites serving oauth_server
//		token_format opaque|jwt              # default opaque
//		signing_key <pem file>               # jwt only; default: a generated ES256 key
//		signing_key_rotation <duration>      # jwt, generated keys only; default 720h; 0: never
//		audience <aud>                       # jwt only; default: the issuer
//		key_encryption_key <secret>          # jwt, generated keys only: encrypts them in the store; write {env.NAME}
//
//		# Clients and users
//		client <client_id> {                 # once per client
//			name <display name>              # default: the client_id
//			secret <secret>                  # or secret_hash <bcrypt>, or public
//			secret_hash <bcrypt hash>
//			public
//			redirect_uri <uri> ...           # may repeat
//			grants <grant> ...               # authorization_code refresh_token client_credentials password
//			scopes <scope> ...
//			default_scope <scope> ...        # default: all of scopes
//			user <user_id>                   # the user of client_credentials tokens
//			consent remember|always|skip     # default remember
//			introspect                       # may introspect every token
//			# Instead of a secret (see README "Sender-constrained tokens"):
//			token_endpoint_auth_method private_key_jwt|tls_client_auth|self_signed_tls_client_auth
//			jwks <file> | jwks `<JSON>`      # the client's public keys, or:
//			jwks_uri <https url>
//			tls_client_auth subject|san_dns|san_uri|san_ip|san_email <value>
//			self_signed_tls_client_auth      # the certificate's key is in jwks or jwks_uri
//			dpop required|allowed            # required: every token DPoP-bound; default allowed
//			certificate_bound                # tokens bound to the client's TLS certificate (RFC 8705)
//		}
//		user <username> <bcrypt hash> [<user_id>]   # once per user
//		users_file <path>
//		login_upstream <url> {
//			format   json|form               # default json
//			id_field <name>                  # default id
//			timeout  <duration>              # default 5s
//		}
//
//		# Authorization code flow
//		session_ttl <duration>               # default 1h
//		pkce required|optional [allow_plain] # default optional
//		templates <dir>
//
//		# Pages
//		scope <name> "<description>" [{  # once per scope; shown instead of its name
//			<language tag> "<description>"
//		}]
//		branding {
//			name "<name>"
//			logo <path on this site> | <https URL>
//			color "#rrggbb"                  # quoted: # starts a comment
//			support_url <https URL>
//		}
//		language <tag> <json file>           # once per language: adds one or overrides a shipped one
//
//		# Dynamic and self-service clients
//		scopes <scope> ...                   # scopes dynamic clients may get, besides the static clients'
//		self_service                         # serve /oauth/apps to signed-in users
//		apps_allowed_grants <grant> ...      # default: authorization_code refresh_token
//		apps_allowed_scopes <scope> ...      # the only scopes users' apps may get; default: none
//		apps_per_user <n>                    # default 10
//
//		# Clients nobody vetted
//		dynamic_clients {
//			registration open | token <initial_access_token> | off   # default off
//			metadata_documents on|off        # default off
//			allow_private_addresses          # metadata documents and registered jwks_uris may be on loopback/private addresses
//			scopes <scope> ...               # default: the scopes option above
//			grants <grant> ...               # default authorization_code refresh_token
//			lifetime <duration>              # an unused registered client expires; default 720h; 0: never
//		}
//		# Resource indicators (RFC 8707)
//		resources <uri> ...                  # besides those of the oauth_protect blocks
//
//		# DPoP proofs (RFC 9449)
//		dpop {
//			algorithms <alg> ...             # default ES256 ES384 EdDSA RS256 PS256
//			proof_max_age <duration>         # default 60s
//			proof_max_skew <duration>        # default 5s
//			nonce on|off                     # server nonces; default off
//			nonce_period <duration>          # default 5m
//		}
//
//		# Abuse protection
//		rate_limit off
//		rate_limit {
//			token      <events>/<period> [burst <n>] | off   # default 20/s burst 40
//			login      <events>/<period> [burst <n>] | off   # default 10/m burst 20
//			introspect <events>/<period> [burst <n>] | off   # default 100/s burst 200
//			revoke     <events>/<period> [burst <n>] | off   # default 100/s burst 200
//			authorize  <events>/<period> [burst <n>] | off   # default 10/s burst 30
//			register   <events>/<period> [burst <n>] | off   # default 10/m burst 20
//		}
//		lockout off
//		lockout {
//			window     <duration>            # failures counted over; default 15m
//			slow_after <n>                   # then waits of 1s, 2s, 4s...; default 3
//			lock_after <n>                   # default 10
//			lock_for   <duration>            # default 15m
//			address_lock_after <n>           # failures from one address; default 100
//			account_slow_after <n>           # failures of one username from anywhere; default 20
//		}
//	}
//
// Every option but client and user may be given once. A rate period is s,
// m, h or a duration such as 10s; a limit left out keeps its default.
// Secrets stay placeholders such as {env.NAME} until Provision.
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
		if !slices.Contains([]string{"client", "user", "scope", "language"}, name) && seen[name] {
			return d.Errf("oauth option '%s' is given twice", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "store":
			err = a.parseStore(d)

		case "access_token_ttl":
			err = parseDurationArg(d, (*time.Duration)(&a.AccessTokenTTL))
		case "refresh_token_ttl":
			err = parseDurationPtr(d, &a.RefreshTokenTTL)
		case "code_ttl":
			err = parseDurationArg(d, (*time.Duration)(&a.CodeTTL))
		case "refresh_token_rotation":
			err = parseOnOff(d, &a.RefreshTokenRotation)
		case "refresh_token_grace":
			err = parseDurationPtr(d, &a.RefreshTokenGrace)
		case "issuer":
			err = parseStringArg(d, &a.Issuer)
		case "token_format":
			if err = parseStringArg(d, &a.TokenFormat); err == nil && a.TokenFormat != authz.FormatOpaque && a.TokenFormat != authz.FormatJWT {
				return d.Errf("token_format must be opaque or jwt, not '%s'", a.TokenFormat)
			}
		case "signing_key":
			err = parseStringArg(d, &a.SigningKey)
		case "signing_key_rotation":
			err = parseDurationPtr(d, &a.SigningKeyRotation)
		case "key_encryption_key":
			err = parseStringArg(d, &a.KeyEncryptionKey)
		case "audience":
			if err = parseStringArg(d, &a.Audience); err == nil && strings.ContainsAny(a.Audience, " \t\"\\") {
				return d.Errf("audience '%s' may not contain spaces, quotes or backslashes", a.Audience)
			}

		case "id_token_signing_alg":
			if err = parseStringArg(d, &a.IDTokenSigningAlg); err == nil && !slices.Contains(oidc.SigningAlgs, a.IDTokenSigningAlg) {
				return d.Errf("id_token_signing_alg must be RS256 or ES256, not '%s'", a.IDTokenSigningAlg)
			}
		case "id_token_ttl":
			err = parsePositiveDuration(d, &a.IDTokenTTL)

		case "client":
			err = a.parseClient(d)
		case "user":
			err = a.parseUser(d)
		case "users_file":
			if err = parseStringArg(d, &a.UsersFile); err == nil {
				a.UsersFileDigest = fileDigest(a.UsersFile)
			}
		case "login_upstream":
			a.LoginUpstream, err = parseLoginUpstream(d)

		case "session_ttl":
			err = parseDurationArg(d, (*time.Duration)(&a.SessionTTL))
		case "pkce":
			err = a.parsePKCE(d)
		case "templates":
			err = parseStringArg(d, &a.Templates)
		case "scope":
			err = a.parseScopeDescription(d)
		case "branding":
			a.Branding, err = parseBranding(d)
		case "language":
			err = a.parseLanguage(d)

		case "scopes":
			if err = parseList(d, &a.Scopes); err == nil {
				for _, s := range a.Scopes {
					if _, ok := authz.ParseScope(s); !ok || strings.Contains(s, " ") {
						return d.Errf("'%s' is not a valid scope", s)
					}
				}
			}
		case "self_service":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.SelfService = true
		case "apps_allowed_grants":
			if err = parseList(d, &a.SelfServiceGrants); err == nil {
				if err := checkSelfServiceGrants(a.SelfServiceGrants); err != nil {
					return d.Errf("%v", err)
				}
			}
		case "apps_allowed_scopes":
			if err = parseList(d, &a.SelfServiceScopes); err == nil {
				for _, s := range a.SelfServiceScopes {
					if _, ok := authz.ParseScope(s); !ok || strings.Contains(s, " ") {
						return d.Errf("'%s' is not a valid scope", s)
					}
				}
			}
		case "apps_per_user":
			err = parsePositiveInt(d, &a.AppsPerUser)
		case "dynamic_clients":
			a.DynamicClients, err = parseDynamicClients(d)
		case "resources":
			if err = parseList(d, &a.Resources); err == nil {
				for _, r := range a.Resources {
					if _, err := authz.ParseResource(r); err != nil {
						return d.Errf("resources: '%s': %v", r, err)
					}
				}
			}

		case "dpop":
			a.DPoP, err = parseDPoP(d)

		case "rate_limit":
			a.RateLimit, err = parseRateLimit(d)
		case "lockout":
			a.Lockout, err = parseLockout(d)

		default:
			return d.Errf("unrecognized oauth option '%s'", name)
		}
		if err != nil {
			return err
		}
	}
	// The token options depend on each other: checked once all are read,
	// the error names the line of the option at fault.
	if option, err := a.tokenOptionsProblem(); err != nil {
		if line, ok := lines[option]; ok {
			return fmt.Errorf("%v, at %s:%d", err, d.File(), line)
		}
		return d.WrapErr(err)
	}
	return nil
}

// parseScopeDescription reads `scope <name> "<description>"` with an
// optional block of descriptions by language tag.
func (a *App) parseScopeDescription(d *caddyfile.Dispenser) error {
	var name, text string
	if !d.Args(&name, &text) || d.NextArg() {
		return d.Err(`expected scope <name> "<description>"`)
	}
	if _, ok := authz.ParseScope(name); !ok || strings.Contains(name, " ") {
		return d.Errf("'%s' is not a valid scope", name)
	}
	if a.ScopeDescriptions[name] != nil {
		return d.Errf("scope '%s' is described twice", name)
	}
	st := &pages.ScopeText{Description: text}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		tag := d.Val()
		if !pages.ValidTag(tag) {
			return d.Errf("scope '%s': '%s' is not a language tag such as de or pt-BR", name, tag)
		}
		if _, dup := st.Languages[tag]; dup {
			return d.Errf("scope '%s': language '%s' is given twice", name, tag)
		}
		var v string
		if !d.Args(&v) || d.NextArg() {
			return d.Errf(`scope '%s': expected %s "<description>"`, name, tag)
		}
		if st.Languages == nil {
			st.Languages = map[string]string{}
		}
		st.Languages[tag] = v
	}
	if a.ScopeDescriptions == nil {
		a.ScopeDescriptions = map[string]*pages.ScopeText{}
	}
	a.ScopeDescriptions[name] = st
	return nil
}

// parseBranding reads the branding block, checking each setting.
func parseBranding(d *caddyfile.Dispenser) (*pages.Branding, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	b := new(pages.Branding)
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return nil, d.Errf("branding option '%s' is given twice", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "name":
			if err = parseStringArg(d, &b.Name); err == nil {
				err = pages.CheckName(b.Name)
			}
		case "logo":
			if err = parseStringArg(d, &b.Logo); err == nil {
				_, err = pages.CheckLogo(b.Logo)
			}
		case "color":
			if !d.NextArg() {
				return nil, d.Err(`color needs a hex colour; quote it, as # starts a comment: color "#0b5fff"`)
			}
			if b.Color, err = pages.CheckColor(d.Val()); err == nil && d.NextArg() {
				return nil, d.ArgErr()
			}
		case "support_url":
			if err = parseStringArg(d, &b.SupportURL); err == nil {
				err = pages.CheckSupportURL(b.SupportURL)
			}
		default:
			return nil, d.Errf("unrecognized branding option '%s'", name)
		}
		if err != nil {
			return nil, d.Err(err.Error())
		}
	}
	return b, nil
}

// parseLanguage reads `language <tag> <file>`.
func (a *App) parseLanguage(d *caddyfile.Dispenser) error {
	var tag, file string
	if !d.Args(&tag, &file) || d.NextArg() {
		return d.Err("expected language <tag> <json file>")
	}
	if !pages.ValidTag(tag) {
		return d.Errf("'%s' is not a language tag such as de or pt-BR", tag)
	}
	for t := range a.Languages {
		if strings.EqualFold(t, tag) {
			return d.Errf("language '%s' is given twice", tag)
		}
	}
	if a.Languages == nil {
		a.Languages = map[string]string{}
	}
	a.Languages[tag] = file
	return nil
}

// parseStore reads `store <module> ...`, which the store module parses.
func (a *App) parseStore(d *caddyfile.Dispenser) error {
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

// parseClient reads a `client <client_id> {...}` block and checks the
// client, so a mistake is reported at its line.
func (a *App) parseClient(d *caddyfile.Dispenser) error {
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
		if seen[name] && name != "redirect_uri" && name != "post_logout_redirect_uri" {
			return d.Errf("client option '%s' is given twice", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "name":
			err = parseStringArg(d, &c.Name)
		case "secret":
			err = parseStringArg(d, &c.Secret)
		case "secret_hash":
			err = parseStringArg(d, &c.SecretHash)
		case "public":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.Public = true
		case "redirect_uri":
			err = parseList(d, &c.RedirectURIs)
		case "grants":
			err = parseList(d, &c.Grants)
		case "scopes":
			err = parseList(d, &c.Scopes)
		case "default_scope":
			err = parseList(d, &c.DefaultScope)
		case "user":
			err = parseStringArg(d, &c.User)
		case "consent":
			if err = parseStringArg(d, &c.Consent); err == nil && !validConsent(c.Consent) {
				return d.Errf("consent must be remember, always or skip, not '%s'", c.Consent)
			}
		case "introspect":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.Introspect = true
		case "post_logout_redirect_uri":
			err = parseList(d, &c.PostLogoutRedirectURIs)
		case "id_token_signed_response_alg":
			err = parseStringArg(d, &c.IDTokenSignedResponseAlg)
		case "backchannel_logout_uri":
			err = parseStringArg(d, &c.BackchannelLogoutURI)
		case "default_max_age":
			var age caddy.Duration
			if err = parsePositiveDuration(d, &age); err == nil {
				c.DefaultMaxAge = int64(time.Duration(age) / time.Second)
			}
		case "require_auth_time":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.RequireAuthTime = true
		case "subject_type":
			err = parseStringArg(d, &c.SubjectType)
		case "token_endpoint_auth_method", "jwks", "jwks_uri", "tls_client_auth", "self_signed_tls_client_auth":
			err = parseClientAuth(d, c, name)
		case "dpop":
			err = parseDPoPMode(d, &c.DPoPBoundAccessTokens)
		case "certificate_bound":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.CertificateBoundAccessTokens = true
		default:
			return d.Errf("unrecognized client option '%s'", name)
		}
		if err != nil {
			return err
		}
	}
	if err := c.check(); err != nil {
		return d.Errf("%v", err)
	}
	a.Clients = append(a.Clients, c)
	return nil
}

// parseUser reads `user <username> <bcrypt hash> [<user_id>] [{claims}]`.
func (a *App) parseUser(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) < 2 || len(args) > 3 {
		return d.Errf("user takes <username> <bcrypt-hash> [<user_id>]")
	}
	u := &UserConfig{Username: args[0], PasswordHash: args[1]}
	if len(args) == 3 {
		u.UserID = args[2]
	}
	claims, err := parseClaims(d)
	if err != nil {
		return err
	}
	if len(claims) > 0 {
		u.Claims = claims
	}
	if !authz.IsBcrypt(u.PasswordHash) {
		return d.Errf("user '%s': the password hash is not a bcrypt hash (make one with `caddy hash-password`)", u.Username)
	}
	for _, id := range []string{u.Username, u.UserID} {
		if err := authz.CheckUserID(id); err != nil && id != "" {
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

// parseClaims reads a user's block of OpenID Connect claims: one claim a
// line with its value; a boolean claim alone means true; address is a
// block of its members.
func parseClaims(d *caddyfile.Dispenser) (oidc.Claims, error) {
	claims := oidc.Claims{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		claim := d.Val()
		if _, dup := claims[claim]; dup {
			return nil, d.Errf("claim '%s' is given twice", claim)
		}
		args := d.RemainingArgs()
		switch {
		case claim == "address":
			if len(args) > 0 {
				return nil, d.Errf("address takes a block of %v", oidc.AddressFields)
			}
			addr := map[string]any{}
			for inner := d.Nesting(); d.NextBlock(inner); {
				member := d.Val()
				if !d.NextArg() {
					return nil, d.ArgErr()
				}
				addr[member] = d.Val()
				if d.NextArg() {
					return nil, d.ArgErr()
				}
			}
			claims[claim] = addr
		case oidc.IsBooleanClaim(claim) && len(args) == 0:
			claims[claim] = true
		case oidc.IsBooleanClaim(claim) && len(args) == 1 && (args[0] == "true" || args[0] == "false"):
			claims[claim] = args[0] == "true"
		case oidc.IsNumberClaim(claim) && len(args) == 1:
			n, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return nil, d.Errf("claim %s must be a number of seconds since 1970", claim)
			}
			claims[claim] = n
		case len(args) == 1:
			claims[claim] = args[0]
		default:
			return nil, d.Errf("claim '%s' takes one value", claim)
		}
		if err := (oidc.Claims{claim: claims[claim]}).Check(); err != nil {
			return nil, d.Errf("%v", err)
		}
	}
	return claims, nil
}

// parseLoginUpstream reads `login_upstream <url> {...}`.
func parseLoginUpstream(d *caddyfile.Dispenser) (*LoginUpstreamConfig, error) {
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	lu := &LoginUpstreamConfig{URL: d.Val()}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	if err := checkLoginURL(lu.URL); err != nil {
		return nil, d.Errf("login_upstream: %v", err)
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return nil, d.Errf("login_upstream option '%s' is given twice", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "format":
			if err = parseStringArg(d, &lu.Format); err == nil && lu.Format != "json" && lu.Format != "form" {
				return nil, d.Errf("login_upstream format must be json or form, not '%s'", lu.Format)
			}
		case "id_field":
			err = parseStringArg(d, &lu.IDField)
		case "timeout":
			err = parseDurationArg(d, (*time.Duration)(&lu.Timeout))
			if err == nil && lu.Timeout == 0 {
				return nil, d.Errf("login_upstream timeout must be positive")
			}
		case "claims_from":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			lu.ClaimsFrom = map[string]string{}
			for _, arg := range args {
				claim, field, ok := strings.Cut(arg, "=")
				if !ok || field == "" || !oidc.IsStandardClaim(claim) {
					return nil, d.Errf("claims_from takes claim=field pairs of standard OpenID Connect claims, not '%s'", arg)
				}
				lu.ClaimsFrom[claim] = field
			}
		default:
			return nil, d.Errf("unrecognized login_upstream option '%s'", name)
		}
		if err != nil {
			return nil, err
		}
	}
	return lu, nil
}

// parsePKCE reads `pkce required|optional [allow_plain]`. required: every
// client must send a code_challenge. optional (the default): confidential
// clients may leave it out; public clients must always send one.
// allow_plain accepts the plain method besides S256.
func (a *App) parsePKCE(d *caddyfile.Dispenser) error {
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

// parseRateLimit reads `rate_limit off` or a `rate_limit {...}` block.
func parseRateLimit(d *caddyfile.Dispenser) (*RateLimitConfig, error) {
	cfg := new(RateLimitConfig)
	if d.NextArg() {
		if d.Val() != "off" {
			return nil, d.Errf("rate_limit takes 'off' or a block, not '%s'", d.Val())
		}
		if d.NextArg() {
			return nil, d.ArgErr()
		}
		if d.NextBlock(d.Nesting()) {
			return nil, d.Err("rate_limit off takes no block")
		}
		cfg.Off = true
		return cfg, nil
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		var dst **RateConfig
		switch name {
		case LimitToken:
			dst = &cfg.Token
		case LimitLogin:
			dst = &cfg.Login
		case LimitIntrospect:
			dst = &cfg.Introspect
		case LimitRevoke:
			dst = &cfg.Revoke
		case LimitAuthorize:
			dst = &cfg.Authorize
		case LimitRegister:
			dst = &cfg.Register
		default:
			return nil, d.Errf("unrecognized rate_limit option '%s' (want token, login, introspect, revoke, authorize or register)", name)
		}
		if seen[name] {
			return nil, d.Errf("rate_limit %s is given twice", name)
		}
		seen[name] = true
		rc, err := parseRateArgs(d)
		if err != nil {
			return nil, err
		}
		*dst = rc
	}
	return cfg, nil
}

// parseClientAuth reads the options of a client without a secret. A jwks
// file is read now, so the adapted config holds the keys (public ones)
// and a changed file changes it.
func parseClientAuth(d *caddyfile.Dispenser, c *ClientConfig, name string) error {
	setMethod := func(m string) error {
		if c.TokenEndpointAuthMethod != "" && c.TokenEndpointAuthMethod != m {
			return d.Errf("%s contradicts token_endpoint_auth_method %s", name, c.TokenEndpointAuthMethod)
		}
		c.TokenEndpointAuthMethod = m
		return nil
	}
	switch name {
	case "token_endpoint_auth_method":
		var m string
		if err := parseStringArg(d, &m); err != nil {
			return err
		}
		return setMethod(m)
	case "jwks":
		var v string
		if err := parseStringArg(d, &v); err != nil {
			return err
		}
		if t := strings.TrimSpace(v); strings.HasPrefix(t, "{") && json.Valid([]byte(t)) {
			c.JWKS = json.RawMessage(t)
			return nil
		}
		b, err := os.ReadFile(v)
		if err != nil {
			return d.Errf("jwks: %v (give a file of a JWK Set, or the JSON itself in backquotes)", err)
		}
		if !json.Valid(b) {
			return d.Errf("jwks: %s is not JSON", v)
		}
		var compact bytes.Buffer
		_ = json.Compact(&compact, b)
		c.JWKS = compact.Bytes()
	case "jwks_uri":
		return parseStringArg(d, &c.JWKSURI)
	case "tls_client_auth":
		args := d.RemainingArgs()
		if len(args) != 2 {
			return d.Errf("tls_client_auth takes subject|san_dns|san_uri|san_ip|san_email <value>")
		}
		dst := map[string]*string{"subject": &c.TLSClientAuthSubjectDN, "san_dns": &c.TLSClientAuthSANDNS,
			"san_uri": &c.TLSClientAuthSANURI, "san_ip": &c.TLSClientAuthSANIP, "san_email": &c.TLSClientAuthSANEmail}[args[0]]
		if dst == nil {
			return d.Errf("tls_client_auth takes subject|san_dns|san_uri|san_ip|san_email <value>, not '%s'", args[0])
		}
		*dst = args[1]
		return setMethod(clientauth.TLSClientAuth)
	case "self_signed_tls_client_auth":
		if d.NextArg() {
			return d.ArgErr()
		}
		return setMethod(clientauth.SelfSignedTLSClientAuth)
	}
	return nil
}

// parseDynamicClients reads a `dynamic_clients {...}` block.
func parseDynamicClients(d *caddyfile.Dispenser) (*DynamicClients, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	dc := new(DynamicClients)
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return nil, d.Errf("dynamic_clients option '%s' is given twice", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "registration":
			args := d.RemainingArgs()
			switch {
			case len(args) == 1 && (args[0] == RegistrationOpen || args[0] == RegistrationOff):
				dc.Registration = args[0]
			case len(args) == 2 && args[0] == RegistrationToken:
				dc.Registration, dc.InitialAccessToken = args[0], args[1]
			default:
				return nil, d.Errf("registration takes open, token <initial_access_token> or off")
			}
		case "metadata_documents":
			var on *bool
			if err = parseOnOff(d, &on); err == nil {
				dc.MetadataDocuments = *on
			}
		case "allow_private_addresses":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			dc.AllowPrivateAddresses = true
		case "scopes":
			if err = parseList(d, &dc.Scopes); err == nil {
				for _, s := range dc.Scopes {
					if _, ok := authz.ParseScope(s); !ok || strings.Contains(s, " ") {
						return nil, d.Errf("'%s' is not a valid scope", s)
					}
				}
			}
		case "grants":
			err = parseList(d, &dc.Grants)
		case "lifetime":
			var lt *caddy.Duration
			if err = parseDurationPtr(d, &lt); err == nil {
				dc.Lifetime = lt
			}
		default:
			return nil, d.Errf("unrecognized dynamic_clients option '%s'", name)
		}
		if err != nil {
			return nil, err
		}
	}
	policy := clients.RegistrationPolicy{Grants: dc.Grants}
	if err := policy.Check(dc.Registration == RegistrationToken); err != nil {
		return nil, d.Errf("dynamic_clients: %v", err)
	}
	return dc, nil
}

// parseDPoP reads a `dpop {...}` block.
func parseDPoP(d *caddyfile.Dispenser) (*DPoPConfig, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	dc := new(DPoPConfig)
	seen := map[string]bool{}
	periodLine := 0
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return nil, d.Errf("dpop option '%s' is given twice", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "algorithms":
			if err = parseList(d, &dc.Algorithms); err == nil {
				for _, alg := range dc.Algorithms {
					if !slices.Contains(dpop.SupportedAlgorithms(), alg) {
						return nil, d.Errf("dpop algorithm '%s' is not supported; use some of %s", alg, strings.Join(dpop.SupportedAlgorithms(), " "))
					}
				}
			}
		case "proof_max_age":
			err = parsePositiveDuration(d, &dc.ProofMaxAge)
		case "proof_max_skew":
			err = parsePositiveDuration(d, &dc.ProofMaxSkew)
		case "nonce":
			var on *bool
			if err = parseOnOff(d, &on); err == nil {
				dc.Nonce = *on
			}
		case "nonce_period":
			periodLine = d.Line()
			err = parsePositiveDuration(d, &dc.NoncePeriod)
		default:
			return nil, d.Errf("unrecognized dpop option '%s'", name)
		}
		if err != nil {
			return nil, err
		}
	}
	if dc.NoncePeriod != 0 && !dc.Nonce {
		return nil, fmt.Errorf("dpop: nonce_period needs nonce on, at %s:%d", d.File(), periodLine)
	}
	return dc, nil
}

// parseDPoPMode reads `dpop required|allowed`.
func parseDPoPMode(d *caddyfile.Dispenser, required *bool) error {
	var mode string
	if err := parseStringArg(d, &mode); err != nil {
		return err
	}
	switch mode {
	case DPoPRequired:
		*required = true
	case DPoPAllowed:
		*required = false
	default:
		return d.Errf("dpop must be required or allowed, not '%s'", mode)
	}
	return nil
}

// parseRateArgs reads `<events>/<period> [burst <n>]` or `off`.
func parseRateArgs(d *caddyfile.Dispenser) (*RateConfig, error) {
	args := d.RemainingArgs()
	if len(args) == 1 && args[0] == "off" {
		return &RateConfig{Off: true}, nil
	}
	if len(args) != 1 && len(args) != 3 {
		return nil, d.Errf("%s takes <events>/<period> [burst <n>] or off", d.Val())
	}
	r, err := limits.ParseRate(args[0])
	if err != nil {
		return nil, d.Errf("%v", err)
	}
	if len(args) == 3 {
		if args[1] != "burst" {
			return nil, d.Errf("expected 'burst', got '%s'", args[1])
		}
		n, err := strconv.Atoi(args[2])
		if err != nil || n < 1 || n > 1_000_000_000 {
			return nil, d.Errf("burst '%s' is not a positive integer", args[2])
		}
		r.Burst = n
	}
	if err := r.Validate(); err != nil {
		return nil, d.Errf("%v", err)
	}
	rc := &RateConfig{Events: r.Events, Per: caddy.Duration(r.Per)}
	if r.Burst != r.Events {
		rc.Burst = r.Burst
	}
	return rc, nil
}

// parseLockout reads `lockout off` or a `lockout {...}` block.
func parseLockout(d *caddyfile.Dispenser) (*LockoutConfig, error) {
	cfg := new(LockoutConfig)
	if d.NextArg() {
		if d.Val() != "off" {
			return nil, d.Errf("lockout takes 'off' or a block, not '%s'", d.Val())
		}
		if d.NextArg() {
			return nil, d.ArgErr()
		}
		if d.NextBlock(d.Nesting()) {
			return nil, d.Err("lockout off takes no block")
		}
		cfg.Off = true
		return cfg, nil
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return nil, d.Errf("lockout option '%s' is given twice", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "window":
			err = parsePositiveDuration(d, &cfg.Window)
		case "lock_for":
			err = parsePositiveDuration(d, &cfg.LockFor)
		case "slow_after":
			err = parsePositiveInt(d, &cfg.SlowAfter)
		case "lock_after":
			err = parsePositiveInt(d, &cfg.LockAfter)
		case "address_lock_after":
			err = parsePositiveInt(d, &cfg.AddressLockAfter)
		case "account_slow_after":
			err = parsePositiveInt(d, &cfg.AccountSlowAfter)
		default:
			return nil, d.Errf("unrecognized lockout option '%s'", name)
		}
		if err != nil {
			return nil, err
		}
	}
	slow, lock := cfg.SlowAfter, cfg.LockAfter
	if slow == 0 {
		slow = limits.DefaultSlowAfter
	}
	if lock == 0 {
		lock = limits.DefaultLockAfter
	}
	if slow > lock {
		return nil, d.Errf("lockout: slow_after (%d) must not exceed lock_after (%d)", slow, lock)
	}
	return cfg, nil
}

// parseServerDirective parses the oauth_server directive.
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

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. It takes
// no arguments and no block; its settings live in the oauth global option:
//
//	oauth_server
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

// parseProtectDirective parses the oauth_protect directive.
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
//		scope <scope> ...        # scopes the token must all hold
//		user_header   <name>     # default X-User-ID
//		client_header <name>     # default X-OAuth-Client-ID
//		scope_header  <name>     # default X-OAuth-Scope
//		realm <realm>            # default api
//		optional                 # let requests without a token through
//		forward_token            # keep the Authorization header
//		resource <url>           # the resource identifier; default: the issuer or the site's origin
//		audience required        # refuse tokens requested for no resource
//		dpop required|allowed    # required: DPoP-bound tokens only; default allowed
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
		case "resource":
			if err = parseStringArg(d, &p.Resource); err == nil {
				if _, err := authz.ParseProtectedResource(p.Resource); err != nil {
					return d.Errf("resource '%s': %v", p.Resource, err)
				}
			}
		case "audience":
			var mode string
			if err = parseStringArg(d, &mode); err == nil {
				switch mode {
				case "required":
					p.AudienceRequired = true
				case "optional":
				default:
					return d.Errf("audience must be required or optional, not '%s'", mode)
				}
			}
		case "dpop":
			var required bool
			if err = parseDPoPMode(d, &required); err == nil && required {
				p.DPoP = DPoPRequired
			}
		default:
			return d.Errf("unrecognized oauth_protect option '%s'", name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Argument helpers. Each reads the arguments of the current line and
// refuses extra ones.

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

// parseList appends the line's arguments to dst, skipping duplicates.
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

func parsePositiveDuration(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	var dur time.Duration
	if err := parseDurationArg(d, &dur); err != nil {
		return err
	}
	if dur == 0 {
		return d.Err("the duration must be positive")
	}
	*dst = caddy.Duration(dur)
	return nil
}

func parsePositiveInt(d *caddyfile.Dispenser, dst *int) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	n, err := strconv.Atoi(d.Val())
	if err != nil || n < 1 || n > 1_000_000 {
		return d.Errf("'%s' is not a positive integer", d.Val())
	}
	*dst = n
	if d.NextArg() {
		return d.ArgErr()
	}
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

func parseHeaderName(d *caddyfile.Dispenser, dst *string) error {
	if err := parseStringArg(d, dst); err != nil {
		return err
	}
	if err := checkIdentityHeader(*dst); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

// fileDigest returns the SHA-256 of the content of the file a config
// names (placeholders expanded as Provision expands them), or "" when it
// cannot be read where the config is adapted: Provision, which reads it
// again, reports that. Caddy reloads only a config whose JSON changed, so
// the adapter records the digest of a file the config reads to make an
// edit of that file a change of the config.
func fileDigest(path string) string {
	b, err := os.ReadFile(caddy.NewReplacer().ReplaceKnown(path, ""))
	if err != nil {
		return ""
	}
	d := sha256.Sum256(b)
	return hex.EncodeToString(d[:])
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*Server)(nil)
	_ caddyfile.Unmarshaler = (*Protect)(nil)
)
