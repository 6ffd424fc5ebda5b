package caddyoauth

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store/redisstore"
	"github.com/caddyoauth/gateway/internal/testredis"
)

// TestRedisStoreReplicasAckJSON: JSON the Caddyfile cannot write is
// refused at Provision, before any connection.
func TestRedisStoreReplicasAckJSON(t *testing.T) {
	for cfg, want := range map[string]string{
		`{"url":"redis://127.0.0.1:1/0","replicas_ack":-1}`:                          "replicas_ack must not be negative",
		`{"url":"redis://127.0.0.1:1/0","replicas_ack":1,"replicas_ack_timeout":-1}`: "replicas_ack_timeout must not be negative",
		`{"url":"redis://127.0.0.1:1/0","replicas_ack_timeout":1000000}`:             "replicas_ack_timeout needs replicas_ack",
	} {
		var r RedisStore
		if err := json.Unmarshal([]byte(cfg), &r); err != nil {
			t.Fatal(err)
		}
		err := r.Provision(provisionCtx(t))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: err = %v, want %q", cfg, err, want)
		}
	}
}

// TestRedisStoreReplicasAckProvision: the module hands replicas_ack to its
// store, and a config with it does not share the store of one without.
func TestRedisStoreReplicasAckProvision(t *testing.T) {
	srv := testredis.Start(t)
	prefix := uniquePrefix()
	var plain, acked RedisStore
	for r, cfg := range map[*RedisStore]string{
		&plain: `{"url":"` + srv.URL() + `","key_prefix":"` + prefix + `"}`,
		&acked: `{"url":"` + srv.URL() + `","key_prefix":"` + prefix + `","replicas_ack":1,"replicas_ack_timeout":100000000}`,
	} {
		if err := json.Unmarshal([]byte(cfg), r); err != nil {
			t.Fatal(err)
		}
		if err := r.Provision(provisionCtx(t)); err != nil {
			t.Fatal(err)
		}
		defer r.Cleanup()
	}
	if plain.Store() == acked.Store() {
		t.Fatal("configs with and without replicas_ack share one store")
	}
	ctx := context.Background()
	if err := plain.Store().Put(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatalf("Put without replicas_ack: %v", err)
	}
	// No replica: the write waits 100ms and fails.
	if err := acked.Store().Put(ctx, "k", []byte("v"), time.Minute); !errors.Is(err, redisstore.ErrNotReplicated) {
		t.Fatalf("Put with replicas_ack 1 and no replica: %v, want ErrNotReplicated", err)
	}
}
