package filestore

import (
	"errors"
	"sync"
	"time"

	"github.com/tidwall/buntdb"
)

// The sweeper deletes expired values, which buntdb no longer knows to
// expire (stored_value.go). It walks the keys in order, a chunk at a time
// so that writers never wait long for the lock, and resumes where it
// stopped: every sweepInterval it reads up to sweepChunksPerTick chunks,
// so a store of 1.5 million items is walked in about 15 s and expired
// records leave the file within a pass of expiring.
var (
	sweepInterval      = time.Second
	sweepChunk         = 10_000
	sweepChunksPerTick = 10
)

type sweeper struct {
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

func startSweeper(d *DB) *sweeper {
	s := &sweeper{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(sweepInterval)
		defer tick.Stop()
		cursor := ""
		for {
			select {
			case <-s.quit:
				return
			case <-tick.C:
			}
			for range sweepChunksPerTick {
				var err error
				if cursor, err = d.sweepChunk(cursor, sweepChunk); err != nil || cursor == "" {
					break // a pass is done (or the store is closing): wait for the next tick
				}
			}
			d.maybeCompact()
		}
	}()
	return s
}

// stop ends the sweeper and waits for it; a second stop (a second Close)
// returns at once.
func (s *sweeper) stop() {
	s.once.Do(func() { close(s.quit) })
	<-s.done
}

// sweepChunk reads up to n keys after cursor ("" from the first), deletes
// those whose value has expired, and returns the last key read: the next
// chunk's cursor, or "" when the walk reached the last key.
func (d *DB) sweepChunk(cursor string, n int) (string, error) {
	now := time.Now().UnixNano()
	var (
		due  []string
		read int
		last string
	)
	err := d.db.View(func(tx *buntdb.Tx) error {
		return tx.AscendGreaterOrEqual("", cursor, func(key, stored string) bool {
			if key == cursor && cursor != "" {
				return true // read by the chunk before
			}
			read++
			last = key
			if _, expires, err := unwrap(stored); err == nil && expired(expires, now) {
				due = append(due, key)
			}
			return read < n
		})
	})
	if err != nil {
		return "", err
	}
	if len(due) > 0 {
		if err := d.deleteExpired(due, now); err != nil {
			return "", err
		}
	}
	if read < n {
		return "", nil
	}
	return last, nil
}

// deleteExpired deletes those of keys that are still expired at now: one
// may have been written again since it was read.
func (d *DB) deleteExpired(keys []string, now int64) error {
	defer d.cache.forget(keys...)
	return d.db.Update(func(tx *buntdb.Tx) error {
		var due []string
		for _, k := range keys {
			if _, _, err := get(tx, k, now); errors.Is(err, buntdb.ErrNotFound) {
				due = append(due, k) // not live again since it was read
			}
		}
		return deleteKeys(tx, due)
	})
}
