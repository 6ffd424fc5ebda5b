package redisstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
	"github.com/caddyoauth/gateway/internal/testredis"
)

// TestWriteBatchWithoutCachedScript: a server that lost its script cache
// (SCRIPT FLUSH, as after a restart) answers the pipelined EVALSHA with
// NOSCRIPT; the batch still lands whole, and in one pipeline: the server
// counts one EVALSHA per set write and no separate EVAL until then.
func TestWriteBatchWithoutCachedScript(t *testing.T) {
	srv := testredis.Start(t)
	s := openURL(t, srv.URL(), uniquePrefix())
	ctx := context.Background()
	for range 2 {
		if err := s.c.Do(ctx, s.c.B().ScriptFlush().Build()).Error(); err != nil {
			t.Fatal(err)
		}
		err := s.WriteBatch(ctx, []store.Write{
			{Key: "at", Value: []byte("a"), TTL: time.Hour},
			{Key: "rt", Value: []byte("r"), TTL: 2 * time.Hour},
			{Set: "fam", Key: "rt", TTL: 2 * time.Hour},
			{Set: "user", Key: "rt", TTL: 2 * time.Hour},
		})
		if err != nil {
			t.Fatalf("WriteBatch after SCRIPT FLUSH: %v", err)
		}
		for k, want := range map[string]string{"at": "a", "rt": "r"} {
			if v, err := s.Get(ctx, k); err != nil || string(v) != want {
				t.Fatalf("Get(%s) = %q, %v", k, v, err)
			}
		}
		for _, set := range []string{"fam", "user"} {
			if m, err := s.Members(ctx, set); err != nil || len(m) != 1 || m[0] != "rt" {
				t.Fatalf("Members(%s) = %v, %v", set, m, err)
			}
		}
	}
	// With the script cached, a batch is SETs and EVALSHAs only.
	if err := s.c.Do(ctx, s.c.B().ConfigResetstat().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteBatch(ctx, []store.Write{{Key: "x", Value: []byte("x")}, {Set: "user", Key: "x"}}); err != nil {
		t.Fatal(err)
	}
	info, err := s.c.Do(ctx, s.c.B().Info().Section("commandstats").Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cmdstat_evalsha:calls=1,", "cmdstat_set:calls=1,"} {
		if !strings.Contains(info, want) {
			t.Fatalf("commandstats after a cached batch lack %q:\n%s", want, info)
		}
	}
	if strings.Contains(info, "cmdstat_eval:") {
		t.Fatalf("a cached batch sent EVAL:\n%s", info)
	}
}
