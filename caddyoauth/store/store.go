// Package store defines the key-value contract every token store of the
// gateway fulfils (memory, file and Redis), so the OAuth logic above it is
// written once. Keys reaching a store are already digests or opaque ids: a
// store never sees a token, code or secret in plain.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a key does not exist or has expired.
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned by Create when the key exists and by Swap when the
// value changed since it was read.
var ErrConflict = errors.New("store: conflict")

// Store is the contract of a token store. Every method is safe for
// concurrent use, and every method that both reads and writes is atomic
// against all other callers, including other gateway instances sharing the
// same backend.
//
// A ttl of 0 keeps a record until it is deleted; a positive ttl makes the
// backend drop the record by itself once it has passed.
type Store interface {
	// Put writes value under key, replacing what was there.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Create writes value under key only when the key does not exist yet,
	// and returns ErrConflict otherwise.
	Create(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Get returns the current value of key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Lookup is Get for the request-validation path: a backend may answer it
	// from a local cache, provided a change made through any instance
	// (Put, Swap, Delete, Take) is visible to Lookup on every instance within
	// one second.
	Lookup(ctx context.Context, key string) ([]byte, error)
	// Take returns the value of key and deletes it in one atomic step: of
	// several racing callers exactly one gets the value, the others get
	// ErrNotFound.
	Take(ctx context.Context, key string) ([]byte, error)
	// Swap replaces the value of key with next only while it still equals
	// prev (compare-and-swap). It returns ErrNotFound when the key is gone
	// and ErrConflict when its value changed.
	Swap(ctx context.Context, key string, prev, next []byte, ttl time.Duration) error
	// Delete removes keys; missing keys are not an error.
	Delete(ctx context.Context, keys ...string) error
	// Incr adds one to the counter under key and returns the new count, in
	// one atomic step. A missing key starts at 0 and, with a positive ttl,
	// expires ttl after that first Incr: later calls do not extend it, so
	// a counter is a fixed window. The counter is stored as decimal text,
	// which Get returns.
	Incr(ctx context.Context, key string, ttl time.Duration) (int64, error)

	// AddMember adds member to the set named set and keeps it there at
	// least ttl from now (0: until deleted). A backend may keep members until
	// the longest ttl given to their set.
	AddMember(ctx context.Context, set, member string, ttl time.Duration) error
	// RemoveMember removes member from set; a missing one is not an error.
	RemoveMember(ctx context.Context, set, member string) error
	// Members lists the members of set in no particular order; an unknown set
	// is empty.
	Members(ctx context.Context, set string) ([]string, error)
	// DeleteSet removes the set and all its members.
	DeleteSet(ctx context.Context, set string) error

	// Close releases the backend's resources.
	Close() error
}

// Backend is implemented by the guest modules of the oauth.stores namespace.
// A backend opens its store in Provision (sharing one open store between the
// old and the new config across a reload) and releases it in Cleanup.
type Backend interface {
	// Store returns the store opened by Provision.
	Store() Store
}

// CounterBackend is implemented by a backend whose store is local to one
// process and persisted record by record, such as the file store. Its
// Counters store keeps short-lived counters (rate-limit windows, failed
// sign-ins) in memory instead, so counting a request costs no disk write;
// they could not be shared with another instance anyway. A backend shared
// by several instances (Redis) does not implement it, so its counters hold
// across instances.
type CounterBackend interface {
	Counters() Store
}
