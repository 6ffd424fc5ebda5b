package caddyoauth

import (
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddyoauth/gateway/caddyoauth/limits"
)

func init() {
	appOptions["rate_limit"] = parseRateLimit
	appOptions["lockout"] = parseLockout
}

// parseRateLimit parses the rate_limit option of the oauth block:
//
//	rate_limit off
//	rate_limit {
//		token      <events>/<period> [burst <n>] | off   # default 20/s burst 40
//		login      <events>/<period> [burst <n>] | off   # default 10/m burst 20
//		introspect <events>/<period> [burst <n>] | off   # default 100/s burst 200
//		revoke     <events>/<period> [burst <n>] | off   # default 100/s burst 200
//	}
//
// A period is s, m, h or a duration such as 10s. A limit left out keeps
// its default.
func parseRateLimit(d *caddyfile.Dispenser, a *App) error {
	cfg := new(RateLimitConfig)
	if d.NextArg() {
		if d.Val() != "off" {
			return d.Errf("rate_limit takes 'off' or a block, not '%s'", d.Val())
		}
		if d.NextArg() {
			return d.ArgErr()
		}
		if d.NextBlock(d.Nesting()) {
			return d.Err("rate_limit off takes no block")
		}
		cfg.Off = true
		a.RateLimit = cfg
		return nil
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
		default:
			return d.Errf("unrecognized rate_limit option '%s' (want token, login, introspect or revoke)", name)
		}
		if seen[name] {
			return d.Errf("rate_limit %s is given twice", name)
		}
		seen[name] = true
		rc, err := parseRateArgs(d)
		if err != nil {
			return err
		}
		*dst = rc
	}
	a.RateLimit = cfg
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

// parseLockout parses the lockout option of the oauth block:
//
//	lockout off
//	lockout {
//		window     <duration>     # failures counted over; default 15m
//		slow_after <n>            # then waits of 1s, 2s, 4s...; default 3
//		lock_after <n>            # default 10
//		lock_for   <duration>     # default 15m
//		address_lock_after <n>    # failures from one address; default 100
//	}
func parseLockout(d *caddyfile.Dispenser, a *App) error {
	cfg := new(LockoutConfig)
	if d.NextArg() {
		if d.Val() != "off" {
			return d.Errf("lockout takes 'off' or a block, not '%s'", d.Val())
		}
		if d.NextArg() {
			return d.ArgErr()
		}
		if d.NextBlock(d.Nesting()) {
			return d.Err("lockout off takes no block")
		}
		cfg.Off = true
		a.Lockout = cfg
		return nil
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return d.Errf("lockout option '%s' is given twice", name)
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
		default:
			return d.Errf("unrecognized lockout option '%s'", name)
		}
		if err != nil {
			return err
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
		return d.Errf("lockout: slow_after (%d) must not exceed lock_after (%d)", slow, lock)
	}
	a.Lockout = cfg
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
