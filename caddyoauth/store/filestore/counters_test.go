package filestore

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// TestFileCountersStayInMemory: the file backend's counters never reach
// its file, and two configs share them, as they share the file.
func TestFileCountersStayInMemory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oauth.db")
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	a, b := &File{Path: path}, &File{Path: path}
	for _, f := range []*File{a, b} {
		if err := f.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		defer f.Cleanup()
	}
	for want := int64(1); want <= 2; want++ {
		f := []*File{a, b}[want-1]
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
