package redisstore

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

func init() {
	caddy.RegisterModule(Redis{})
}

// pool shares one open store per resource between the configs that use
// it: Caddy starts a new config before it stops the old one, and a reload
// should keep the connections (and the warm cache) rather than redial.
var pool = caddy.NewUsagePool()

type pooledStore struct{ *Store }

func (p pooledStore) Destruct() error { return p.Close() }

// poolSalt keys the pool-key digest, so the digest of a URL holding a
// password cannot be used to guess the password offline. Pool keys only
// need to be stable within one process.
var poolSalt = func() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand documents a crash instead)
	return b
}()

// Redis is the token store on Redis, for gateways whose instances share
// their tokens: a single server, a master found through Sentinel, or a
// Redis Cluster. Values are validated from a client-side cache that Redis
// keeps current (RESP3 client tracking), so checking an already-seen
// token costs no round trip. Records expire through Redis' own PX expiry.
type Redis struct {
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
	Sentinel *Sentinel `json:"sentinel,omitempty"`

	// Cluster lists host:port seed addresses of a Redis Cluster. Default:
	// none (a single server, or a cluster found through the URL alone).
	Cluster []string `json:"cluster,omitempty"`

	// CacheTTL is how long a value looked up for request validation may
	// stay in the local cache. Redis evicts it sooner as soon as anyone
	// changes it. Default: 30s.
	CacheTTL caddy.Duration `json:"cache_ttl,omitempty"`

	store   *Store
	poolKey string
	logger  *zap.Logger
}

// Sentinel names the master set and the Sentinels to ask for its address.
// The Sentinels are asked without a password (the URL's credentials are
// for the master) and with the same TLS setting as the master.
type Sentinel struct {
	// Master is the name of the master set the Sentinels monitor.
	// Required.
	Master string `json:"master,omitempty"`
	// Addrs are host:port addresses of Sentinels, besides the URL's host.
	// Default: none.
	Addrs []string `json:"addrs,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Redis) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "oauth.stores.redis",
		New: func() caddy.Module { return new(Redis) },
	}
}

// Provision expands placeholders and opens the store, or shares the one
// an earlier config opened on the same resource. It fails when Redis does
// not answer, so a broken store shows at startup, not at the first login.
func (r *Redis) Provision(ctx caddy.Context) error {
	r.logger = ctx.Logger()
	if err := r.check(); err != nil {
		return err
	}
	prefix := r.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	cacheTTL := time.Duration(r.CacheTTL)
	if cacheTTL == 0 {
		cacheTTL = DefaultCacheTTL
	}

	repl := caddy.NewReplacer()
	rawURL := repl.ReplaceKnown(r.URL, "")
	cluster := replaceAll(repl, r.Cluster)
	var sentinel Sentinel
	if r.Sentinel != nil {
		sentinel = Sentinel{Master: repl.ReplaceKnown(r.Sentinel.Master, ""), Addrs: replaceAll(repl, r.Sentinel.Addrs)}
	}
	opt, err := clientOption(rawURL, r.TLS, sentinel, cluster)
	if err != nil {
		return err
	}

	// The digest covers everything that makes the resource, secrets
	// included (a new password must give a new connection), yet reveals
	// none of it.
	mac := hmac.New(sha256.New, poolSalt)
	_ = json.NewEncoder(mac).Encode([]any{rawURL, r.TLS, sentinel, cluster, prefix, cacheTTL})
	key := "redis:" + hex.EncodeToString(mac.Sum(nil))

	v, loaded, err := pool.LoadOrNew(key, func() (caddy.Destructor, error) {
		s, err := Open(opt, prefix, cacheTTL)
		if err != nil {
			return nil, err
		}
		return pooledStore{s}, nil
	})
	if err != nil {
		return fmt.Errorf("oauth redis store %s: %s", describe(opt), scrub(err.Error(), opt.Password))
	}
	r.poolKey, r.store = key, v.(pooledStore).Store
	if !loaded {
		r.logger.Info("redis store connected",
			zap.Strings("addresses", opt.InitAddress),
			zap.String("key_prefix", prefix))
	}
	return nil
}

// check refuses configs that name no server or two kinds of topology.
func (r *Redis) check() error {
	switch {
	case r.URL == "" && len(r.Cluster) == 0:
		return errors.New("oauth redis store: needs a url or cluster addresses")
	case r.Sentinel != nil && len(r.Cluster) > 0:
		return errors.New("oauth redis store: sentinel and cluster exclude each other")
	case r.Sentinel != nil && r.Sentinel.Master == "":
		return errors.New("oauth redis store: sentinel needs the name of the master set")
	case r.CacheTTL < 0:
		return errors.New("oauth redis store: cache_ttl must not be negative")
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

// clientOption turns the expanded config into rueidis options. Its errors
// never quote the URL, which may hold a password.
func clientOption(rawURL string, useTLS bool, sentinel Sentinel, cluster []string) (rueidis.ClientOption, error) {
	var opt rueidis.ClientOption
	if rawURL != "" {
		var err error
		opt, err = rueidis.ParseURL(rawURL)
		if err != nil {
			// url.Parse errors quote the whole URL; keep only the reason.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			pw := ""
			if u, perr := url.Parse(rawURL); perr == nil && u.User != nil {
				pw, _ = u.User.Password()
			}
			return opt, fmt.Errorf("oauth redis store: invalid url: %s", scrub(err.Error(), pw))
		}
	}
	opt.InitAddress = append(opt.InitAddress, cluster...)
	if sentinel.Master != "" {
		opt.InitAddress = append(opt.InitAddress, sentinel.Addrs...)
		opt.Sentinel.MasterSet = sentinel.Master
	}
	if useTLS && opt.TLSConfig == nil {
		opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if opt.TLSConfig != nil {
		// ParseURL names the URL's host as the server, which is wrong for
		// every other node, Sentinel or master; left empty, crypto/tls
		// verifies each connection against the host it dials.
		opt.TLSConfig.ServerName = ""
		if sentinel.Master != "" {
			opt.Sentinel.TLSConfig = opt.TLSConfig.Clone()
		}
	}
	return opt, nil
}

// describe names the servers of opt for error messages, without secrets.
func describe(opt rueidis.ClientOption) string {
	return strings.Join(opt.InitAddress, ",")
}

// scrub removes a password from s, in plain and URL-escaped form, in case
// an error from below ever quotes it.
func scrub(s, password string) string {
	if password == "" {
		return s
	}
	s = strings.ReplaceAll(s, password, "xxxxx")
	s = strings.ReplaceAll(s, url.QueryEscape(password), "xxxxx")
	return strings.ReplaceAll(s, url.PathEscape(password), "xxxxx")
}

// Store implements store.Backend. The store belongs to the module (and
// possibly to other configs sharing it): release it with Cleanup, not
// Close.
func (r *Redis) Store() store.Store { return r.store }

// Cleanup releases this config's use of the store; the last user closes
// it. It is safe after a Provision that failed.
func (r *Redis) Cleanup() error {
	if r.poolKey == "" {
		return nil
	}
	_, err := pool.Delete(r.poolKey)
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
//	}
//
// A url or a cluster is required. Write secrets as {env.NAME}: they are
// expanded only when the store is provisioned.
func (r *Redis) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
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
			r.Sentinel = &Sentinel{Master: args[0], Addrs: args[1:]}
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
		default:
			return d.Errf("unrecognized subdirective '%s'", sub)
		}
	}
	if err := r.check(); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*Redis)(nil)
	_ caddy.CleanerUpper    = (*Redis)(nil)
	_ caddyfile.Unmarshaler = (*Redis)(nil)
	_ store.Backend         = (*Redis)(nil)
)
