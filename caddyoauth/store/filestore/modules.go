package filestore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

func init() {
	caddy.RegisterModule(File{})
	caddy.RegisterModule(Memory{})
}

// pool shares one open database per path between the configs that use it,
// because Caddy starts a new config before it stops the old one and buntdb
// must not have one file open twice.
var pool = caddy.NewUsagePool()

type pooledDB struct{ *DB }

func (p pooledDB) Destruct() error { return p.Close() }

func openPooled(key, path string) (*DB, error) {
	v, _, err := pool.LoadOrNew(key, func() (caddy.Destructor, error) {
		db, err := Open(path)
		if err != nil {
			return nil, err
		}
		return pooledDB{db}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(pooledDB).DB, nil
}

// File is the embedded, persistent token store: a buntdb append-only file
// that needs no other service. A sweeper deletes expired records from it
// while it runs (100,000 keys a second), and the file is compacted as it
// grows.
type File struct {
	// Path of the database file. Default: oauth/oauth.db under Caddy's
	// data directory.
	Path string `json:"path,omitempty"`

	db       *DB
	poolKey  string
	counters *DB
}

// CaddyModule returns the Caddy module information.
func (File) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "oauth.stores.file",
		New: func() caddy.Module { return new(File) },
	}
}

// Provision opens the database file, creating its folder when missing.
func (f *File) Provision(ctx caddy.Context) error {
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
	db, err := openPooled(f.poolKey, abs)
	if err != nil {
		f.poolKey = ""
		return fmt.Errorf("oauth file store %q: %v", abs, err)
	}
	f.db = db
	counters, err := openPooled(countersPoolKey, ":memory:")
	if err != nil {
		return err
	}
	f.counters = counters
	return nil
}

// countersPoolKey names the process's one in-memory store of counters.
const countersPoolKey = "counters"

// Store implements store.Backend.
func (f *File) Store() store.Store { return f.db }

// Counters implements store.CounterBackend: rate-limit and sign-in
// counters stay in memory, so counting a request appends nothing to the
// file.
func (f *File) Counters() store.Store { return f.counters }

// Cleanup releases this config's use of the database.
func (f *File) Cleanup() error {
	var err error
	if f.counters != nil {
		_, err = pool.Delete(countersPoolKey)
	}
	if f.poolKey == "" {
		return err
	}
	_, err2 := pool.Delete(f.poolKey)
	return errors.Join(err, err2)
}

// UnmarshalCaddyfile sets up the store from Caddyfile tokens:
//
//	store file [<path>]
func (f *File) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
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

// Memory keeps every record in the process's memory: nothing survives a
// restart, but config reloads keep it. For tests and single short-lived
// instances.
type Memory struct {
	db *DB
}

// CaddyModule returns the Caddy module information.
func (Memory) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "oauth.stores.memory",
		New: func() caddy.Module { return new(Memory) },
	}
}

const memoryPoolKey = "memory"

// Provision opens the process's one memory store.
func (m *Memory) Provision(caddy.Context) error {
	db, err := openPooled(memoryPoolKey, ":memory:")
	if err != nil {
		return err
	}
	m.db = db
	return nil
}

// Store implements store.Backend.
func (m *Memory) Store() store.Store { return m.db }

// Cleanup releases this config's use of the memory store.
func (m *Memory) Cleanup() error {
	if m.db == nil {
		return nil
	}
	_, err := pool.Delete(memoryPoolKey)
	return err
}

// UnmarshalCaddyfile sets up the store from Caddyfile tokens:
//
//	store memory
func (m *Memory) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "memory"
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(d.Nesting()) {
		return d.Errf("store memory takes no block")
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*File)(nil)
	_ caddy.CleanerUpper    = (*File)(nil)
	_ caddyfile.Unmarshaler = (*File)(nil)
	_ store.Backend         = (*File)(nil)
	_ store.CounterBackend  = (*File)(nil)
	_ caddy.Provisioner     = (*Memory)(nil)
	_ caddy.CleanerUpper    = (*Memory)(nil)
	_ caddyfile.Unmarshaler = (*Memory)(nil)
	_ store.Backend         = (*Memory)(nil)
)
