package redisstore

import (
	"testing"
	"time"
)

// TestLookupDeadlineBoundsEveryCall walks time forward in steps and checks
// that the context Lookup gets always ends between callTimeout/2 and
// callTimeout from the call, and that calls within that window share one.
func TestLookupDeadlineBoundsEveryCall(t *testing.T) {
	var l lookupDeadline
	defer l.close()
	start := time.Now()
	renewals := 0
	var prev any
	for step := time.Duration(0); step < 4*callTimeout; step += callTimeout / 20 {
		now := start.Add(step)
		ctx := l.context(now)
		d, ok := ctx.Deadline()
		if !ok {
			t.Fatal("the lookup context has no deadline")
		}
		if left := d.Sub(now); left < callTimeout/2 || left > callTimeout {
			t.Fatalf("at +%v the deadline is %v away, want within [%v, %v]", step, left, callTimeout/2, callTimeout)
		}
		if ctx != prev {
			renewals++
			prev = ctx
		}
	}
	// 80 calls over 4 callTimeouts: renewed about every callTimeout/2.
	if renewals < 7 || renewals > 9 {
		t.Fatalf("the context was renewed %d times over 80 calls, want about 8", renewals)
	}
}

// TestLookupDeadlineCloseCancels: close releases the shared context.
func TestLookupDeadlineCloseCancels(t *testing.T) {
	var l lookupDeadline
	ctx := l.context(time.Now())
	if ctx.Err() != nil {
		t.Fatal("a fresh lookup context is already done")
	}
	l.close()
	if ctx.Err() == nil {
		t.Fatal("close left the lookup context running")
	}
}
