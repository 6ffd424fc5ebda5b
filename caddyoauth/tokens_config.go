package caddyoauth

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
)

// DefaultSigningKeyRotation is how often a generated JWT signing key is
// replaced.
const DefaultSigningKeyRotation = 720 * time.Hour

func init() {
	appOptions["token_format"] = func(d *caddyfile.Dispenser, a *App) error {
		if err := parseStringArg(d, &a.TokenFormat); err != nil {
			return err
		}
		if a.TokenFormat != authz.FormatOpaque && a.TokenFormat != authz.FormatJWT {
			return d.Errf("token_format must be opaque or jwt, not '%s'", a.TokenFormat)
		}
		return nil
	}
	appOptions["signing_key"] = func(d *caddyfile.Dispenser, a *App) error { return parseStringArg(d, &a.SigningKey) }
	appOptions["signing_key_rotation"] = func(d *caddyfile.Dispenser, a *App) error {
		return parseDurationPtr(d, &a.SigningKeyRotation)
	}
	appOptions["audience"] = func(d *caddyfile.Dispenser, a *App) error {
		if err := parseStringArg(d, &a.Audience); err != nil {
			return err
		}
		if strings.ContainsAny(a.Audience, " \t\"\\") {
			return d.Errf("audience '%s' may not contain spaces, quotes or backslashes", a.Audience)
		}
		return nil
	}
	clientOptions["introspect"] = func(d *caddyfile.Dispenser, c *ClientConfig) error {
		if d.NextArg() {
			return d.ArgErr()
		}
		c.Introspect = true
		return nil
	}
	appChecks = append(appChecks, func(d *caddyfile.Dispenser, a *App, lines map[string]int) error {
		option, err := a.tokenOptionsProblem()
		if err == nil {
			return nil
		}
		if line, ok := lines[option]; ok {
			return fmt.Errorf("%v, at %s:%d", err, d.File(), line)
		}
		return d.WrapErr(err)
	})
}

// checkTokenOptions refuses JWT settings that cannot take effect and an
// issuer RFC 8414 §2 does not allow.
func (a *App) checkTokenOptions() error {
	_, err := a.tokenOptionsProblem()
	return err
}

// tokenOptionsProblem is checkTokenOptions naming the option at fault.
func (a *App) tokenOptionsProblem() (string, error) {
	if a.Issuer != "" {
		u, err := url.Parse(a.Issuer)
		loopback := err == nil && u.Scheme == "http" && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1" || u.Hostname() == "::1")
		if err != nil || (u.Scheme != "https" && !loopback) || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.Contains(a.Issuer, "#") {
			return "issuer", fmt.Errorf("issuer %q must be an https URL with no path, query or fragment (RFC 8414 §2; the endpoints are served at the root)", a.Issuer)
		}
	}
	switch a.TokenFormat {
	case "", authz.FormatOpaque:
		for option, set := range map[string]bool{"signing_key": a.SigningKey != "", "signing_key_rotation": a.SigningKeyRotation != nil, "audience": a.Audience != ""} {
			if set {
				return option, fmt.Errorf("%s needs token_format jwt", option)
			}
		}
	case authz.FormatJWT:
	default:
		return "token_format", fmt.Errorf("token_format must be opaque or jwt, not %q", a.TokenFormat)
	}
	if a.SigningKey != "" && a.SigningKeyRotation != nil {
		return "signing_key_rotation", fmt.Errorf("signing_key_rotation applies to generated keys only; rotate a signing_key file by replacing it")
	}
	if a.SigningKeyRotation != nil && *a.SigningKeyRotation < 0 {
		return "signing_key_rotation", fmt.Errorf("signing_key_rotation must not be negative")
	}
	return "", nil
}

// tokenConfig fills in the token format settings, reading the signing key
// file.
func (a *App) tokenConfig(cfg *authz.Config) error {
	if err := a.checkTokenOptions(); err != nil {
		return fmt.Errorf("oauth: %v", err)
	}
	cfg.Issuer = a.issuer
	cfg.Audience = a.Audience
	cfg.TokenFormat = a.TokenFormat
	if cfg.TokenFormat == "" {
		cfg.TokenFormat = authz.FormatOpaque
	}
	cfg.SigningKeyRotation = DefaultSigningKeyRotation
	if a.SigningKeyRotation != nil {
		cfg.SigningKeyRotation = time.Duration(*a.SigningKeyRotation)
	}
	if a.SigningKey != "" {
		path := caddy.NewReplacer().ReplaceKnown(a.SigningKey, "")
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("oauth: reading signing_key: %v", err)
		}
		key, err := authz.ParseSigningKey(data)
		if err != nil {
			return fmt.Errorf("oauth: signing_key %s: %v", path, err)
		}
		cfg.SigningKey = key
	}
	return nil
}
