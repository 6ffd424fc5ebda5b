package authz

import (
	"context"
	"testing"
)

// BenchmarkValidate is the request path of oauth_protect: one access
// token checked against the (in-memory) store. Run with -benchmem: its
// allocations are paid on every proxied request.
func BenchmarkValidate(b *testing.B) {
	s, _ := newTestService(b, nil)
	access, _ := aliceTokens(b, s)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Validate(ctx, access); err != nil {
			b.Fatal(err)
		}
	}
}
