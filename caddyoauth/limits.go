package caddyoauth

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/limits"
	"github.com/caddyoauth/gateway/caddyoauth/selfservice"
)

// The rate limits, by the name used in the config, in metrics and in
// Limits.Allow.
const (
	// LimitToken counts token endpoint requests, per authenticated client
	// and per source address.
	LimitToken = "token"
	// LimitLogin counts submissions of the sign-in forms (POST to
	// /oauth/authorize, /oauth/login or /oauth/apps/login), per source
	// address.
	LimitLogin = "login"
	// LimitIntrospect counts introspection requests (/oauth/introspect),
	// per source address and per authenticated client.
	LimitIntrospect = "introspect"
	// LimitRevoke counts revocation requests (/oauth/revoke), per source
	// address and per authenticated client: each one costs store reads
	// whatever the token, and an unknown token is answered 200 (RFC 7009
	// §2.2), so nothing else slows a flood of them down.
	LimitRevoke = "revoke"
	// LimitAuthorize counts the requests that start a sign-in (GET
	// /oauth/authorize and GET /oauth/apps/login), per source address:
	// each valid authorization request stores a pending request until the
	// person signs in.
	LimitAuthorize = "authorize"
	// LimitRegister counts requests to the registration endpoint
	// (/oauth/register) and the registered clients' configuration
	// endpoints below it, per source address: each registration stores a
	// client that lives until its lifetime ends.
	LimitRegister = "register"
)

// Default rates. They stop floods, not normal use: an integration may
// refresh many users' tokens at once, and an office behind one NAT address
// signs many people in.
var defaultRates = map[string]limits.Rate{
	LimitToken:      {Events: 20, Per: time.Second, Burst: 40},
	LimitLogin:      {Events: 10, Per: time.Minute, Burst: 20},
	LimitIntrospect: {Events: 100, Per: time.Second, Burst: 200},
	LimitRevoke:     {Events: 100, Per: time.Second, Burst: 200},
	// A browser makes one authorization request per sign-in; pending
	// requests live 15 minutes, so this bounds what one address keeps in
	// the store.
	LimitAuthorize: {Events: 10, Per: time.Second, Burst: 30},
	// A client registers once per installation.
	LimitRegister: {Events: 10, Per: time.Minute, Burst: 20},
}

// RateLimitConfig sets the rate limits. Counters live in the token store,
// so gateways sharing a Redis store share their limits.
type RateLimitConfig struct {
	// Off turns every rate limit off. Default: false.
	Off bool `json:"off,omitempty"`
	// Token limits /oauth/token per authenticated client and, separately,
	// per source address. Default: 20/s burst 40.
	Token *RateConfig `json:"token,omitempty"`
	// Login limits login form submissions per source address. Default:
	// 10/m burst 20.
	Login *RateConfig `json:"login,omitempty"`
	// Introspect limits /oauth/introspect per authenticated client and,
	// separately, per source address. Default: 100/s burst 200.
	Introspect *RateConfig `json:"introspect,omitempty"`
	// Revoke limits /oauth/revoke per authenticated client and,
	// separately, per source address. Default: 100/s burst 200.
	Revoke *RateConfig `json:"revoke,omitempty"`
	// Authorize limits GET /oauth/authorize and GET /oauth/apps/login per
	// source address. Default: 10/s burst 30.
	Authorize *RateConfig `json:"authorize,omitempty"`
	// Register limits /oauth/register and the configuration endpoints
	// below it per source address. Default: 10/m burst 20.
	Register *RateConfig `json:"register,omitempty"`
}

// RateConfig is one rate limit: Events per Per on average, with bursts of
// up to Burst.
type RateConfig struct {
	// Off turns this limit off. Default: false.
	Off bool `json:"off,omitempty"`
	// Events allowed per period. Required unless off.
	Events int `json:"events,omitempty"`
	// Per is the period. Required unless off.
	Per caddy.Duration `json:"per,omitempty"`
	// Burst is how many events may come at once. Default: events.
	Burst int `json:"burst,omitempty"`
}

// LockoutConfig sets the login lockout of the password grant and the
// login form. Failures are counted per username and source address, per
// address, and per username from any address; an address is an IPv4
// address or an IPv6 /64. See limits.LockoutPolicy.
type LockoutConfig struct {
	// Off turns the lockout off. Default: false.
	Off bool `json:"off,omitempty"`
	// Window over which failures are counted, from the first. Default: 15m.
	Window caddy.Duration `json:"window,omitempty"`
	// SlowAfter failures of one username from one address make each
	// further attempt wait 1s, 2s, 4s... Default: 3.
	SlowAfter int `json:"slow_after,omitempty"`
	// LockAfter such failures lock the username at that address for
	// LockFor. Default: 10.
	LockAfter int `json:"lock_after,omitempty"`
	// LockFor is how long a lock lasts. Default: 15m.
	LockFor caddy.Duration `json:"lock_for,omitempty"`
	// AddressLockAfter failures from one address, over all usernames, lock
	// that address for LockFor. Default: 100.
	AddressLockAfter int `json:"address_lock_after,omitempty"`
	// AccountSlowAfter failures of one username within the window, from
	// any address, make every further attempt on it wait 1s, 2s, 4s... up
	// to 30s, answered 429 without checking the password: slowed, never
	// locked. Default: 20.
	AccountSlowAfter int `json:"account_slow_after,omitempty"`
}

// Limits is the gateway's abuse protection: rate limits and the login
// lockout, shared by every instance on the same store. Other handlers
// reach it through App.Limits. A login form inside authz checks passwords
// with Service.Login, which applies the lockout through the hooks; a login
// form elsewhere calls LoginLocked before it checks a password and
// LoginResult after.
type Limits struct {
	limiter *limits.Limiter
	rates   map[string]limits.Rate // limits that are on
	lockout *limits.Lockout        // nil when off
	logger  *zap.Logger

	// clientLockout counts failed checks of clients' secret_hash, with the
	// lockout's policy; nil when off.
	clientLockout *limits.Lockout
}

// Limits returns the gateway's rate limits and login lockout.
func (a *App) Limits() *Limits { return a.limits }

func (c *RateConfig) rate(name string) (limits.Rate, error) {
	r := limits.Rate{Events: c.Events, Per: time.Duration(c.Per), Burst: c.Burst}
	if err := r.Validate(); err != nil {
		return r, fmt.Errorf("oauth: rate_limit %s: %v", name, err)
	}
	return r, nil
}

// provisionLimits builds the limits from the config and hooks them and the
// metrics into the token endpoint.
func (a *App) provisionLimits() error {
	l := &Limits{limiter: limits.NewLimiter(a.counters), rates: map[string]limits.Rate{}, logger: a.logger}
	cfg := a.RateLimit
	if cfg == nil {
		cfg = new(RateLimitConfig)
	}
	if !cfg.Off {
		for name, rc := range map[string]*RateConfig{LimitToken: cfg.Token, LimitLogin: cfg.Login, LimitIntrospect: cfg.Introspect, LimitRevoke: cfg.Revoke, LimitAuthorize: cfg.Authorize, LimitRegister: cfg.Register} {
			switch {
			case rc == nil:
				l.rates[name] = defaultRates[name]
			case !rc.Off:
				r, err := rc.rate(name)
				if err != nil {
					return err
				}
				l.rates[name] = r
			}
		}
	}
	if lc := a.Lockout; lc == nil || !lc.Off {
		if lc == nil {
			lc = new(LockoutConfig)
		}
		if lc.Window < 0 || lc.LockFor < 0 || lc.SlowAfter < 0 || lc.LockAfter < 0 || lc.AddressLockAfter < 0 || lc.AccountSlowAfter < 0 {
			return fmt.Errorf("oauth: lockout settings must not be negative")
		}
		policy := limits.LockoutPolicy{
			Window: time.Duration(lc.Window), SlowAfter: lc.SlowAfter, LockAfter: lc.LockAfter,
			LockFor: time.Duration(lc.LockFor), AddressLockAfter: lc.AddressLockAfter,
			AccountSlowAfter: lc.AccountSlowAfter,
		}
		l.lockout = limits.NewLockout(a.counters, policy)
		l.clientLockout = limits.NewClientLockout(a.counters, policy)
	}
	a.limits = l

	ids := make([]string, 0, len(a.Clients))
	for _, c := range a.Clients {
		ids = append(ids, c.ID)
	}
	allowClientLabels(ids...)
	a.service.SetHooks(authz.Hooks{
		// authz's endpoint names are the names of the limits.
		AllowClient: func(ctx context.Context, endpoint, clientID string) (time.Duration, bool) {
			return l.AllowClient(ctx, endpoint, clientID)
		},
		ClientBudgetLeft: func(ctx context.Context, endpoint, clientID string) (time.Duration, bool) {
			return l.ClientBudgetLeft(ctx, endpoint, clientID)
		},
		ChargeClient: func(ctx context.Context, endpoint, clientID string) {
			l.ChargeClient(ctx, endpoint, clientID)
		},
		LoginLocked: func(r *http.Request, method, username string) time.Duration {
			return l.loginLockedAs(r, method, username)
		},
		LoginResult: func(r *http.Request, method, username string, ok bool) { l.loginResult(r, username, ok, method) },
		TokenIssued: func(grant, clientID string) {
			metrics.tokensIssued.WithLabelValues(grantLabel(grant), clientLabel(clientID)).Inc()
			a.clientUsed(clientID)
		},
		TokenRefused: func(grant, _ string, code string) {
			metrics.tokenErrors.WithLabelValues(grantLabel(grant), errorLabel(code)).Inc()
		},
		ClientLocked:     l.clientLocked,
		ClientAuthResult: l.clientAuthResult,
	})
	return nil
}

// ClientIP is the source address of a request: Caddy's client IP, which is
// the connection's remote address, or the address forwarded by a proxy
// listed in the server's trusted_proxies.
func ClientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Allow counts one request under the named limit (LimitToken, LimitLogin,
// LimitIntrospect) for key, and reports whether it may go on and, if not,
// how long the caller should wait. A limit that is off allows everything.
// When the store cannot count, the request is allowed and the error logged:
// a broken counter must not take the gateway down.
func (l *Limits) Allow(ctx context.Context, limit, key string) (retryAfter time.Duration, ok bool) {
	r, on := l.rates[limit]
	if !on {
		return 0, true
	}
	d, err := l.limiter.Allow(ctx, limit, r, key)
	if err != nil {
		if c := l.logger.Check(zapcore.ErrorLevel, "rate limit store error; request allowed"); c != nil {
			c.Write(zap.String("limit", limit), zap.Error(err))
		}
		return 0, true
	}
	return d.RetryAfter, d.Allowed
}

// AllowClient is Allow keyed by an authenticated client.
func (l *Limits) AllowClient(ctx context.Context, limit, clientID string) (time.Duration, bool) {
	wait, ok := l.Allow(ctx, limit, "client\x00"+clientID)
	if !ok {
		metrics.rateLimited.WithLabelValues(limit, "client").Inc()
		l.logger.Info("rate limited", zap.String("limit", limit), zap.String("client_id", clientID))
	}
	return wait, ok
}

// ClientBudgetLeft reports, without spending anything, whether an
// unauthenticated client (a public one, known by its client_id alone)
// still has room under limit; ChargeClient spends it once the request has
// proved itself (its grant succeeded). So a stranger sending the client_id
// spends nothing of the client's.
func (l *Limits) ClientBudgetLeft(ctx context.Context, limit, clientID string) (time.Duration, bool) {
	r, on := l.rates[limit]
	if !on {
		return 0, true
	}
	d, err := l.limiter.Peek(ctx, limit, r, "client\x00"+clientID)
	if err != nil {
		l.logger.Error("rate limit store error; request allowed", zap.String("limit", limit), zap.Error(err))
		return 0, true
	}
	if !d.Allowed {
		metrics.rateLimited.WithLabelValues(limit, "client").Inc()
		l.logger.Info("rate limited", zap.String("limit", limit), zap.String("client_id", clientID))
	}
	return d.RetryAfter, d.Allowed
}

// ChargeClient spends one request of a client's budget under limit.
func (l *Limits) ChargeClient(ctx context.Context, limit, clientID string) {
	r, on := l.rates[limit]
	if !on {
		return
	}
	if err := l.limiter.Charge(ctx, limit, r, "client\x00"+clientID); err != nil {
		l.logger.Error("rate limit store error", zap.String("limit", limit), zap.Error(err))
	}
}

// AllowAddress is Allow keyed by the request's source address: an IPv4
// address, or the /64 of an IPv6 one (limits.AddressKey).
func (l *Limits) AllowAddress(r *http.Request, limit string) (time.Duration, bool) {
	ip := ClientIP(r)
	wait, ok := l.Allow(r.Context(), limit, "addr\x00"+limits.AddressKey(ip))
	if !ok {
		metrics.rateLimited.WithLabelValues(limit, "address").Inc()
		l.logger.Info("rate limited", zap.String("limit", limit), zap.String("remote_ip", ip))
	}
	return wait, ok
}

// LoginLocked reports how long a sign-in of username from this request's
// address must wait; 0 lets it go on. A login form calls it before
// checking the password and, when it is positive, answers 429 with
// Retry-After (see WriteTooManyRequests) without checking the password.
func (l *Limits) LoginLocked(r *http.Request, username string) time.Duration {
	return l.loginLockedAs(r, authz.LoginForm, username)
}

func (l *Limits) loginLockedAs(r *http.Request, method, username string) time.Duration {
	wait := l.loginLocked(r, username)
	if wait > 0 {
		metrics.logins.WithLabelValues(loginMethodLabel(method), "locked").Inc()
	}
	return wait
}

func loginMethodLabel(m string) string {
	if m == authz.LoginPasswordGrant || m == authz.LoginForm {
		return m
	}
	return "other"
}

func (l *Limits) loginLocked(r *http.Request, username string) time.Duration {
	if l.lockout == nil {
		return 0
	}
	wait, err := l.lockout.Check(r.Context(), username, ClientIP(r))
	if err != nil {
		l.logger.Error("lockout store error; sign-in allowed", zap.Error(err))
		return 0
	}
	return wait
}

// LoginResult records the outcome of a checked password from the login
// form: it counts it in the metrics and feeds the lockout.
func (l *Limits) LoginResult(r *http.Request, username string, ok bool) {
	l.loginResult(r, username, ok, authz.LoginForm)
}

func (l *Limits) loginResult(r *http.Request, username string, ok bool, method string) {
	result := "failure"
	if ok {
		result = "success"
	}
	metrics.logins.WithLabelValues(loginMethodLabel(method), result).Inc()
	if l.lockout == nil {
		return
	}
	var err error
	if ok {
		err = l.lockout.Succeeded(r.Context(), username, ClientIP(r))
	} else {
		var wait time.Duration
		wait, err = l.lockout.Failed(r.Context(), username, ClientIP(r))
		if err == nil && wait >= l.lockout.Policy().LockFor {
			l.logger.Warn("sign-in locked after repeated failures",
				zap.String("method", method), zap.String("remote_ip", ClientIP(r)),
				zap.String("username_digest", authz.UsernameDigest(username)),
				zap.Duration("lock_for", wait))
		}
	}
	if err != nil {
		l.logger.Error("lockout store error", zap.Error(err))
	}
}

// clientLocked reports how long a check of a client's secret_hash from
// this request's address must wait; 0 lets it go on.
func (l *Limits) clientLocked(r *http.Request, clientID string) time.Duration {
	if l.clientLockout == nil {
		return 0
	}
	wait, err := l.clientLockout.Check(r.Context(), clientID, ClientIP(r))
	if err != nil {
		l.logger.Error("lockout store error; client authentication allowed", zap.Error(err))
		return 0
	}
	return wait
}

// clientAuthResult feeds the outcome of a checked secret_hash to the
// client lockout.
func (l *Limits) clientAuthResult(r *http.Request, clientID string, ok bool) {
	if l.clientLockout == nil {
		return
	}
	var err error
	if ok {
		err = l.clientLockout.Succeeded(r.Context(), clientID, ClientIP(r))
	} else {
		var wait time.Duration
		wait, err = l.clientLockout.Failed(r.Context(), clientID, ClientIP(r))
		if err == nil && wait >= l.clientLockout.Policy().LockFor {
			l.logger.Warn("client authentication locked after repeated failures",
				zap.String("client_id", clientID), zap.String("remote_ip", ClientIP(r)), zap.Duration("lock_for", wait))
		}
	}
	if err != nil {
		l.logger.Error("lockout store error", zap.Error(err))
	}
}

// WriteTooManyRequests sets Retry-After and returns the 429 error for a
// handler to return, so handle_errors can render it.
func WriteTooManyRequests(w http.ResponseWriter, retryAfter time.Duration) error {
	s := int64((retryAfter + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(max(s, 1), 10))
	return caddyhttp.Error(http.StatusTooManyRequests, fmt.Errorf("rate limited"))
}

// oauthEndpointLimits are the per-address limits of the endpoints that
// answer with an OAuth JSON error, by path.
var oauthEndpointLimits = map[string]struct{ limit, what string }{
	PathPrefix + "token":      {LimitToken, "token"},
	PathPrefix + "introspect": {LimitIntrospect, "introspection"},
	PathPrefix + "revoke":     {LimitRevoke, "revocation"},
	PathPrefix + "register":   {LimitRegister, "registration"},
}

// limitEndpoint applies the per-address limits before an endpoint runs.
// It reports done when it answered the request itself.
func (s *Server) limitEndpoint(w http.ResponseWriter, r *http.Request) (done bool, err error) {
	l := s.app.limits
	if l == nil {
		return false, nil
	}
	path := r.URL.Path
	if strings.HasPrefix(path, PathPrefix+"register/") {
		path = PathPrefix + "register" // a client's configuration endpoint
	}
	if lim, ok := oauthEndpointLimits[path]; ok {
		if wait, ok := l.AllowAddress(r, lim.limit); !ok {
			authz.WriteError(w, authz.TooManyRequests(wait, "too many "+lim.what+" requests from this address; retry later"), false)
			return true, nil
		}
		return false, nil
	}
	switch r.URL.Path {
	case PathPrefix + "authorize", PathPrefix + "login", selfservice.Path + "/login":
		limit := LimitLogin
		if r.Method != http.MethodPost {
			if r.URL.Path == PathPrefix+"login" {
				return false, nil
			}
			// Starting a sign-in: a pending request, or a sign-in form.
			limit = LimitAuthorize
		}
		if wait, ok := l.AllowAddress(r, limit); !ok {
			return true, WriteTooManyRequests(w, wait)
		}
	}
	return false, nil
}
