package authz

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// The generated signing keys are the one secret of the store that is not
// a digest. With Config.KeyEncryptionKey they are stored sealed with
// AES-256-GCM under a key derived from it by HKDF-SHA256, so a copy of
// the store (a backup, a readable file, a Redis replica) does not let its
// holder sign tokens. A ring stored in plain is sealed when a service with
// the key loads it.

// ringSealAlg names the sealing in the stored record, for a later change.
const ringSealAlg = "A256GCM-HKDF-SHA256"

// ringKeyInfo is the HKDF context of the derived key.
const ringKeyInfo = "caddy-oauth jwt signing key ring"

// plainRingKey marks a store whose log may still hold a ring in plain: set
// before a plain ring is replaced by a sealed one, deleted once the store
// is compacted, so a failed compaction is tried again at the next start.
// The RS256 ring's marker is its key with the same suffix.
const plainRingKey = keyRingKey + ":plain"

func (r *keyRing) plainKey() string { return r.storeKey + ":plain" }

// sealedRing is the stored form of an encrypted ring; a plain one is a
// storedRing, which has keys instead.
type sealedRing struct {
	Sealed *sealedData `json:"sealed,omitempty"`
}

type sealedData struct {
	Alg   string `json:"alg"`
	Nonce []byte `json:"nonce"`
	Data  []byte `json:"data"` // the storedRing's JSON, sealed
}

var (
	errRingSealed = errors.New("the stored JWT signing keys are encrypted: set key_encryption_key to the key they were encrypted with")
	errRingKey    = errors.New("the stored JWT signing keys cannot be decrypted: key_encryption_key is not the key they were encrypted with")
)

// newRingAEAD derives the ring's AES-256-GCM key from secret.
func newRingAEAD(secret []byte) cipher.AEAD {
	key, err := hkdf.Key(sha256.New, secret, nil, ringKeyInfo, 32)
	if err != nil {
		panic(err) // only for a key longer than HKDF can give
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // a 32-byte key is always valid
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err) // AES has GCM's block size
	}
	return aead
}

// encode gives the stored form of keys: sealed when the ring has a key.
func (r *keyRing) encode(keys []*signingKey) ([]byte, error) {
	plain, err := encodeRing(keys)
	if err != nil || r.aead == nil {
		return plain, err
	}
	sd := &sealedData{Alg: ringSealAlg, Nonce: make([]byte, r.aead.NonceSize())}
	if _, err := rand.Read(sd.Nonce); err != nil {
		return nil, err
	}
	// The record's key is the additional data: the sealed ring means
	// nothing under another key.
	sd.Data = r.aead.Seal(nil, sd.Nonce, plain, []byte(r.storeKey))
	return json.Marshal(sealedRing{Sealed: sd})
}

// decode reads a stored ring, sealed or plain, and says which it was.
func (r *keyRing) decode(raw []byte) (keys []*signingKey, sealed bool, err error) {
	var s sealedRing
	if json.Unmarshal(raw, &s) != nil || s.Sealed == nil {
		keys, err = decodeRing(raw)
		return keys, false, err
	}
	if r.aead == nil {
		return nil, true, errRingSealed
	}
	if s.Sealed.Alg != ringSealAlg || len(s.Sealed.Nonce) != r.aead.NonceSize() {
		return nil, true, fmt.Errorf("the stored JWT signing keys are sealed with %q, which this version does not read", s.Sealed.Alg)
	}
	plain, err := r.aead.Open(nil, s.Sealed.Nonce, s.Sealed.Data, []byte(r.storeKey))
	if err != nil {
		return nil, true, errRingKey
	}
	keys, err = decodeRing(plain)
	return keys, true, err
}

// seal replaces a ring stored in plain (raw) by its sealed form, then
// compacts the store so that no plain copy stays on its disk. It returns
// the stored form, or store.ErrConflict when the ring changed meanwhile.
func (r *keyRing) seal(ctx context.Context, raw []byte, keys []*signingKey) ([]byte, error) {
	next, err := r.encode(keys)
	if err != nil {
		return nil, err
	}
	if err := r.svc.store.Put(ctx, r.plainKey(), []byte("1"), 0); err != nil {
		return nil, err
	}
	err = r.svc.store.Swap(ctx, r.storeKey, raw, next, 0)
	if errors.Is(err, store.ErrNotFound) {
		err = store.ErrConflict
	}
	if err != nil {
		return nil, err
	}
	r.svc.log.Info("the JWT signing keys in the store are now encrypted with key_encryption_key")
	return next, r.dropPlainCopies(ctx)
}

// dropPlainCopies compacts the store when a ring may have been stored in
// plain in it (plainRingKey).
func (r *keyRing) dropPlainCopies(ctx context.Context) error {
	if _, err := r.svc.store.Get(ctx, r.plainKey()); errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if _, err := store.Compact(r.svc.store); err != nil {
		return fmt.Errorf("the JWT signing keys are now encrypted, but compacting the store to drop their plain copy failed: %v", err)
	}
	if err := r.svc.store.Delete(ctx, r.plainKey()); err != nil {
		return err
	}
	r.svc.log.Info("the store was compacted: no plain copy of the JWT signing keys remains in it")
	return nil
}

// LoadSigningKeys reads the generated signing keys, creating them when the
// store has none and sealing keys stored in plain when KeyEncryptionKey is
// set. It fails, saying why, when they cannot be read: sealed with another
// key, or sealed and no key set. It does nothing for opaque tokens and a
// signing key of the config.
func (s *Service) LoadSigningKeys(ctx context.Context) error {
	for _, r := range s.rings() {
		if err := r.loadAtStart(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (r *keyRing) loadAtStart(ctx context.Context) error {
	if r.static != nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.load(ctx); err != nil {
		return err
	}
	if r.aead == nil {
		return nil
	}
	return r.dropPlainCopies(ctx)
}
