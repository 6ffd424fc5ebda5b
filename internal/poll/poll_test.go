package poll

import (
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	n := 0
	if !Wait(time.Second, func() bool { n++; return n == 3 }) || n != 3 {
		t.Fatalf("Wait stopped after %d checks, want 3 and true", n)
	}
	start := time.Now()
	if Wait(30*time.Millisecond, func() bool { return false }) {
		t.Fatal("Wait reported a condition that never held")
	}
	if time.Since(start) < 30*time.Millisecond {
		t.Fatal("Wait gave up before its timeout")
	}
}

func TestUntilPassesOnceTheConditionHolds(t *testing.T) {
	at := time.Now().Add(20 * time.Millisecond)
	Until(t, time.Second, "the clock passes a point", func() bool { return time.Now().After(at) })
}
