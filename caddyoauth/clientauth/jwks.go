package clientauth

import (
	"context"
	"crypto/x509"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/safefetch"
)

// Bounds of the jwks_uri cache and of its fetches.
const (
	// MinKeysTTL and MaxKeysTTL bound how long a fetched set is kept,
	// whatever its Cache-Control says (no-store and no-cache count as
	// MinKeysTTL); DefaultKeysTTL is for a set served without max-age.
	// MaxKeysTTL bounds how long a key the client withdrew still works.
	MinKeysTTL     = time.Minute
	MaxKeysTTL     = time.Hour
	DefaultKeysTTL = 5 * time.Minute
	// RefreshInterval: a set is fetched again before it expires when a
	// signature or certificate matches none of its keys (a client that
	// rotated its keys), at most once per RefreshInterval.
	RefreshInterval = 30 * time.Second
	// FailureTTL: a failed fetch is not tried again for this long, so
	// requests naming a client whose jwks_uri is down do not each fetch.
	FailureTTL = 5 * time.Second
	// MaxKeysBytes caps a fetched set.
	MaxKeysBytes = 64 << 10
	// MaxCachedSets bounds the cache; past it the set expiring first goes.
	MaxCachedSets = 1000
	// MaxConcurrentFetches bounds the fetches under way; a lookup that
	// finds no slot within FetchTimeout fails.
	MaxConcurrentFetches = 16
	// FetchTimeout caps one fetch, from connecting to the last byte.
	FetchTimeout = 5 * time.Second
)

// keyCache fetches and keeps the sets of jwks_uris. A set fetched with
// private addresses allowed is kept apart from one fetched without, so a
// client whose URL the operator did not choose never gets keys that only
// the operator's trust could reach.
type keyCache struct {
	fetch   [2]*safefetch.Fetcher // [public only, private allowed]
	slots   chan struct{}
	now     func() time.Time
	log     *zap.Logger
	mu      sync.Mutex
	entries map[cacheKey]*cacheEntry
	calls   map[cacheKey]*fetchCall
}

type cacheKey struct {
	url     string
	private bool
}

type cacheEntry struct {
	keys      *KeySet // nil after a failed fetch
	err       *Error
	expires   time.Time
	refreshed time.Time // last fetch made for an unmatched key
}

// fetchCall is one fetch that concurrent lookups of a URL share.
type fetchCall struct {
	done chan struct{}
	keys *KeySet
	err  *Error
}

func newKeyCache(roots *x509.CertPool, now func() time.Time, log *zap.Logger) *keyCache {
	c := &keyCache{slots: make(chan struct{}, MaxConcurrentFetches), now: now, log: log,
		entries: map[cacheKey]*cacheEntry{}, calls: map[cacheKey]*fetchCall{}}
	for i, private := range []bool{false, true} {
		c.fetch[i] = safefetch.New(safefetch.Options{AllowPrivate: private, MaxBytes: MaxKeysBytes,
			Timeout: FetchTimeout, RootCAs: roots, Accept: "application/jwk-set+json, application/json"})
	}
	return c
}

// get returns the set at url: the cached one while it lasts, else a
// fresh fetch. With refresh, a set fetched earlier is fetched again when
// the last such refresh is at least RefreshInterval old; fresh reports
// whether the set returned was fetched for this call.
func (c *keyCache) get(ctx context.Context, k cacheKey, refresh bool) (ks *KeySet, fresh bool, err *Error) {
	now := c.now()
	c.mu.Lock()
	e := c.entries[k]
	switch {
	case e == nil || !now.Before(e.expires):
	case refresh && e.keys != nil && now.Sub(e.refreshed) >= RefreshInterval:
		e.refreshed = now // claimed by this call, so others do not fetch too
	default:
		c.mu.Unlock()
		return e.keys, false, e.err
	}
	call, shared := c.calls[k]
	if !shared {
		call = &fetchCall{done: make(chan struct{})}
		c.calls[k] = call
	}
	c.mu.Unlock()
	if !shared {
		// The fetch outlives the request that started it, bounded by
		// FetchTimeout, so the others waiting on it get its answer.
		go c.run(context.WithoutCancel(ctx), k, call, refresh)
	}
	select {
	case <-call.done:
		return call.keys, true, call.err
	case <-ctx.Done():
		return nil, false, refuse("the client's jwks_uri did not answer in time")
	}
}

func (c *keyCache) run(ctx context.Context, k cacheKey, call *fetchCall, refresh bool) {
	ks, ttl, err := c.load(ctx, k)
	call.keys, call.err = ks, err
	now := c.now()
	e := &cacheEntry{keys: ks, err: err, expires: now.Add(ttl)}
	if err != nil {
		e.expires = now.Add(FailureTTL)
	}
	if refresh {
		e.refreshed = now
	}
	c.mu.Lock()
	delete(c.calls, k)
	c.store(k, e, now)
	c.mu.Unlock()
	close(call.done)
}

func (c *keyCache) load(ctx context.Context, k cacheKey) (*KeySet, time.Duration, *Error) {
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return nil, 0, refuse("too many client key sets are being fetched; retry later")
	}
	f := c.fetch[0]
	if k.private {
		f = c.fetch[1]
	}
	header, body, err := f.Get(ctx, k.url)
	if err != nil {
		c.log.Info("client jwks_uri not fetched", zap.String("jwks_uri", k.url), zap.Error(err))
		return nil, 0, refuse("the client's jwks_uri could not be fetched: %s", safefetch.Reason(err))
	}
	ks, err := ParseKeySet(body)
	if err != nil {
		c.log.Info("client jwks_uri refused", zap.String("jwks_uri", k.url), zap.Error(err))
		return nil, 0, refuse("the client's jwks_uri holds no acceptable key set: %v", err)
	}
	return ks, keysTTL(header, c.now()), nil
}

// store adds an entry, making room first when the cache is full. c.mu is
// held.
func (c *keyCache) store(k cacheKey, e *cacheEntry, now time.Time) {
	if old, ok := c.entries[k]; ok && e.refreshed.IsZero() {
		e.refreshed = old.refreshed
	}
	if _, ok := c.entries[k]; !ok && len(c.entries) >= MaxCachedSets {
		var first cacheKey
		found := false
		for key, v := range c.entries {
			if !now.Before(v.expires) {
				delete(c.entries, key)
			} else if !found || v.expires.Before(c.entries[first].expires) {
				first, found = key, true
			}
		}
		if len(c.entries) >= MaxCachedSets {
			delete(c.entries, first)
		}
	}
	c.entries[k] = e
}

// keysTTL is how long a set served with header is kept: what its
// Cache-Control or Expires says, bounded by MinKeysTTL and MaxKeysTTL.
func keysTTL(header http.Header, now time.Time) time.Duration {
	return safefetch.Lifetime(header, now, safefetch.Bounds{Min: MinKeysTTL, Max: MaxKeysTTL, Default: DefaultKeysTTL})
}
