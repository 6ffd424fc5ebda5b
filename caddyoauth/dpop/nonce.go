package dpop

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// NonceSource issues the server nonces (RFC 9449 §8, §9) proofs must carry.
type NonceSource interface {
	// Nonce returns the nonce to hand clients now, in DPoP-Nonce.
	Nonce(ctx context.Context) (string, error)
	// Valid reports whether nonce, taken from a proof, is one the source
	// issued and still accepts.
	Valid(ctx context.Context, nonce string) (bool, error)
}

// DefaultNoncePeriod is how long an HMACNonces nonce is current.
const DefaultNoncePeriod = 5 * time.Minute

// nonceMACSize is the length of the truncated HMAC in a nonce.
const nonceMACSize = 16

// HMACNonces is a NonceSource that keeps no state: a nonce is the number of
// the current period and an HMAC of it, so every instance sharing the key
// issues and accepts the same nonces. A nonce is current for one period and
// accepted during the next one too, so that a client is not refused for a
// nonce it has just received.
type HMACNonces struct {
	key    []byte
	period time.Duration
	now    func() time.Time
}

// NewHMACNonces returns an HMACNonces with key (at least 32 bytes),
// period (default DefaultNoncePeriod) and clock now (default time.Now).
func NewHMACNonces(key []byte, period time.Duration, now func() time.Time) (*HMACNonces, error) {
	if len(key) < 32 {
		return nil, errors.New("dpop: the nonce key must have at least 32 bytes")
	}
	if period < 0 {
		return nil, errors.New("dpop: the nonce period must not be negative")
	}
	if period == 0 {
		period = DefaultNoncePeriod
	}
	if now == nil {
		now = time.Now
	}
	return &HMACNonces{key: append([]byte(nil), key...), period: period, now: now}, nil
}

func (n *HMACNonces) window() uint64 {
	return uint64(n.now().UnixNano() / int64(n.period))
}

func (n *HMACNonces) make(w uint64) string {
	var buf [8 + nonceMACSize]byte
	binary.BigEndian.PutUint64(buf[:8], w)
	copy(buf[8:], n.mac(w))
	return base64.RawURLEncoding.EncodeToString(buf[:])
}

func (n *HMACNonces) mac(w uint64) []byte {
	m := hmac.New(sha256.New, n.key)
	m.Write([]byte("dpop-nonce\x00"))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], w)
	m.Write(b[:])
	return m.Sum(nil)[:nonceMACSize]
}

// Nonce implements NonceSource.
func (n *HMACNonces) Nonce(context.Context) (string, error) { return n.make(n.window()), nil }

// Valid implements NonceSource.
func (n *HMACNonces) Valid(_ context.Context, nonce string) (bool, error) {
	if len(nonce) != base64.RawURLEncoding.EncodedLen(8+nonceMACSize) {
		return false, nil
	}
	buf, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil {
		return false, nil
	}
	w := binary.BigEndian.Uint64(buf[:8])
	cur := n.window()
	if w != cur && w+1 != cur {
		return false, nil
	}
	return hmac.Equal(buf[8:], n.mac(w)), nil
}

// NonceKeyRecord is the store record holding the key of StoreNonces.
const NonceKeyRecord = "dpopkey:nonce"

// StoreNonces returns HMACNonces whose key is kept in s, so that every
// instance sharing s issues and accepts the same nonces. The first
// instance to need the key makes it (32 random bytes, written with Create,
// so instances starting at once agree on one); the others read it. It is
// made on first use: a store whose gateway asks for no nonce holds none.
func StoreNonces(s store.Store, period time.Duration, now func() time.Time) NonceSource {
	return &storeNonces{s: s, period: period, now: now}
}

type storeNonces struct {
	s      store.Store
	period time.Duration
	now    func() time.Time

	mu  sync.Mutex // serialises the first reads of the key
	src atomic.Pointer[HMACNonces]
}

func (n *storeNonces) source(ctx context.Context) (*HMACNonces, error) {
	if src := n.src.Load(); src != nil {
		return src, nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if src := n.src.Load(); src != nil {
		return src, nil
	}
	key, err := n.s.Get(ctx, NonceKeyRecord)
	if errors.Is(err, store.ErrNotFound) {
		fresh := make([]byte, 32)
		if _, err := rand.Read(fresh); err != nil {
			return nil, err
		}
		err = n.s.Create(ctx, NonceKeyRecord, fresh, 0)
		switch {
		case err == nil:
			key = fresh
		case errors.Is(err, store.ErrConflict):
			key, err = n.s.Get(ctx, NonceKeyRecord)
		}
	}
	if err != nil {
		return nil, err
	}
	src, err := NewHMACNonces(key, n.period, n.now)
	if err != nil {
		return nil, err
	}
	n.src.Store(src)
	return src, nil
}

// Nonce implements NonceSource.
func (n *storeNonces) Nonce(ctx context.Context) (string, error) {
	src, err := n.source(ctx)
	if err != nil {
		return "", err
	}
	return src.Nonce(ctx)
}

// Valid implements NonceSource.
func (n *storeNonces) Valid(ctx context.Context, nonce string) (bool, error) {
	src, err := n.source(ctx)
	if err != nil {
		return false, err
	}
	return src.Valid(ctx, nonce)
}
