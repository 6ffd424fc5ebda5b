package filestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/tidwall/buntdb"
)

// Every value is stored behind the unix nanosecond at which it expires (8
// bytes, big-endian; 0: never), and buntdb itself is given no expiry. A
// buntdb expiry costs a 32-byte options object and a slot in a second
// B-tree per item: with a million tokens (1.5 million items) that was a
// fifth of the gateway's heap, and the garbage collector's headroom doubles
// it in RSS. Reads treat an expired value as missing, and the sweeper
// (sweep.go) deletes expired values from the file without a restart.
const expiryLen = 8

// errMalformed reports a stored value too short to hold its expiry, which
// this package never writes.
var errMalformed = errors.New("store: malformed stored value")

// expiryAt is when a value written at now with ttl expires; 0: never.
func expiryAt(now time.Time, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return now.Add(ttl).UnixNano()
}

// wrap returns value as stored, behind its expiry.
func wrap[V string | []byte](value V, expires int64) string {
	b := make([]byte, expiryLen+len(value))
	binary.BigEndian.PutUint64(b, uint64(expires))
	copy(b[expiryLen:], value)
	return string(b)
}

// unwrap splits a stored value into the value and its expiry.
func unwrap(stored string) (value string, expires int64, err error) {
	if len(stored) < expiryLen {
		return "", 0, errMalformed
	}
	return stored[expiryLen:], int64(binary.BigEndian.Uint64([]byte(stored[:expiryLen]))), nil
}

// expired reports whether a value expiring at expires has expired at now
// (unix nanoseconds).
func expired(expires, now int64) bool {
	return expires != 0 && now >= expires
}

// formatKey holds the version of the stored-value format. Plain keys never
// start with NUL and set members start with setPrefix, so no other key can
// be it.
const (
	formatKey     = "\x00format"
	formatExpiry8 = "2" // values behind their 8-byte expiry
)

// upgradeFormat brings a file written before values carried their own
// expiry (it has no formatKey) to the current format in one transaction:
// every live item is rewritten behind its expiry, taken from buntdb, and
// without a buntdb expiry. It runs once per file; an empty store only
// records the format.
func upgradeFormat(db *buntdb.DB, path string) error {
	return db.Update(func(tx *buntdb.Tx) error {
		switch v, err := tx.Get(formatKey); {
		case err == nil:
			if value, _, err := unwrap(v); err != nil || value != formatExpiry8 {
				return fmt.Errorf("%s: store format %q is not one this version reads (a newer gateway wrote it?)", path, value)
			}
			return nil
		case !errors.Is(err, buntdb.ErrNotFound):
			return err
		}
		type item struct {
			key, value string
			expires    int64
		}
		var items []item
		var expiredKeys []string
		now := time.Now()
		err := tx.Ascend("", func(key, value string) bool {
			switch ttl, err := tx.TTL(key); {
			case err != nil: // expired, waiting for buntdb's sweep
				expiredKeys = append(expiredKeys, key)
			case ttl < 0: // no expiry
				items = append(items, item{key, value, 0})
			default:
				items = append(items, item{key, value, expiryAt(now, max(ttl, time.Nanosecond))})
			}
			return true
		})
		if err != nil {
			return err
		}
		if err := deleteKeys(tx, expiredKeys); err != nil {
			return err
		}
		for _, it := range items {
			if _, _, err := tx.Set(it.key, wrap(it.value, it.expires), nil); err != nil {
				return err
			}
		}
		_, _, err = tx.Set(formatKey, wrap(formatExpiry8, 0), nil)
		return err
	})
}
