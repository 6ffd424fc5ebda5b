package caddyoauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/store"
	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
	"github.com/caddyoauth/gateway/caddyoauth/store/redisstore"
)

// The token store modules of the oauth.stores namespace: thin wrappers that
// expand placeholders and share one open store per resource across config
// reloads, over the Caddy-free backends of store/filestore and
// store/redisstore.

func init() {
	caddy.RegisterModule(FileStore{})
	caddy.RegisterModule(MemoryStore{})
	caddy.RegisterModule(RedisStore{})
}

// storePool shares one open store per resource (a file, the memory store,
// a Redis deployment) between the configs that use it: Caddy starts a new
// config before it stops the old one, buntdb must not have one file open
// twice, and a reload should keep Redis connections (and their warm cache)
// rather than redial.
var storePool = caddy.NewUsagePool()

type pooledStore struct{ store.Store }

func (p pooledStore) Destruct() error { return p.Close() }

// openPooled returns the store pooled under key, opening it when no config
// holds it yet; loaded reports whether another config did.
func openPooled(key string, open func() (store.Store, error)) (s store.Store, loaded bool, err error) {
	v, loaded, err := storePool.LoadOrNew(key, func() (caddy.Destructor, error) {
		s, err := open()
		if err != nil {
			return nil, err
		}
		return pooledStore{s}, nil
	})
	if err != nil {
		return nil, false, err
	}
	return v.(pooledStore).Store, loaded, nil
}

func openFilePooled(key, path string) (store.Store, error) {
	s, _, err := openPooled(key, func() (store.Store, error) { return filestore.Open(path) })
	return s, err
}

// FileStore is the embedded, persistent token store: a buntdb append-only
// file that needs no other service. A sweeper deletes expired records from
// it while it runs (100,000 keys a second), and the file is compacted as it
// grows. One process at a time opens a file (a lock on <path>.lock holds
// the owner's PID), and a file damaged in the middle stops the start, to be
// repaired with `caddy oauth store repair <path>`.
type FileStore struct {
	// Path of the database file. Default: oauth/oauth.db under Caddy's
	// data directory.
	Path string `json:"path,omitempty"`

	db       store.Store
	poolKey  string
	counters store.Store
	logger   *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (FileStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "oauth.stores.file",
		New: func() caddy.Module { return new(FileStore) },
	}
}

// Provision opens the database file, creating its folder when missing.
func (f *FileStore) Provision(ctx caddy.Context) error {
	f.logger = ctx.Logger()
	path := f.Path
	if path == "" {
		path = filepath.Join(caddy.AppDataDir(), "oauth", "oauth.db")
	}
	path = caddy.NewReplacer().ReplaceKnown(path, "")
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("oauth file store %q: %v", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return fmt.Errorf("oauth file store: %v", err)
	}
	f.poolKey = "file:" + abs
	// The pool shares the open store, and with it the file's lock, with
	// the config this one replaces; a second Open of the file in this
	// process would be refused like one in another process.
	db, loaded, err := openPooled(f.poolKey, func() (store.Store, error) {
		f.warnIfShared(abs)
		return filestore.Open(abs)
	})
	if err != nil {
		f.poolKey = ""
		return fmt.Errorf("oauth file store %q: %w", abs, err)
	}
	f.db = db
	if fdb, ok := db.(*filestore.DB); ok && !loaded && fdb.CutTail() != nil {
		ctx.Logger().Warn("file store: cut off a record that an interrupted write left incomplete",
			zap.String("path", abs), zap.Int64("offset", fdb.CutTail().Offset), zap.Int64("bytes", fdb.CutTail().Length))
	}
	counters, err := openFilePooled(countersPoolKey, ":memory:")
	if err != nil {
		return err
	}
	f.counters = counters
	return nil
}

// warnIfShared warns, when the gateway opens the file, that an existing
// file can be read by other users than its owner: it holds sessions,
// consents and possibly the JWT signing keys. The store creates a new file
// with mode 0600.
func (f *FileStore) warnIfShared(path string) {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return
	}
	f.logger.Warn("the token store file can be read or written by other users than its owner; make it private with chmod 600",
		zap.String("path", path), zap.String("mode", fmt.Sprintf("%#o", fi.Mode().Perm())))
}

// countersPoolKey names the process's one in-memory store of counters.
const countersPoolKey = "counters"

// Store implements store.Backend.
func (f *FileStore) Store() store.Store { return f.db }

// Counters implements store.CounterBackend: rate-limit and sign-in
// counters stay in memory, so counting a request appends nothing to the
// file.
func (f *FileStore) Counters() store.Store { return f.counters }

// Cleanup releases this config's use of the database.
func (f *FileStore) Cleanup() error {
	var err error
	if f.counters != nil {
		_, err = storePool.Delete(countersPoolKey)
	}
	if f.poolKey == "" {
		return err
	}
	_, err2 := storePool.Delete(f.poolKey)
	return errors.Join(err, err2)
}

// UnmarshalCaddyfile sets up the store from Caddyfile tokens:
//
//	store file [<path>]
func (f *FileStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "file"
	if d.NextArg() {
		f.Path = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(d.Nesting()) {
		return d.Errf("store file takes no block")
	}
	return nil
}

// MemoryStore keeps every record in the process's memory: nothing survives
// a restart, but config reloads keep it. For tests and single short-lived
// instances.
type MemoryStore struct {
	db store.Store
}

// CaddyModule returns the Caddy module information.
func (MemoryStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "oauth.stores.memory",
		New: func() caddy.Module { return new(MemoryStore) },
	}
}

const memoryPoolKey = "memory"

// Provision opens the process's one memory store.
func (m *MemoryStore) Provision(caddy.Context) error {
	db, err := openFilePooled(memoryPoolKey, ":memory:")
	if err != nil {
		return err
	}
	m.db = db
	return nil
}

// Store implements store.Backend.
func (m *MemoryStore) Store() store.Store { return m.db }

// Cleanup releases this config's use of the memory store.
func (m *MemoryStore) Cleanup() error {
	if m.db == nil {
		return nil
	}
	_, err := storePool.Delete(memoryPoolKey)
	return err
}

// UnmarshalCaddyfile sets up the store from Caddyfile tokens:
//
//	store memory
func (m *MemoryStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "memory"
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(d.Nesting()) {
		return d.Errf("store memory takes no block")
	}
	return nil
}

// RedisStore is the token store on Redis, for gateways whose instances
// share their tokens: a single server, a master found through Sentinel, or
// a Redis Cluster. Values are validated from a client-side cache that Redis
// keeps current (RESP3 client tracking), so checking an already-seen token
// costs no round trip. Records expire through Redis' own PX expiry.
type RedisStore struct {
	// URL of the server: redis://[user:password@]host[:port][/db], or
	// rediss:// for TLS; the port defaults to 6379 and the database to 0
	// (see rueidis.ParseURL for the query options). Placeholders such as
	// {env.REDIS_PASSWORD} are expanded when the store is provisioned, so
	// secrets stay out of the JSON config; the expanded value must still
	// be a valid URL (escape '@', '/' and ':' in passwords). Required
	// unless Cluster is set. With Sentinel its host is a Sentinel (give
	// the port, usually 26379), with Cluster one more seed node; its user,
	// password and database apply to the master or the nodes.
	URL string `json:"url,omitempty"`

	// KeyPrefix is put before every key and set name, so that several
	// gateways (or other applications) can share one database. Default:
	// "oauth:".
	KeyPrefix string `json:"key_prefix,omitempty"`

	// TLS connects with TLS even when the URL says redis://. Default:
	// false (TLS only with rediss://).
	TLS bool `json:"tls,omitempty"`

	// Sentinel finds the master through Redis Sentinel. Default: none.
	Sentinel *redisstore.Sentinel `json:"sentinel,omitempty"`

	// Cluster lists host:port seed addresses of a Redis Cluster. Default:
	// none (a single server, or a cluster found through the URL alone).
	Cluster []string `json:"cluster,omitempty"`

	// CacheTTL is how long a value looked up for request validation may
	// stay in the local cache. Redis evicts it sooner as soon as anyone
	// changes it. Default: 30s.
	CacheTTL caddy.Duration `json:"cache_ttl,omitempty"`

	// ReplicasAck is how many replicas must have each write that issues,
	// changes or revokes a grant (tokens, codes, refresh rotation,
	// revocation) before the gateway answers: the store sends WAIT after
	// the write, and when fewer replicas acknowledge it within
	// ReplicasAckTimeout, the write fails and the client gets 503
	// temporarily_unavailable instead of a token that a failover could
	// lose. Rate-limit and sign-in counters never wait. Default: 0, no
	// wait (Redis replicates asynchronously).
	ReplicasAck int `json:"replicas_ack,omitempty"`

	// ReplicasAckTimeout bounds how long a write waits for ReplicasAck
	// replicas; only with ReplicasAck. Default: 1s.
	ReplicasAckTimeout caddy.Duration `json:"replicas_ack_timeout,omitempty"`

	store   store.Store
	poolKey string
	logger  *zap.Logger
}

// redisPoolSalt keys the pool-key digest, so the digest of a URL holding a
// password cannot be used to guess the password offline. Pool keys only
// need to be stable within one process.
var redisPoolSalt = func() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand documents a crash instead)
	return b
}()

// CaddyModule returns the Caddy module information.
func (RedisStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "oauth.stores.redis",
		New: func() caddy.Module { return new(RedisStore) },
	}
}

// options are the store's settings as written, placeholders unexpanded.
func (r *RedisStore) options() redisstore.Options {
	return redisstore.Options{URL: r.URL, TLS: r.TLS, Sentinel: r.Sentinel, Cluster: r.Cluster,
		KeyPrefix: r.KeyPrefix, CacheTTL: time.Duration(r.CacheTTL),
		ReplicasAck: r.ReplicasAck, ReplicasAckTimeout: time.Duration(r.ReplicasAckTimeout)}
}

// Provision expands placeholders and opens the store, or shares the one
// an earlier config opened on the same resource. It fails when Redis does
// not answer, so a broken store shows at startup, not at the first login.
func (r *RedisStore) Provision(ctx caddy.Context) error {
	r.logger = ctx.Logger()
	if err := r.options().Check(); err != nil {
		return err
	}
	prefix := r.KeyPrefix
	if prefix == "" {
		prefix = redisstore.DefaultKeyPrefix
	}
	cacheTTL := time.Duration(r.CacheTTL)
	if cacheTTL == 0 {
		cacheTTL = redisstore.DefaultCacheTTL
	}

	repl := caddy.NewReplacer()
	rawURL := repl.ReplaceKnown(r.URL, "")
	cluster := replaceAll(repl, r.Cluster)
	var sentinel redisstore.Sentinel
	expanded := redisstore.Options{URL: rawURL, TLS: r.TLS, Cluster: cluster}
	if r.Sentinel != nil {
		sentinel = redisstore.Sentinel{Master: repl.ReplaceKnown(r.Sentinel.Master, ""), Addrs: replaceAll(repl, r.Sentinel.Addrs)}
		expanded.Sentinel = &sentinel
	}
	opt, err := expanded.ClientOption()
	if err != nil {
		return err
	}

	// The digest covers everything that makes the resource, secrets
	// included (a new password must give a new connection), yet reveals
	// none of it.
	mac := hmac.New(sha256.New, redisPoolSalt)
	_ = json.NewEncoder(mac).Encode([]any{rawURL, r.TLS, sentinel, cluster, prefix, cacheTTL, r.ReplicasAck, r.ReplicasAckTimeout})
	key := "redis:" + hex.EncodeToString(mac.Sum(nil))

	s, loaded, err := openPooled(key, func() (store.Store, error) {
		s, err := redisstore.Open(opt, prefix, cacheTTL)
		if err != nil {
			return nil, err
		}
		s.SetReplicasAck(r.ReplicasAck, time.Duration(r.ReplicasAckTimeout))
		return s, nil
	})
	if err != nil {
		return fmt.Errorf("oauth redis store %s: %s", redisstore.Describe(opt), redisstore.Scrub(err.Error(), opt.Password))
	}
	r.poolKey, r.store = key, s
	if !loaded {
		r.logger.Info("redis store connected",
			zap.Strings("addresses", opt.InitAddress),
			zap.String("key_prefix", prefix),
			zap.Int("replicas_ack", r.ReplicasAck))
	}
	return nil
}

func replaceAll(repl *caddy.Replacer, in []string) []string {
	var out []string
	for _, s := range in {
		out = append(out, repl.ReplaceKnown(s, ""))
	}
	return out
}

// Store implements store.Backend. The store belongs to the module (and
// possibly to other configs sharing it): release it with Cleanup, not
// Close.
func (r *RedisStore) Store() store.Store { return r.store }

// Cleanup releases this config's use of the store; the last user closes
// it. It is safe after a Provision that failed.
func (r *RedisStore) Cleanup() error {
	if r.poolKey == "" {
		return nil
	}
	_, err := storePool.Delete(r.poolKey)
	r.poolKey, r.store = "", nil
	return err
}

// UnmarshalCaddyfile sets up the store from Caddyfile tokens:
//
//	store redis [<url>] {
//		key_prefix <prefix>
//		tls
//		sentinel <master> [<addr>...]
//		cluster <addr>...
//		cache_ttl <duration>
//		replicas_ack <n> [<timeout>]
//	}
//
// A url or a cluster is required. Write secrets as {env.NAME}: they are
// expanded only when the store is provisioned. replicas_ack makes every
// write of a grant wait until n replicas have it, for at most timeout
// (default 1s).
func (r *RedisStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "redis"
	if d.NextArg() {
		r.URL = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("%s already specified", sub)
		}
		seen[sub] = true
		args := d.RemainingArgs()
		switch sub {
		case "key_prefix":
			if len(args) != 1 || args[0] == "" {
				return d.ArgErr()
			}
			r.KeyPrefix = args[0]
		case "tls":
			if len(args) != 0 {
				return d.ArgErr()
			}
			r.TLS = true
		case "sentinel":
			if len(args) < 1 {
				return d.ArgErr()
			}
			r.Sentinel = &redisstore.Sentinel{Master: args[0], Addrs: args[1:]}
		case "cluster":
			if len(args) < 1 {
				return d.ArgErr()
			}
			r.Cluster = args
		case "cache_ttl":
			if len(args) != 1 {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(args[0])
			if err != nil {
				return d.Errf("cache_ttl: %v", err)
			}
			if dur <= 0 {
				return d.Errf("cache_ttl must be positive")
			}
			r.CacheTTL = caddy.Duration(dur)
		case "replicas_ack":
			if len(args) < 1 || len(args) > 2 {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 {
				return d.Errf("replicas_ack: want a number of replicas of at least 1, got %q", args[0])
			}
			r.ReplicasAck = n
			if len(args) == 2 {
				dur, err := caddy.ParseDuration(args[1])
				if err != nil {
					return d.Errf("replicas_ack timeout: %v", err)
				}
				if dur < time.Millisecond {
					return d.Errf("replicas_ack timeout must be at least 1ms")
				}
				r.ReplicasAckTimeout = caddy.Duration(dur)
			}
		default:
			return d.Errf("unrecognized subdirective '%s'", sub)
		}
	}
	if err := r.options().Check(); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*FileStore)(nil)
	_ caddy.CleanerUpper    = (*FileStore)(nil)
	_ caddyfile.Unmarshaler = (*FileStore)(nil)
	_ store.Backend         = (*FileStore)(nil)
	_ store.CounterBackend  = (*FileStore)(nil)
	_ caddy.Provisioner     = (*MemoryStore)(nil)
	_ caddy.CleanerUpper    = (*MemoryStore)(nil)
	_ caddyfile.Unmarshaler = (*MemoryStore)(nil)
	_ store.Backend         = (*MemoryStore)(nil)
	_ caddy.Provisioner     = (*RedisStore)(nil)
	_ caddy.CleanerUpper    = (*RedisStore)(nil)
	_ caddyfile.Unmarshaler = (*RedisStore)(nil)
	_ store.Backend         = (*RedisStore)(nil)
)
