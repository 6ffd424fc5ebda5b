// Package poll lets tests wait for a condition instead of sleeping for a
// guessed time: the condition is checked every few milliseconds until it
// holds or a timeout passes.
package poll

import (
	"testing"
	"time"
)

// interval is the pause between two checks of a condition.
const interval = 10 * time.Millisecond

// Until calls cond until it returns true, and fails the test if timeout
// passes first, saying what did not happen.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Wait(timeout, cond) {
		t.Fatalf("%s: not within %v", what, timeout)
	}
}

// Wait calls cond until it returns true or timeout passes, and reports
// whether cond held; for a caller that words its own failure.
func Wait(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval) // polling a condition, not synchronising on time
	}
	return true
}
