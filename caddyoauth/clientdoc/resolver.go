package clientdoc

import (
	"context"
	"crypto/x509"
	"net/http"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/safefetch"
)

// Bounds of the cache and of the fetches.
const (
	// MinCacheTTL and MaxCacheTTL bound how long a document is kept,
	// whatever its Cache-Control or Expires says; no-store, no-cache and
	// max-age=0 keep it for MinCacheTTL, so a busy client costs at most
	// one fetch a minute.
	MinCacheTTL = time.Minute
	MaxCacheTTL = 24 * time.Hour
	// DefaultCacheTTL is for a document served with no caching header.
	DefaultCacheTTL = 10 * time.Minute
	// MaxCacheEntries bounds the cache; past it the entry that expires
	// first goes.
	MaxCacheEntries = 1000
	// MaxConcurrentFetches bounds the fetches under way; a lookup that
	// cannot start one within FetchTimeout fails.
	MaxConcurrentFetches = 16
	// FetchTimeout caps one fetch, from connecting to the last byte.
	FetchTimeout = 5 * time.Second
)

// Options configure a Resolver.
type Options struct {
	// AllowPrivateAddresses fetches from loopback, private and link-local
	// addresses too: for tests and closed networks only.
	AllowPrivateAddresses bool
	// Scopes are the scopes such clients may be given; none when empty.
	Scopes []string
	// RootCAs verify the servers' certificates. Default: the system's.
	RootCAs *x509.CertPool
	// Logger logs failed fetches. Default: none.
	Logger *zap.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// Resolver turns client_ids that are URLs into clients, fetching and
// caching their documents. It is safe for concurrent use.
type Resolver struct {
	o     Options
	fetch *safefetch.Fetcher
	slots chan struct{}

	mu       sync.Mutex
	cache    map[string]entry
	inflight map[string]*call
}

type entry struct {
	client  *authz.Client
	expires time.Time
}

// call is one fetch that concurrent lookups of the same URL share.
type call struct {
	done   chan struct{}
	client *authz.Client
	ttl    time.Duration
	err    error
}

// New returns a Resolver.
func New(o Options) *Resolver {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Scopes = slices.Clone(o.Scopes)
	return &Resolver{
		o: o,
		fetch: safefetch.New(safefetch.Options{
			AllowPrivate: o.AllowPrivateAddresses,
			MaxBytes:     MaxDocumentBytes,
			Timeout:      FetchTimeout,
			RootCAs:      o.RootCAs,
		}),
		slots:    make(chan struct{}, MaxConcurrentFetches),
		cache:    map[string]entry{},
		inflight: map[string]*call{},
	}
}

// Client resolves a client_id that is a client identifier URL: from the
// cache, or by fetching its document. Every failure is an
// *authz.ClientLookupError, so an unknown client to the authorization
// server. The client returned is shared: do not change it.
func (r *Resolver) Client(ctx context.Context, id string) (*authz.Client, error) {
	if err := CheckClientID(id); err != nil {
		return nil, &authz.ClientLookupError{Reason: err.Error()}
	}
	now := r.o.Now()
	r.mu.Lock()
	if e, ok := r.cache[id]; ok && now.Before(e.expires) {
		r.mu.Unlock()
		return e.client, nil
	}
	c, shared := r.inflight[id]
	if !shared {
		c = &call{done: make(chan struct{})}
		r.inflight[id] = c
	}
	r.mu.Unlock()
	if !shared {
		// The fetch outlives the request that started it, bounded by
		// FetchTimeout, so the others waiting on it get its answer.
		go r.run(context.WithoutCancel(ctx), id, c)
	}
	select {
	case <-c.done:
		return c.client, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (r *Resolver) run(ctx context.Context, id string, c *call) {
	c.client, c.ttl, c.err = r.load(ctx, id)
	r.mu.Lock()
	delete(r.inflight, id)
	if c.err == nil { // errors and invalid documents are never cached
		r.store(id, entry{client: c.client, expires: r.o.Now().Add(c.ttl)})
	}
	r.mu.Unlock()
	close(c.done)
}

func (r *Resolver) load(ctx context.Context, id string) (*authz.Client, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	select {
	case r.slots <- struct{}{}:
		defer func() { <-r.slots }()
	case <-ctx.Done():
		return nil, 0, &authz.ClientLookupError{Reason: "too many client documents are being fetched; try again"}
	}
	header, body, err := r.fetch.Get(ctx, id)
	if err != nil {
		r.o.Logger.Info("client ID metadata document not fetched", zap.String("client_id", id), zap.Error(err))
		return nil, 0, &authz.ClientLookupError{Reason: "its client ID metadata document could not be fetched: " + safefetch.Reason(err)}
	}
	d, err := Parse(id, header, body)
	if err != nil {
		r.o.Logger.Info("client ID metadata document refused", zap.String("client_id", id), zap.Error(err))
		return nil, 0, &authz.ClientLookupError{Reason: "its client ID metadata document was refused: " + err.Error()}
	}
	return d.Client(r.o.Scopes), Lifetime(header, r.o.Now()), nil
}

// store adds an entry, making room first when the cache is full. r.mu is
// held.
func (r *Resolver) store(id string, e entry) {
	if _, ok := r.cache[id]; !ok && len(r.cache) >= MaxCacheEntries {
		now := r.o.Now()
		var first string
		for k, v := range r.cache {
			if !now.Before(v.expires) {
				delete(r.cache, k)
			} else if first == "" || v.expires.Before(r.cache[first].expires) {
				first = k
			}
		}
		if len(r.cache) >= MaxCacheEntries {
			delete(r.cache, first)
		}
	}
	r.cache[id] = e
}

// Lifetime is how long a document served with header may be kept, from
// its Cache-Control or Expires, bounded by MinCacheTTL and MaxCacheTTL.
func Lifetime(header http.Header, now time.Time) time.Duration {
	return safefetch.Lifetime(header, now, safefetch.Bounds{Min: MinCacheTTL, Max: MaxCacheTTL, Default: DefaultCacheTTL})
}
