package gatewaytest

import (
	"sync"
	"sync/atomic"
)

// Load runs steps in goroutines, off the test goroutine, until Stop, and
// keeps what they record. Phase is a number the test moves on (before,
// during, after a failure) for the steps to tag their records with.
type Load[T any] struct {
	Phase atomic.Int32

	stop    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup
	mu      sync.Mutex
	records []T
}

// NewLoad returns a Load with no steps running.
func NewLoad[T any]() *Load[T] { return &Load[T]{stop: make(chan struct{})} }

// Go runs step again and again in a goroutine of its own until Stop. A
// step must not use the test's t.
func (l *Load[T]) Go(step func()) {
	l.wg.Go(func() {
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			step()
		}
	})
}

// Record keeps r.
func (l *Load[T]) Record(r T) {
	l.mu.Lock()
	l.records = append(l.records, r)
	l.mu.Unlock()
}

// Records is a copy of the records so far.
func (l *Load[T]) Records() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]T(nil), l.records...)
}

// Count is how many records so far match.
func (l *Load[T]) Count(match func(T) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.records {
		if match(r) {
			n++
		}
	}
	return n
}

// Stop ends the steps, waits for them and returns every record. Calling
// it again returns the same records.
func (l *Load[T]) Stop() []T {
	l.stopped.Do(func() { close(l.stop) })
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.records
}
