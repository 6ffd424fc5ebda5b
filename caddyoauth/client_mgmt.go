package caddyoauth

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/clients"
)

// The oauth block's options of client management:
//
//	oauth {
//		scopes <scope> ...                 # scopes dynamic clients may get, besides the static clients'
//		self_service                       # serve /oauth/apps to signed-in users
//		apps_allowed_grants <grant> ...    # default: authorization_code refresh_token
//	}
func init() {
	appOptions["scopes"] = func(d *caddyfile.Dispenser, a *App) error {
		if err := parseList(d, &a.Scopes); err != nil {
			return err
		}
		for _, s := range a.Scopes {
			if _, ok := authz.ParseScope(s); !ok || strings.Contains(s, " ") {
				return d.Errf("'%s' is not a valid scope", s)
			}
		}
		return nil
	}
	appOptions["self_service"] = func(d *caddyfile.Dispenser, a *App) error {
		if d.NextArg() {
			return d.ArgErr()
		}
		a.SelfService = true
		return nil
	}
	appOptions["apps_allowed_grants"] = func(d *caddyfile.Dispenser, a *App) error {
		if err := parseList(d, &a.SelfServiceGrants); err != nil {
			return err
		}
		if err := checkSelfServiceGrants(a.SelfServiceGrants); err != nil {
			return d.Errf("%v", err)
		}
		return nil
	}
}

// defaultSelfServiceGrants are the grants of self-service apps unless
// apps_allowed_grants says otherwise.
var defaultSelfServiceGrants = []string{authz.GrantAuthorizationCode, authz.GrantRefreshToken}

func checkSelfServiceGrants(grants []string) error {
	for _, g := range grants {
		if !slices.Contains(authz.KnownGrants, g) {
			return fmt.Errorf("apps_allowed_grants: unknown grant '%s' (known: %s)", g, strings.Join(authz.KnownGrants, ", "))
		}
	}
	return nil
}

// checkClientManagement checks and defaults the settings of dynamic
// clients.
func (a *App) checkClientManagement() error {
	for _, s := range a.Scopes {
		if _, ok := authz.ParseScope(s); !ok || strings.Contains(s, " ") {
			return fmt.Errorf("oauth: scopes: %q is not a valid scope", s)
		}
	}
	if len(a.SelfServiceGrants) == 0 {
		a.SelfServiceGrants = defaultSelfServiceGrants
	}
	if err := checkSelfServiceGrants(a.SelfServiceGrants); err != nil {
		return fmt.Errorf("oauth: %v", err)
	}
	return nil
}

// configuredScopes are the scopes a dynamic client may be given: those of
// the static clients and the oauth block's scopes list.
func (a *App) configuredScopes() []string {
	lists := [][]string{a.Scopes}
	for _, c := range a.Clients {
		lists = append(lists, c.Scopes)
	}
	return sortedUnion(lists...)
}

// Registry returns the client registry: static clients, then dynamic ones.
func (a *App) Registry() *clients.Registry { return a.registry }

// running is the oauth app of the running config, for the admin API,
// which Caddy provisions apart from the apps. Caddy starts a new config
// before it stops the old one, so Stop clears it only when it is its own.
var running struct {
	sync.Mutex
	app *App
}

func setRunningApp(a *App) {
	running.Lock()
	defer running.Unlock()
	running.app = a
}

func clearRunningApp(a *App) {
	running.Lock()
	defer running.Unlock()
	if running.app == a {
		running.app = nil
	}
}

func runningApp() *App {
	running.Lock()
	defer running.Unlock()
	return running.app
}
