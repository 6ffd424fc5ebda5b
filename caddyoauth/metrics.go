package caddyoauth

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// The gateway's Prometheus metrics. They are made once per process and
// registered with each config's registry (Caddy makes a new one on every
// load), so counts carry over reloads. No label ever holds a user, token
// or other caller-chosen value: grant types and error codes are mapped to
// fixed sets, and client IDs are capped (maxClientLabels).
var metrics = struct {
	tokensIssued  *prometheus.CounterVec
	tokenErrors   *prometheus.CounterVec
	validations   *prometheus.CounterVec
	logins        *prometheus.CounterVec
	rateLimited   *prometheus.CounterVec
	storeDuration *prometheus.HistogramVec
}{
	tokensIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "oauth", Name: "tokens_issued_total",
		Help: "Token responses of the token endpoint, by grant type and client.",
	}, []string{"grant", "client_id"}),
	tokenErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "oauth", Name: "token_errors_total",
		Help: "Error responses of the token endpoint, by grant type and RFC 6749 error code.",
	}, []string{"grant", "error"}),
	validations: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "oauth", Name: "token_validations_total",
		Help: "Bearer token checks of oauth_protect, by result: ok, missing, invalid, expired, insufficient_scope, store_error.",
	}, []string{"result"}),
	logins: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "oauth", Name: "logins_total",
		Help: "Sign-in attempts, by method (password_grant, form) and result (success, failure, locked).",
	}, []string{"method", "result"}),
	rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "oauth", Name: "rate_limited_total",
		Help: "Requests refused with 429 by a rate limit, by limit (token, login, introspect) and key (client, address).",
	}, []string{"limit", "key"}),
	storeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "oauth", Name: "store_operation_duration_seconds",
		Help:    "Latency of token store operations, by backend, operation and result (ok, not_found, conflict, error).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"backend", "op", "result"}),
}

// registerMetrics adds the gateway's collectors to this config's registry.
func registerMetrics(ctx caddy.Context) error {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{metrics.tokensIssued, metrics.tokenErrors,
		metrics.validations, metrics.logins, metrics.rateLimited, metrics.storeDuration} {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				return err
			}
		}
	}
	return nil
}

// maxClientLabels caps the client_id values a process puts in labels:
// dynamically registered clients could otherwise grow the series without
// bound. Clients of the config are always labelled by name; past the cap,
// other clients count as "other".
const maxClientLabels = 200

var clientLabels = struct {
	sync.Mutex
	seen map[string]bool
}{seen: map[string]bool{}}

// allowClientLabels lets the config's clients be labelled by name.
func allowClientLabels(ids ...string) {
	clientLabels.Lock()
	defer clientLabels.Unlock()
	for _, id := range ids {
		clientLabels.seen[id] = true
	}
}

func clientLabel(id string) string {
	if id == "" {
		return "none"
	}
	clientLabels.Lock()
	defer clientLabels.Unlock()
	if clientLabels.seen[id] {
		return id
	}
	if len(clientLabels.seen) < maxClientLabels {
		clientLabels.seen[id] = true
		return id
	}
	return "other"
}

// grantLabel maps a request's grant_type to a fixed set.
func grantLabel(g string) string {
	if slices.Contains(authz.KnownGrants, g) {
		return g
	}
	if g == "" {
		return "none"
	}
	return "other"
}

// errorLabels are the error codes the token endpoint answers with.
var errorLabels = []string{"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
	"unsupported_grant_type", "invalid_scope", "temporarily_unavailable", "server_error", "access_denied",
	"invalid_dpop_proof", "use_dpop_nonce"}

func errorLabel(code string) string {
	if slices.Contains(errorLabels, code) {
		return code
	}
	return "other"
}

// Results of a bearer token check, the values of token_validations_total.
const (
	validationOK                = "ok"
	validationMissing           = "missing"
	validationInvalid           = "invalid"
	validationExpired           = "expired"
	validationInsufficientScope = "insufficient_scope"
	validationStoreError        = "store_error"
)

// validationCounters holds the counter of each result, resolved once: a
// label lookup on every proxied request costs more than the increment.
var validationCounters = func() map[string]prometheus.Counter {
	m := map[string]prometheus.Counter{}
	for _, r := range []string{validationOK, validationMissing, validationInvalid,
		validationExpired, validationInsufficientScope, validationStoreError} {
		m[r] = metrics.validations.WithLabelValues(r)
	}
	return m
}()

func observeValidation(result string) { validationCounters[result].Inc() }

// instrumentedStore times every operation of the store it wraps.
type instrumentedStore struct {
	next    store.Store
	backend string
	// Lookup is on every proxied request: its two usual outcomes are
	// resolved once.
	lookupOK, lookupNotFound prometheus.Observer
}

func instrumentStore(s store.Store, backend string) store.Store {
	return &instrumentedStore{next: s, backend: backend,
		lookupOK:       metrics.storeDuration.WithLabelValues(backend, "lookup", "ok"),
		lookupNotFound: metrics.storeDuration.WithLabelValues(backend, "lookup", "not_found"),
	}
}

func (s *instrumentedStore) observe(op string, start time.Time, err error) {
	result := "ok"
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		result = "not_found"
	case errors.Is(err, store.ErrConflict):
		result = "conflict"
	default:
		result = "error"
	}
	metrics.storeDuration.WithLabelValues(s.backend, op, result).Observe(time.Since(start).Seconds())
}

// Put implements store.Store.
func (s *instrumentedStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	start := time.Now()
	err := s.next.Put(ctx, key, value, ttl)
	s.observe("put", start, err)
	return err
}

// Create implements store.Store.
func (s *instrumentedStore) Create(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	start := time.Now()
	err := s.next.Create(ctx, key, value, ttl)
	s.observe("create", start, err)
	return err
}

// Get implements store.Store.
func (s *instrumentedStore) Get(ctx context.Context, key string) ([]byte, error) {
	start := time.Now()
	v, err := s.next.Get(ctx, key)
	s.observe("get", start, err)
	return v, err
}

// Lookup implements store.Store.
func (s *instrumentedStore) Lookup(ctx context.Context, key string) ([]byte, error) {
	start := time.Now()
	v, err := s.next.Lookup(ctx, key)
	switch {
	case err == nil:
		s.lookupOK.Observe(time.Since(start).Seconds())
	case errors.Is(err, store.ErrNotFound):
		s.lookupNotFound.Observe(time.Since(start).Seconds())
	default:
		s.observe("lookup", start, err)
	}
	return v, err
}

// Take implements store.Store.
func (s *instrumentedStore) Take(ctx context.Context, key string) ([]byte, error) {
	start := time.Now()
	v, err := s.next.Take(ctx, key)
	s.observe("take", start, err)
	return v, err
}

// Swap implements store.Store.
func (s *instrumentedStore) Swap(ctx context.Context, key string, prev, next []byte, ttl time.Duration) error {
	start := time.Now()
	err := s.next.Swap(ctx, key, prev, next, ttl)
	s.observe("swap", start, err)
	return err
}

// Delete implements store.Store.
func (s *instrumentedStore) Delete(ctx context.Context, keys ...string) error {
	start := time.Now()
	err := s.next.Delete(ctx, keys...)
	s.observe("delete", start, err)
	return err
}

// Incr implements store.Store.
func (s *instrumentedStore) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	start := time.Now()
	n, err := s.next.Incr(ctx, key, ttl)
	s.observe("incr", start, err)
	return n, err
}

// AddMember implements store.Store.
func (s *instrumentedStore) AddMember(ctx context.Context, set, member string, ttl time.Duration) error {
	start := time.Now()
	err := s.next.AddMember(ctx, set, member, ttl)
	s.observe("add_member", start, err)
	return err
}

// RemoveMember implements store.Store.
func (s *instrumentedStore) RemoveMember(ctx context.Context, set, member string) error {
	start := time.Now()
	err := s.next.RemoveMember(ctx, set, member)
	s.observe("remove_member", start, err)
	return err
}

// Members implements store.Store.
func (s *instrumentedStore) Members(ctx context.Context, set string) ([]string, error) {
	start := time.Now()
	m, err := s.next.Members(ctx, set)
	s.observe("members", start, err)
	return m, err
}

// DeleteSet implements store.Store.
func (s *instrumentedStore) DeleteSet(ctx context.Context, set string) error {
	start := time.Now()
	err := s.next.DeleteSet(ctx, set)
	s.observe("delete_set", start, err)
	return err
}

// Compact implements store.Compactor, passing the call on to a backend
// that compacts.
func (s *instrumentedStore) Compact() error {
	_, err := store.Compact(s.next)
	return err
}

// WriteBatch implements store.Batcher, passing the batch on whole: the
// token endpoint's writes must reach the backend as one step, or the
// decorator would undo the batching.
func (s *instrumentedStore) WriteBatch(ctx context.Context, writes []store.Write) error {
	start := time.Now()
	err := store.WriteBatch(ctx, s.next, writes)
	s.observe("write_batch", start, err)
	return err
}

// Export implements store.Exporter, passing the listing on to the wrapped
// store; its duration is the whole listing's.
func (s *instrumentedStore) Export(ctx context.Context, fn func(store.Record) error) error {
	start := time.Now()
	err := store.Export(ctx, s.next, fn)
	s.observe("export", start, err)
	return err
}

// Close implements store.Store. The wrapped store belongs to its backend
// module, which closes it in its Cleanup (pooled across reloads), so the
// decorator leaves it open.
func (s *instrumentedStore) Close() error { return nil }

// Interface guards
var (
	_ store.Store     = (*instrumentedStore)(nil)
	_ store.Batcher   = (*instrumentedStore)(nil)
	_ store.Compactor = (*instrumentedStore)(nil)
	_ store.Exporter  = (*instrumentedStore)(nil)
)
