package dpop

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
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
