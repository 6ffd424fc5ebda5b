package caddyoauth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/rueidis"

	"github.com/caddyoauth/gateway/caddyoauth/store/redisstore"
	"github.com/caddyoauth/gateway/internal/testredis"
)

func TestRedisStoreCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		want        string // JSON of the parsed module
		wantErr     string // substring of the error, with file and line
	}{
		{
			name:  "url only",
			input: `redis redis://localhost:6379/0`,
			want:  `{"url":"redis://localhost:6379/0"}`,
		},
		{
			name: "all options, secret kept as placeholder",
			input: `redis redis://:{env.REDIS_PASSWORD}@redis.internal:6379/2 {
				key_prefix  gw1:
				tls
				cache_ttl   1m30s
			}`,
			want: `{"url":"redis://:{env.REDIS_PASSWORD}@redis.internal:6379/2","key_prefix":"gw1:","tls":true,"cache_ttl":90000000000}`,
		},
		{
			name: "sentinel",
			input: `redis rediss://:pw@s1:26379 {
				sentinel mymaster s2:26379 s3:26379
			}`,
			want: `{"url":"rediss://:pw@s1:26379","sentinel":{"master":"mymaster","addrs":["s2:26379","s3:26379"]}}`,
		},
		{
			name: "cluster without url",
			input: `redis {
				cluster 10.0.0.1:6379 10.0.0.2:6379 10.0.0.3:6379
			}`,
			want: `{"cluster":["10.0.0.1:6379","10.0.0.2:6379","10.0.0.3:6379"]}`,
		},
		{name: "neither url nor cluster", input: `redis`, wantErr: "Testfile:1"},
		{name: "extra argument", input: `redis redis://a redis://b`, wantErr: "Testfile:1"},
		{
			name:    "unknown subdirective",
			input:   "redis redis://a {\n\tkey_prefix x:\n\tpassword hunter2\n}",
			wantErr: "unrecognized subdirective 'password', at Testfile:3",
		},
		{name: "key_prefix without value", input: "redis redis://a {\n\tkey_prefix\n}", wantErr: "Testfile:2"},
		{name: "key_prefix twice", input: "redis redis://a {\n\tkey_prefix a:\n\tkey_prefix b:\n}", wantErr: "key_prefix already specified, at Testfile:3"},
		{name: "tls with argument", input: "redis redis://a {\n\ttls yes\n}", wantErr: "Testfile:2"},
		{name: "bad cache_ttl", input: "redis redis://a {\n\n\tcache_ttl soon\n}", wantErr: "Testfile:3"},
		{name: "zero cache_ttl", input: "redis redis://a {\n\tcache_ttl 0s\n}", wantErr: "Testfile:2"},
		{name: "sentinel without master", input: "redis redis://a {\n\tsentinel\n}", wantErr: "Testfile:2"},
		{name: "cluster without addresses", input: "redis {\n\tcluster\n}", wantErr: "Testfile:2"},
		{name: "sentinel and cluster", input: "redis redis://a {\n\tsentinel m a:1\n\tcluster b:1\n}", wantErr: "exclude each other"},
		{
			name:  "count only",
			input: "redis redis://a {\n\treplicas_ack 1\n}",
			want:  `{"url":"redis://a","replicas_ack":1}`,
		},
		{
			name:  "count and timeout",
			input: "redis redis://a {\n\treplicas_ack 2 250ms\n}",
			want:  `{"url":"redis://a","replicas_ack":2,"replicas_ack_timeout":250000000}`,
		},
		{name: "no count", input: "redis redis://a {\n\treplicas_ack\n}", wantErr: "Testfile:2"},
		{name: "zero", input: "redis redis://a {\n\treplicas_ack 0\n}", wantErr: "at least 1, got \"0\", at Testfile:2"},
		{name: "not a number", input: "redis redis://a {\n\treplicas_ack all\n}", wantErr: "Testfile:2"},
		{name: "bad timeout", input: "redis redis://a {\n\treplicas_ack 1 soon\n}", wantErr: "Testfile:2"},
		{name: "zero timeout", input: "redis redis://a {\n\treplicas_ack 1 0s\n}", wantErr: "at least 1ms, at Testfile:2"},
		{name: "extra argument", input: "redis redis://a {\n\treplicas_ack 1 1s 2s\n}", wantErr: "Testfile:2"},
		{name: "twice", input: "redis redis://a {\n\treplicas_ack 1\n\treplicas_ack 2\n}", wantErr: "replicas_ack already specified, at Testfile:3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r RedisStore
			err := r.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(&r)
			if string(got) != tc.want {
				t.Fatalf("JSON\n got %s\nwant %s", got, tc.want)
			}
			// The JSON must load back strictly into the same config.
			dec := json.NewDecoder(strings.NewReader(string(got)))
			dec.DisallowUnknownFields()
			var back RedisStore
			if err := dec.Decode(&back); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func provisionCtx(t *testing.T) caddy.Context {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}

func poolSize() int {
	n := 0
	storePool.Range(func(any, any) bool { n++; return true })
	return n
}

// TestRedisStoreSharesAndReleases provisions two configs on one resource
// (as during a reload): they share a store, the password comes from the
// environment, and the last Cleanup closes it.
func TestRedisStoreSharesAndReleases(t *testing.T) {
	srv := testredis.Start(t, "--requirepass", "s3cret-pw")
	t.Setenv("TEST_REDIS_PASSWORD", "s3cret-pw")
	cfg := `{"url":"redis://:{env.TEST_REDIS_PASSWORD}@` + srv.Addr() + `/0","key_prefix":"` + uniquePrefix() + `"}`
	before := poolSize()

	var old, cur RedisStore
	for _, r := range []*RedisStore{&old, &cur} {
		if err := json.Unmarshal([]byte(cfg), r); err != nil {
			t.Fatal(err)
		}
		if err := r.Provision(provisionCtx(t)); err != nil {
			t.Fatalf("Provision: %v", err)
		}
	}
	if old.Store() != cur.Store() {
		t.Fatal("two configs on one resource got two stores")
	}
	if strings.Contains(old.poolKey, "s3cret") {
		t.Fatalf("pool key holds the password: %s", old.poolKey)
	}
	ctx := context.Background()
	s := cur.Store()
	if err := s.Put(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := old.Cleanup(); err != nil {
		t.Fatal(err)
	}
	// The new config still works after the old one is gone.
	if v, err := s.Lookup(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Lookup after old Cleanup = %q, %v", v, err)
	}
	if err := cur.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if n := poolSize(); n != before {
		t.Fatalf("pool holds %d stores after the last Cleanup, want %d", n, before)
	}
	if _, err := s.Get(ctx, "k"); err == nil {
		t.Fatal("store still usable after the last Cleanup")
	}
}

// TestRedisStoreFailureLeavesNothing checks that a Provision that fails
// (Redis down, or a bad URL) leaves no pooled store, that Cleanup after it
// is harmless, and that its error does not show the password.
func TestRedisStoreFailureLeavesNothing(t *testing.T) {
	srv := testredis.Start(t)
	addr := srv.Addr()
	srv.Stop()
	before := poolSize()
	for _, url := range []string{
		"redis://user:s3cret-pw@" + addr + "/0",
		"redis://user:s3cret-pw@" + addr + "/notadb",
		"redis://user:s3cret-pw@host:port/0",
		"redis://user:s3cret-pw@[::1/0",
		"http://user:s3cret-pw@" + addr,
	} {
		r := RedisStore{URL: url}
		err := r.Provision(provisionCtx(t))
		if err == nil {
			t.Fatalf("Provision(%s) succeeded", url)
		}
		t.Logf("%v", err)
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("error shows the password: %v", err)
		}
		if err := r.Cleanup(); err != nil {
			t.Fatal(err)
		}
		if n := poolSize(); n != before {
			t.Fatalf("pool holds %d stores after a failed Provision, want %d", n, before)
		}
	}
}

// TestRedisStoreWrongPassword checks that a refused password is reported
// without being shown.
func TestRedisStoreWrongPassword(t *testing.T) {
	srv := testredis.Start(t, "--requirepass", "right-pw")
	r := RedisStore{URL: "redis://:wr0ng-pw@" + srv.Addr() + "/0"}
	err := r.Provision(provisionCtx(t))
	if err == nil {
		r.Cleanup()
		t.Fatal("Provision with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "wr0ng") || strings.Contains(err.Error(), "right-pw") {
		t.Fatalf("error shows a password: %v", err)
	}
	t.Log(err)
}

// TestRedisStoreSentinel finds the master through a Sentinel given as the
// URL's host, with the master's password from the URL.
func TestRedisStoreSentinel(t *testing.T) {
	master := testredis.Start(t, "--requirepass", "s3cret-pw")
	sentinel := testredis.StartSentinel(t, master, "mymaster")
	var r RedisStore
	prefix := uniquePrefix()
	d := caddyfile.NewTestDispenser(`redis redis://:s3cret-pw@` + sentinel.Addr() + `/0 {
		sentinel mymaster
		key_prefix ` + prefix + `
	}`)
	if err := r.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if err := r.Provision(provisionCtx(t)); err != nil {
		t.Fatal(err)
	}
	defer r.Cleanup()
	ctx := context.Background()
	if err := r.Store().Put(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, err := r.Store().Lookup(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Lookup = %q, %v", v, err)
	}
	// The write went to the master itself.
	direct := openRedis(t, "redis://:s3cret-pw@"+master.Addr()+"/0", prefix)
	if v, err := direct.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get on the master = %q, %v", v, err)
	}
}

// prefixes gives every Redis store of the tests its own key prefix.
var prefixes atomic.Int64

func uniquePrefix() string { return fmt.Sprintf("t%d:", prefixes.Add(1)) }

func openRedis(t testing.TB, url, prefix string) *redisstore.Store {
	t.Helper()
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	s, err := redisstore.Open(opt, prefix, 0)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestFileCountersStayInMemory: the file backend's counters never reach
// its file, and two configs share them, as they share the file.
func TestFileCountersStayInMemory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oauth.db")
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	a, b := &FileStore{Path: path}, &FileStore{Path: path}
	for _, f := range []*FileStore{a, b} {
		if err := f.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		defer f.Cleanup()
	}
	for want := int64(1); want <= 2; want++ {
		f := []*FileStore{a, b}[want-1]
		n, err := f.Counters().Incr(context.Background(), "rl:token:counter-key", time.Minute)
		if err != nil || n != want {
			t.Fatalf("Incr = %d, %v; want %d (the configs must share one counter store)", n, err, want)
		}
	}
	if err := a.Store().Put(context.Background(), "at:record", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("at:record")) {
		t.Fatal("the token record did not reach the file")
	}
	if bytes.Contains(raw, []byte("counter-key")) {
		t.Fatal("a counter was written to the file")
	}
}
