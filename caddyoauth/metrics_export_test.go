package caddyoauth

import (
	"testing"

	"github.com/caddyoauth/gateway/caddyoauth/store"
	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
	"github.com/caddyoauth/gateway/caddyoauth/store/storetest"
)

// TestInstrumentedStoreContract: the metrics decorator, which is the
// store every part of the gateway (and backup and restore) goes through,
// fulfils the whole store contract, Export included.
func TestInstrumentedStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, err := filestore.Open(":memory:")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return instrumentStore(db, "memory")
	})
}
