package caddyoauth

import (
	"context"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
)

// batchCounter is a real store that counts the batches it is handed.
type batchCounter struct {
	*filestore.DB
	batches, puts int
}

func (b *batchCounter) WriteBatch(ctx context.Context, w []store.Write) error {
	b.batches++
	return b.DB.WriteBatch(ctx, w)
}

func (b *batchCounter) Put(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	b.puts++
	return b.DB.Put(ctx, k, v, ttl)
}

// TestInstrumentedStoreKeepsBatches: the metrics decorator hands a batch to
// the backend whole, so a token response stays one store step.
func TestInstrumentedStoreKeepsBatches(t *testing.T) {
	db, err := filestore.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	inner := &batchCounter{DB: db}
	s := instrumentStore(inner, "memory")
	ctx := context.Background()
	err = store.WriteBatch(ctx, s, []store.Write{
		{Key: "a", Value: []byte("1"), TTL: time.Hour},
		{Key: "b", Value: []byte("2"), TTL: time.Hour},
		{Set: "s", Key: "a", TTL: time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	if inner.batches != 1 || inner.puts != 0 {
		t.Fatalf("backend saw %d batches and %d puts; want 1 batch, no puts", inner.batches, inner.puts)
	}
	if v, err := s.Get(ctx, "b"); err != nil || string(v) != "2" {
		t.Fatalf("Get(b) = %q, %v", v, err)
	}
	if m, err := s.Members(ctx, "s"); err != nil || len(m) != 1 || m[0] != "a" {
		t.Fatalf("Members(s) = %v, %v", m, err)
	}
}
